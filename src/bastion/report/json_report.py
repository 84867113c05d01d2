"""`findings.json`: Bastion's public, versioned findings format (see DESIGN.md, "Output contract")."""

from __future__ import annotations

import copy
import json
from typing import Any

from bastion.engine.runner import ScanResult

SCHEMA = "bastion-findings/1"
# Fields that change between two runs with the same seed; everything else is byte-identical.
RUN_TIMING_FIELDS = ("started_at", "duration_s")


def findings_document(result: ScanResult, include_timings: bool = True) -> dict[str, Any]:
    """The findings document as plain data, keys in contract order."""
    doc = {"schema": SCHEMA, "run": result.run_info(), "findings": [f.public_dict() for f in result.findings]}
    if result.coverage_plan is not None:  # engine runs only: a hand-built result has no plan to report
        from bastion.coverage import coverage_of

        doc["coverage"] = coverage_of(result).as_dict()
    if result.shard is not None:  # `--shard i/n`: what `bastion report --merge` needs to rebuild the run
        from bastion.report.merge import shard_section

        doc["shard"] = shard_section(result)
    return doc if include_timings else strip_timings(doc)


def strip_timings(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of a findings document without its timing fields (run and per-check)."""
    out = copy.deepcopy(doc)
    run = out.get("run", {})
    for key in RUN_TIMING_FIELDS:
        run.pop(key, None)
    for check in run.get("checks", []):
        check.pop("duration_s", None)
    return out


def findings_json(result: ScanResult, include_timings: bool = True) -> str:
    """`findings.json` text: indent 2, insertion-ordered keys, UTF-8 (not ASCII-escaped)."""
    doc = findings_document(result, include_timings)
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
