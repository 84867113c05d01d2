"""Metrics over a store filled with synthetic runs at controlled timestamps (no clock, no sleep)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from history_fakes import make_finding, make_result

from bastion.history import open_store, record_run
from bastion.history.cli import history_command
from bastion.history.metrics import history_report, iso_week, load_snapshot

A = make_finding(path="/a", severity="high")
B = make_finding(path="/b", severity="medium")
C = make_finding(path="/c", severity="critical")
D = make_finding(path="/d", severity="low")
E = make_finding(path="/e", severity="medium")
F = make_finding(path="/f", severity="medium")

# (started_at, findings, duration_s, requests)
RUNS = [
    ("2026-01-05T09:00:00+00:00", [A, B, C, E, F], 10.0, 100),  # ISO week 2
    ("2026-01-07T09:00:00+00:00", [A, C, F], 20.0, 200),        # B, E fixed after 2 days
    ("2026-01-12T09:00:00+00:00", [A, B, D], 30.0, 300),        # week 3: B reopened; C, F fixed after 7 days
    ("2026-01-14T09:00:00+00:00", [A, D], 40.0, 400),           # B fixed again, 9 days after first seen
]


@pytest.fixture
def filled(history_db: str) -> str:
    engine = open_store(history_db)
    for started, found, duration, requests in RUNS:
        record_run(make_result(found, started_at=started, duration_s=duration, requests=requests), engine=engine)
    # Another target's run must not leak into target-filtered metrics.
    record_run(make_result([A, B], started_at="2026-01-20T09:00:00+00:00", target="app:other"), engine=engine)
    engine.dispose()
    return history_db


def _report(db: str, **kwargs) -> dict:
    engine = open_store(db, create=False)
    try:
        return history_report(load_snapshot(engine, target="app:demo", **kwargs))
    finally:
        engine.dispose()


def test_open_findings_by_severity_per_run(filled: str) -> None:
    rows = _report(filled)["open_by_severity"]
    assert [(r["critical"], r["high"], r["medium"], r["low"], r["info"], r["total"]) for r in rows] == [
        (1, 1, 3, 0, 0, 5), (1, 1, 1, 0, 0, 3), (0, 1, 1, 1, 0, 3), (0, 1, 0, 1, 0, 2)]
    assert [r["started_at"][:10] for r in rows] == ["2026-01-05", "2026-01-07", "2026-01-12", "2026-01-14"]


def test_time_to_fix_by_severity(filled: str) -> None:
    ttf = _report(filled)["time_to_fix"]
    assert ttf["critical"] == {"fixed": 1, "mean_days": 7.0, "median_days": 7.0}
    assert ttf["medium"] == {"fixed": 3, "mean_days": 6.0, "median_days": 7.0}  # 2, 7 and 9 days
    assert ttf["high"] == {"fixed": 0, "mean_days": None, "median_days": None}


def test_discovery_and_reopen_rates(filled: str) -> None:
    report = _report(filled)
    assert [r["new"] for r in report["discovery"]["per_run"]] == [5, 0, 1, 0]
    assert report["discovery"]["per_week"] == {"2026-W02": 5, "2026-W03": 1}
    assert report["discovery"]["mean_per_run"] == 1.5
    # One reopen; five fixes (B twice, C, E, F).
    assert report["reopen"] == {"reopened": 1, "fixes": 5, "rate": 0.2, "reopened_in_selected_runs": 1}


def test_run_and_check_costs(filled: str) -> None:
    report = _report(filled)
    assert [(r["duration_s"], r["requests"]) for r in report["runs"]] == [
        (10.0, 100), (20.0, 200), (30.0, 300), (40.0, 400)]
    assert report["checks"] == {
        "headers.csp": {"runs": 4, "mean_duration_s": 12.5, "mean_requests": 125.0},
        "injection.sql": {"runs": 4, "mean_duration_s": 12.5, "mean_requests": 125.0}}


def test_last_n_runs_window(filled: str) -> None:
    report = _report(filled, last=2)
    assert [r["started_at"][:10] for r in report["runs"]] == ["2026-01-12", "2026-01-14"]
    assert report["time_to_fix"]["medium"] == {"fixed": 2, "mean_days": 8.0, "median_days": 8.0}
    assert report["discovery"]["per_week"] == {"2026-W03": 1}


def test_iso_week_at_year_boundary() -> None:
    assert iso_week("2027-01-01T00:00:00+00:00") == "2026-W53"


def test_history_command_json_matches_the_metrics(filled: str) -> None:
    out = CliRunner().invoke(history_command, ["--db", str(filled), "--format", "json", "--target", "app:demo"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == _report(filled)
    everything = json.loads(CliRunner().invoke(history_command, ["--db", str(filled), "--format", "json"]).output)
    assert len(everything["runs"]) == 5


def test_history_command_table(filled: str) -> None:
    out = CliRunner().invoke(history_command, ["--db", str(filled), "--last", "3"])
    assert out.exit_code == 0, out.output
    assert "Time to fix (days)" in out.output and "2026-01-20T09:00:00+00:00" in out.output
    assert "2026-01-05" not in out.output
    assert "Reopen rate" in out.output and "injection.sql" in out.output


def test_history_command_errors_exit_2(tmp_path: Path) -> None:
    missing = CliRunner().invoke(history_command, ["--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 2 and "no history yet" in missing.output
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x00garbage" * 100)
    bad = CliRunner().invoke(history_command, ["--db", str(junk)])
    assert bad.exit_code == 2 and str(junk) in bad.output
    assert CliRunner().invoke(history_command, ["--db", str(junk), "--last", "0"]).exit_code == 2


def test_empty_history_reports_no_runs(db_path: Path) -> None:
    open_store(str(db_path)).dispose()
    out = CliRunner().invoke(history_command, ["--db", str(db_path)])
    assert out.exit_code == 0 and "no runs recorded" in out.output
