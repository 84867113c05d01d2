"""Two real processes recording runs at once, on SQLite (serialized, retried) and PostgreSQL (concurrent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bastion.history import open_store
from bastion.history.schema import findings, run_checks, run_findings, run_units, runs

WRITER = Path(__file__).with_name("history_writer.py")
RUNS = 12
OPEN = ("new", "persisting", "reopened", "accepted")


def _writer(db: str, target: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "BASTION_TEST_BARRIER": "1",
           "PYTHONPATH": os.pathsep.join([str(WRITER.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(WRITER), db, str(RUNS), "60", target], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(cwd))


def _run_both(db: str, targets: tuple[str, str], cwd: Path) -> None:
    """Start both writers, wait until each has opened the store, then release them together."""
    procs = [_writer(db, t, cwd) for t in targets]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.count("done") == RUNS


def _assert_consistent(db: str, targets: set[str]) -> None:
    """Every run is complete and each finding's state agrees with the latest run of its target."""
    engine = open_store(db, create=False)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(runs.c.id, runs.c.target, runs.c.requests)).all()
            stored, checks, units = (dict(conn.execute(select(t.c.run_id, func.count()).group_by(t.c.run_id)).all())
                                     for t in (run_findings, run_checks, run_units))
            assert {target for _id, target, _n in rows} == targets
            assert len(rows) == RUNS * 2
            for run_id, _target, expected in rows:
                assert stored.get(run_id, 0) == expected, f"run {run_id} is incomplete"
                assert checks[run_id] == 1 and units[run_id] == 2
            for target in targets:
                latest = max(run_id for run_id, t, _n in rows if t == target)
                in_latest = set(conn.execute(select(run_findings.c.fingerprint)
                                             .where(run_findings.c.run_id == latest)).scalars())
                for fp, state, fixed_at in conn.execute(select(findings.c.fingerprint, findings.c.state,
                                                               findings.c.fixed_at)
                                                        .where(findings.c.target == target)):
                    assert (state in OPEN) == (fp in in_latest), (target, fp, state)
                    assert (fixed_at is not None) == (state == "fixed")
    finally:
        engine.dispose()


@pytest.mark.parametrize("same_target", [False, True], ids=["two-targets", "one-target"])
def test_two_processes_write_at_once(history_db: str, tmp_path: Path, same_target: bool) -> None:
    # Both writers race to create the schema, too (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock).
    targets = ("app:shard", "app:shard") if same_target else ("app:shard0", "app:shard1")
    _run_both(history_db, targets, tmp_path)
    _assert_consistent(history_db, set(targets))
