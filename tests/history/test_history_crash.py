"""kill -9 during a write leaves a readable, complete history; two writers at once are serialized."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from history_fakes import make_finding, make_result

from bastion.history import open_store, record_run

WRITER = Path(__file__).with_name("history_writer.py")


def _writer(db: Path, runs: int, per_run: int, target: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WRITER.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(WRITER), str(db), str(runs), str(per_run), target],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(db.parent))


def _assert_complete(db: Path) -> list[tuple[int, str, int]]:
    """Integrity is ok and every run holds exactly its findings (the writer stores their count as requests)."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = conn.execute(
            "SELECT r.id, r.target, r.requests, (SELECT count(*) FROM run_findings f WHERE f.run_id = r.id), "
            "(SELECT count(*) FROM run_checks c WHERE c.run_id = r.id) FROM runs r ORDER BY r.id").fetchall()
    finally:
        conn.close()
    for run_id, _target, expected, stored, checks in rows:
        assert stored == expected, f"run {run_id} holds {stored} of its {expected} findings"
        assert checks == 1
    return [(run_id, target, expected) for run_id, target, expected, _s, _c in rows]


@pytest.mark.parametrize("kill_after_writes", [1, 4])
def test_kill_9_mid_write_leaves_history_complete(tmp_path: Path, kill_after_writes: int) -> None:
    db = tmp_path / "history.db"
    proc = _writer(db, runs=100_000, per_run=400, target="app:crash")
    done = -1
    writes = 0
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            word, _, number = line.partition(" ")
            if word == "done":
                done = int(number)
            elif word == "writing":
                writes += 1
                if writes > kill_after_writes:
                    # The writer is inside (or about to enter) its transaction for run `writes - 1`.
                    os.kill(proc.pid, signal.SIGKILL)
                    break
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert done == kill_after_writes - 1
    recorded = _assert_complete(db)
    # Every finished run is there; the interrupted one is either fully there or not at all.
    assert len(recorded) in (done + 1, done + 2)
    # The store opens normally afterwards and takes the next run.
    summary = record_run(make_result([make_finding(path="/after")], checks=["injection.sql"],
                                     target="app:crash"), db_url=str(db))
    assert summary.new == [make_finding(path="/after").fingerprint]
    _assert_complete_after_extra_run(db)


def _assert_complete_after_extra_run(db: Path) -> None:
    engine = open_store(str(db), create=False)
    engine.dispose()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_two_writers_at_once_are_serialized(tmp_path: Path) -> None:
    db = tmp_path / "history.db"  # both writers race to create the schema, too
    procs = [_writer(db, runs=12, per_run=150, target=f"app:shard{i}") for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.count("done") == 12
    recorded = _assert_complete(db)
    assert sorted(t for _id, t, _n in recorded) == ["app:shard0"] * 12 + ["app:shard1"] * 12
