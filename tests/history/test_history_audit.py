"""Suite audit: unexercised checks/threats, flaky checks, expiring exclusions, untested and unknown threats."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from history_fakes import make_finding, make_result

from bastion.engine.context import CheckStats
from bastion.findings.baseline import apply_baseline, create_baseline, load_baseline
from bastion.findings.model import Severity
from bastion.history import open_store, record_run
from bastion.history import record as record_module
from bastion.history.audit import AuditInput, audit_report, load_audit_runs, load_user_tests
from bastion.history.cli import audit_command, changelog_command, history_command
from bastion.model import load_config_text

SQL_A = make_finding(check_id="injection.sql", path="/items")
CSP = make_finding(check_id="headers.csp-missing", path="/", param=None, severity="medium")
COMMIT_1, COMMIT_2 = "1" * 40, "2" * 40
TODAY = date(2026, 5, 1)
CONFIG = """
target: {url: "http://127.0.0.1:8000"}
accepted:
  - {threat: headers.csp-missing, path: /legacy, reason: legacy pages, until: 2026-05-10, owner: web-team}
  - {threat: config.version-banner, reason: proxy strips it, until: 2026-09-01}
  - {threat: injection.sql, reason: tracked in JIRA-1, until: 2026-04-20}
"""
CATALOG = {tid: SimpleNamespace(title=tid.upper(), severity=Severity.high)
           for tid in ("injection.sql", "headers.csp-missing", "config.stack-trace", "jwt.alg-none",
                       "privacy.pii-in-logs", "static.weak-cipher", "authz.bola")}
CHECKS = {"injection.sql": "injection.sql", "headers.csp-missing": "headers.csp-missing",
          "config.stack-trace": "config.stack-trace", "jwt.alg-none": "jwt.alg-none"}


def _run(found, started_at: str, *, stack_units: int = 0):
    units = {"injection.sql": ["GET /items [query:q]"], "headers.csp-missing": ["target"],
             "config.stack-trace": ["GET /x"] * stack_units}
    base = make_result(found, checks=[], started_at=started_at, target="app:shop")
    # config.stack-trace runs but finds nothing to test; jwt.alg-none is never selected.
    return dataclasses.replace(base, checks=[CheckStats(check_id=c, units=u) for c, u in units.items()])


@pytest.fixture
def audited(history_db: str, monkeypatch) -> str:
    """Runs 1-4 at one commit and config (injection.sql flips twice), run 5 at another commit."""
    engine = open_store(history_db)
    plan = [([SQL_A, CSP], COMMIT_1), ([CSP], COMMIT_1), ([SQL_A, CSP], COMMIT_1), ([SQL_A, CSP], COMMIT_1),
            ([CSP], COMMIT_2)]
    for day, (found, commit) in enumerate(plan, start=1):
        monkeypatch.setattr(record_module, "git_commit", lambda commit=commit: commit)
        record_run(_run(found, f"2026-04-0{day}T10:00:00+00:00"), engine=engine, config_hash="cfg1")
    engine.dispose()
    return history_db


def _data(db: str, last: int = 10, **extra) -> AuditInput:
    engine = open_store(db, create=False)
    window, checks, seen = load_audit_runs(engine, last=last)
    engine.dispose()
    return AuditInput(runs=window, check_runs=checks, run_findings=seen, checks=CHECKS,
                      static_threats=frozenset({"static.weak-cipher"}), catalog=CATALOG, **extra)


def test_unexercised_checks_and_threats(audited: str) -> None:
    report = audit_report(_data(audited), TODAY)
    idle = {c["check"]: c for c in report["unexercised_checks"]}
    assert set(idle) == {"config.stack-trace", "jwt.alg-none"}
    assert idle["jwt.alg-none"]["runs_selected"] == 0 and "not selected" in idle["jwt.alg-none"]["reason"]
    assert idle["config.stack-trace"]["runs_selected"] == 5 and "nothing to test" in idle["config.stack-trace"][
        "reason"]
    assert [t["threat"] for t in report["unexercised_threats"]] == ["config.stack-trace", "jwt.alg-none"]


def test_flaky_checks_need_the_same_commit_and_config(audited: str) -> None:
    flaky = audit_report(_data(audited), TODAY)["flaky_checks"]
    assert len(flaky) == 1
    entry = flaky[0]
    assert (entry["check"], entry["flips"], entry["git_commit"], entry["config_hash"]) == (
        "injection.sql", 2, COMMIT_1, "cfg1")
    assert entry["runs"] == [1, 2, 3, 4]
    assert entry["example"] == {"from_run": 1, "to_run": 2, "appeared": [], "disappeared": [SQL_A.fingerprint]}
    # Runs 4 and 5 differ, but the code changed in between: that is not flakiness.
    assert audit_report(_data(audited, last=2), TODAY)["flaky_checks"] == []


def test_expiring_suppressions_and_baseline_entries(audited: str, tmp_path: Path) -> None:
    accepted = load_config_text(CONFIG, name="bastion.yaml").accepted
    path = tmp_path / "baseline.json"
    create_baseline([SQL_A, CSP], path)
    doc = json.loads(path.read_text())
    doc["findings"][0]["until"] = "2026-05-05"
    path.write_text(json.dumps(doc))
    baseline = load_baseline(path)
    expiring = audit_report(_data(audited, accepted=accepted, baseline=baseline), TODAY)["expiring"]
    assert [(e["source"], e["status"], e["days_left"]) for e in expiring] == [
        ("accepted", "expired", -11), ("baseline", "expiring", 4), ("accepted", "expiring", 9)]
    assert expiring[2]["owner"] == "web-team" and expiring[2]["what"] == "headers.csp-missing at /legacy"
    assert expiring[1]["fingerprint"] == doc["findings"][0]["fingerprint"]
    # Past its date, the entry no longer baselines its finding.
    expired_fp = doc["findings"][0]["fingerprint"]
    new, kept = apply_baseline([SQL_A, CSP], baseline, date(2026, 5, 6))
    assert [f.fingerprint for f in new] == [expired_fp] and len(kept) == 1
    assert len(apply_baseline([SQL_A, CSP], baseline, date(2026, 5, 5))[1]) == 2


def test_untested_threats_and_unknown_test_markers(audited: str, tmp_path: Path) -> None:
    coverage = tmp_path / "coverage.json"
    coverage.write_text(json.dumps({"tests": [
        {"nodeid": "tests/test_api.py::test_owner_only", "threats": ["authz.bola", "authz.bolla"],
         "outcome": "passed"},
        {"nodeid": "tests/test_api.py::test_skipped", "threats": ["privacy.pii-in-logs"], "outcome": "skipped"},
    ]}))
    report = audit_report(_data(audited, tests=load_user_tests(coverage)), TODAY)
    # authz.bola: a user test; static.weak-cipher: a static rule; the skipped test exercises nothing.
    assert [t["threat"] for t in report["threats_without_check_or_test"]] == ["privacy.pii-in-logs"]
    assert report["unknown_test_threats"] == [{"nodeid": "tests/test_api.py::test_owner_only",
                                               "unknown": ["authz.bolla"]}]


def test_audit_command_end_to_end(audited: str, tmp_path: Path) -> None:
    config = tmp_path / "bastion.yaml"
    config.write_text(CONFIG)
    coverage = tmp_path / "coverage.json"
    coverage.write_text(json.dumps({"tests": [{"nodeid": "t.py::x", "threats": ["nope.nothing"]}]}))
    args = ["--db", audited, "--config", str(config), "--coverage", str(coverage), "--today", "2026-05-01"]
    out = CliRunner().invoke(audit_command, [*args, "--format", "json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["schema"] == "bastion-audit/1" and report["window"]["runs"] == [1, 2, 3, 4, 5]
    idle = {c["check"] for c in report["unexercised_checks"]}
    assert "injection.sql" not in idle and "headers.csp-missing" not in idle and "config.stack-trace" in idle
    assert [f["check"] for f in report["flaky_checks"]] == ["injection.sql"]
    assert len(report["expiring"]) == 2
    assert report["unknown_test_threats"] == [{"nodeid": "t.py::x", "unknown": ["nope.nothing"]}]
    table = CliRunner().invoke(audit_command, args)
    assert table.exit_code == 0
    assert "Flaky checks (same code and config, different findings): 1" in table.output
    assert "expired: injection.sql at every location" in table.output


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "expected {\"tests\""),
    ('{"tests": [{"nodeid": 3}]}', "tests[0]"),
    ('{"tests": [{"nodeid": "a", "threats": "authz.bola"}]}', "tests[0].threats"),
    ("{not json", "not valid JSON"),
])
def test_malformed_coverage_file_exits_2(audited: str, tmp_path: Path, content: str, message: str) -> None:
    coverage = tmp_path / "coverage.json"
    coverage.write_text(content)
    out = CliRunner().invoke(audit_command, ["--db", audited, "--coverage", str(coverage)])
    assert out.exit_code == 2 and message in out.output and str(coverage) in out.output


def test_audit_of_a_foreign_database_exits_2_untouched(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for command, extra in ((audit_command, []), (changelog_command, ["--since", "1"]), (history_command, [])):
        out = CliRunner().invoke(command, ["--db", str(path), *extra])
        assert out.exit_code == 2 and "not a Bastion history" in out.output
    assert path.read_bytes() == before
