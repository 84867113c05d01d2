"""record_run: one transaction per run; states new / persisting / fixed / reopened / accepted."""

from __future__ import annotations

import json
from pathlib import Path

from history_fakes import make_finding, make_result
from sqlalchemy import select

from bastion import __version__
from bastion.history import open_store, record_run
from bastion.history.schema import findings, run_checks, run_findings, runs

A = make_finding(path="/a")
B = make_finding(path="/b", severity="medium")
CSP = make_finding(check_id="headers.csp", path="/", param=None, severity="low")


def _finding_row(db: str, fp: str, target: str = "app:demo"):
    engine = open_store(db)
    with engine.connect() as conn:
        row = conn.execute(select(findings).where(findings.c.fingerprint == fp,
                                                  findings.c.target == target)).one()
    engine.dispose()
    return row


def test_states_across_runs_new_persisting_fixed_reopened(history_db: str) -> None:
    first = record_run(make_result([A, B, CSP], started_at="2026-01-01T00:00:00+00:00"), db_url=history_db)
    assert first.new == sorted([A.fingerprint, B.fingerprint, CSP.fingerprint])
    assert first.counts == {"new": 3, "persisting": 0, "fixed": 0, "reopened": 0, "accepted": 0}

    second = record_run(make_result([A, CSP], started_at="2026-01-03T12:00:00+00:00"), db_url=history_db)
    assert second.persisting == sorted([A.fingerprint, CSP.fingerprint])
    assert second.fixed == [B.fingerprint]
    row = _finding_row(history_db, B.fingerprint)
    assert (row.state, row.first_seen, row.last_seen) == ("fixed", "2026-01-01T00:00:00+00:00",
                                                         "2026-01-01T00:00:00+00:00")
    assert row.fixed_at == "2026-01-03T12:00:00+00:00"

    third = record_run(make_result([A, B, CSP], started_at="2026-01-04T00:00:00+00:00"), db_url=history_db)
    assert third.reopened == [B.fingerprint]
    assert third.new == [] and third.fixed == []
    row = _finding_row(history_db, B.fingerprint)
    assert (row.state, row.fixed_at, row.reopen_count) == ("reopened", None, 1)
    assert row.first_seen == "2026-01-01T00:00:00+00:00" and row.last_seen == "2026-01-04T00:00:00+00:00"

    fourth = record_run(make_result([A, B, CSP], started_at="2026-01-05T00:00:00+00:00"), db_url=history_db)
    assert fourth.persisting == sorted([A.fingerprint, B.fingerprint, CSP.fingerprint])


def test_finding_of_a_check_that_did_not_run_is_not_fixed(history_db: str) -> None:
    record_run(make_result([A, CSP]), db_url=history_db)
    only_sql = record_run(make_result([A], checks=["injection.sql"], started_at="2026-01-06T00:00:00+00:00"),
                          db_url=history_db)
    assert only_sql.fixed == [] and only_sql.persisting == [A.fingerprint]
    assert _finding_row(history_db, CSP.fingerprint).state == "new"
    # When the check runs again and the finding is gone, it is fixed at that run.
    later = record_run(make_result([A], started_at="2026-01-07T00:00:00+00:00"), db_url=history_db)
    assert later.fixed == [CSP.fingerprint]
    assert _finding_row(history_db, CSP.fingerprint).fixed_at == "2026-01-07T00:00:00+00:00"


def test_targets_are_tracked_separately(history_db: str) -> None:
    record_run(make_result([A], target="app:one"), db_url=history_db)
    other = record_run(make_result([], target="app:two"), db_url=history_db)
    assert other.fixed == []  # A belongs to app:one
    again = record_run(make_result([A], target="app:two"), db_url=history_db)
    assert again.new == [A.fingerprint]
    assert _finding_row(history_db, A.fingerprint, "app:one").state == "new"


def test_accepted_fingerprints_get_the_accepted_state(history_db: str) -> None:
    summary = record_run(make_result([A, B]), db_url=history_db, accepted=[B.fingerprint])
    assert summary.accepted == [B.fingerprint] and summary.new == [A.fingerprint]
    assert _finding_row(history_db, B.fingerprint).state == "accepted"
    gone = record_run(make_result([A], started_at="2026-01-08T00:00:00+00:00"), db_url=history_db)
    assert gone.fixed == [B.fingerprint]


def test_run_metadata_checks_and_evidence_are_stored(history_db: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # a temp dir outside any git repository
    result = make_result([A], started_at="2026-02-01T08:00:00+00:00", duration_s=3.0, requests=12, errors=True)
    summary = record_run(result, db_url=history_db, config_hash="abc123")
    engine = open_store(history_db)
    with engine.connect() as conn:
        run = conn.execute(select(runs).where(runs.c.id == summary.run_id)).one()
        checks = conn.execute(select(run_checks).order_by(run_checks.c.check_id)).all()
        seen = conn.execute(select(run_findings)).one()
        stored = conn.execute(select(findings)).one()
    engine.dispose()
    assert (run.target, run.seed, run.config_hash, run.tool_version) == ("app:demo", 7, "abc123", __version__)
    assert run.git_commit is None
    assert (run.started_at, run.finished_at) == ("2026-02-01T08:00:00+00:00", "2026-02-01T08:00:03+00:00")
    assert (run.duration_s, run.requests, run.status) == (3.0, 12, "errors")
    assert [(c.check_id, c.requests, c.units, c.errors) for c in checks] == [
        ("headers.csp", 6, 2, 1), ("injection.sql", 6, 2, 1)]
    assert (seen.fingerprint, seen.state) == (A.fingerprint, "new")
    assert json.loads(seen.evidence) == [{"kind": "note", "summary": "probe on /a"}]
    assert json.loads(stored.location)["input"] == {"in": "query", "name": "q"}
    assert (stored.severity, stored.confidence, stored.check_id) == ("high", "firm", "injection.sql")


def test_git_commit_is_recorded_inside_a_repository(history_db: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).parent)
    summary = record_run(make_result([]), db_url=history_db)
    engine = open_store(history_db)
    with engine.connect() as conn:
        commit = conn.execute(select(runs.c.git_commit).where(runs.c.id == summary.run_id)).scalar()
    engine.dispose()
    assert commit is not None and len(commit) == 40


def test_db_url_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "env.db"
    monkeypatch.setenv("BASTION_DB_URL", f"sqlite:///{target}")
    record_run(make_result([A]))
    assert target.exists()
