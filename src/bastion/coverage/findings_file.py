"""Read the coverage section back from a findings.json (`bastion coverage --from FILE`)."""

from __future__ import annotations

from pathlib import Path

from bastion.coverage.model import Coverage
from bastion.coverage.user_tests import read_json_file
from bastion.errors import ConfigError

FINDINGS_SCHEMA = "bastion-findings/1"


def coverage_from_findings_file(path: str | Path) -> Coverage:
    """The coverage section of a findings.json (bastion-findings/1); a file without one is a ConfigError."""
    name = str(path)
    doc = read_json_file(path, "findings file")
    if not isinstance(doc, dict) or doc.get("schema") != FINDINGS_SCHEMA:
        raise ConfigError(f"not a Bastion findings file (expected schema {FINDINGS_SCHEMA!r})", file=name)
    if "coverage" not in doc:
        raise ConfigError("this findings file has no coverage section (written by an older Bastion or not by "
                          "a scan); run `bastion coverage` with the target instead", file=name)
    return Coverage.from_dict(doc["coverage"], source=name)
