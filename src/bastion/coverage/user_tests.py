"""Hand-written pytest tests marked `@pytest.mark.threat(...)`: read the plugin's file, merge into coverage."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.coverage.model import (
    ANY_ROLE,
    FINDING,
    NO_CHECK,
    NOT_TESTED,
    TESTED,
    USER_TEST,
    USER_TEST_SKIPPED,
    Coverage,
    CoverageRow,
    ThreatCoverage,
    sort_rows,
)
from bastion.errors import ConfigError

SCHEMA = "bastion-test-coverage/1"
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class UserTest:
    """One test: its outcome (passed / failed / skipped), the threats it marks, the roles it acted as."""

    nodeid: str
    outcome: str
    threats: tuple[str, ...]
    roles: tuple[str, ...] = ()


@dataclass
class UserTests:
    tests: list[UserTest] = field(default_factory=list)


def user_tests_document(tests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The file the pytest plugin writes: per test its outcome, threats and roles; per threat its tests."""
    by_threat: dict[str, dict[str, str]] = {}
    for nodeid, info in sorted(tests.items()):
        for tid in info["threats"]:
            by_threat.setdefault(tid, {})[nodeid] = info["outcome"]
    return {"schema": SCHEMA, "threats": by_threat,
            "tests": {n: {"outcome": i["outcome"], "threats": sorted(set(i["threats"])),
                          "roles": sorted(set(i.get("roles") or ()))} for n, i in sorted(tests.items())}}


def read_json_file(path: str | Path, what: str) -> Any:
    """A JSON file Bastion did not write itself: size-capped, UTF-8; any problem is a ConfigError naming it."""
    name = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the {what}: {exc.strerror}", file=name) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"the {what} is over the {MAX_FILE_BYTES}-byte limit", file=name)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} is not UTF-8 text", file=name) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the {what} is not valid JSON: {exc.msg}", file=name, line=exc.lineno) from None
    except RecursionError:
        raise ConfigError(f"the {what} nests too deeply", file=name) from None


def load_user_tests(path: str | Path) -> UserTests:
    """Read `pytest --bastion-coverage-out FILE`; anything malformed is a ConfigError naming the file."""
    name = str(path)
    doc = read_json_file(path, "user-test coverage file")
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ConfigError(f"expected schema {SCHEMA!r} (write it with pytest --bastion-coverage-out FILE)",
                          file=name, key="schema")
    return UserTests(tests=_tests_of(doc, name))


def _tests_of(doc: dict[str, Any], name: str) -> list[UserTest]:
    tests = doc.get("tests")
    if isinstance(tests, dict):
        out = []
        for nodeid, info in tests.items():
            if not isinstance(info, dict) or not isinstance(info.get("threats"), list):
                raise ConfigError("each test is an object with outcome, threats and roles", file=name,
                                  key=f"tests.{nodeid}")
            out.append(UserTest(str(nodeid), str(info.get("outcome", "")), tuple(str(t) for t in info["threats"]),
                                tuple(str(r) for r in info.get("roles") or ())))
        return sorted(out, key=lambda t: t.nodeid)
    # Files from before the per-test section: threat -> {nodeid: outcome}.
    threats = doc.get("threats")
    if not isinstance(threats, dict) or not all(isinstance(v, dict) for v in threats.values()):
        raise ConfigError("must map threat ids to {test: outcome}", file=name, key="threats")
    merged: dict[str, UserTest] = {}
    for tid, per_test in threats.items():
        for nodeid, outcome in per_test.items():
            old = merged.get(nodeid)
            merged[nodeid] = UserTest(nodeid, str(outcome), (*(old.threats if old else ()), str(tid)))
    return sorted(merged.values(), key=lambda t: t.nodeid)


def _row(test: UserTest, role: str) -> CoverageRow:
    detail = f"user test: {test.nodeid}"
    if test.outcome == "passed":
        return CoverageRow(USER_TEST, role, TESTED, None, detail)
    if test.outcome == "failed":
        return CoverageRow(USER_TEST, role, FINDING, None, detail, findings=1)
    return CoverageRow(USER_TEST, role, NOT_TESTED, USER_TEST_SKIPPED, f"{detail} ({test.outcome})")


def merge_user_tests(coverage: Coverage, tests: UserTests) -> Coverage:
    """Coverage with a row per (user test, role): passed = tested, failed = finding, skipped = not tested."""
    threats = {t.id: ThreatCoverage(t.id, t.title, t.severity, list(t.checks), list(t.rows))
               for t in coverage.threats}
    warnings = list(coverage.warnings)
    for test in tests.tests:
        for tid in test.threats:
            threat = threats.get(tid)
            if threat is None:
                warnings.append(f"{test.nodeid}: @pytest.mark.threat({tid!r}) names no catalog threat; "
                                "`bastion catalog` lists them")
                continue
            # "no check" means no check and no user test: a user test replaces that row.
            threat.rows = [r for r in threat.rows if r.reason != NO_CHECK]
            threat.rows = sort_rows([*threat.rows, *(_row(test, role) for role in (test.roles or (ANY_ROLE,)))])
    return Coverage(threats=list(threats.values()), warnings=warnings)
