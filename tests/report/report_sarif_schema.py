"""SARIF 2.1.0 schema validation for the report tests (Draft 7 validator with format checks)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

# The shared copy (as the brief names it), the one beside a CI clone, then the copy shipped with the tests.
SCHEMA_CANDIDATES = (Path("/work/shared/schemas/sarif-schema-2.1.0.json"),
                     Path(__file__).resolve().parents[3] / "shared/schemas/sarif-schema-2.1.0.json",
                     Path(__file__).resolve().parent / "data/sarif-schema-2.1.0.json")
_URI_REFERENCE = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def format_checker() -> jsonschema.FormatChecker:
    """Draft 7 format checks; 'uri'/'uri-reference' done here (rfc3987 is not a dependency)."""
    checker = jsonschema.FormatChecker()
    checker.checks("uri-reference")(lambda v: not isinstance(v, str) or bool(_URI_REFERENCE.match(v)))
    checker.checks("uri")(lambda v: not isinstance(v, str)
                          or bool(_URI_REFERENCE.match(v) and _SCHEME.match(v)))
    return checker


def assert_valid_sarif(doc: dict) -> None:
    schema_file = next((p for p in SCHEMA_CANDIDATES if p.exists()), None)
    if schema_file is None:
        pytest.fail(f"SARIF schema not found in {[str(p) for p in SCHEMA_CANDIDATES]}")
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=format_checker())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
