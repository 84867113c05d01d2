"""The `sensors` pytest fixture: a session active for one test, events readable by the test."""

from __future__ import annotations

import pytest

USER_TESTS = '''
import sqlite3, subprocess, sys

import anyio


def test_sees_sql_and_argv(sensors):
    sqlite3.connect(":memory:").execute("SELECT 'bstfixture01'")
    subprocess.run([sys.executable, "-c", "pass", "bstfixture02"], check=True)
    assert [e.kind for e in sensors.matching("bstfixture01")] == ["sql"]
    assert [e.kind for e in sensors.matching("bstfixture02")] == ["subprocess"]


def test_sees_worker_threads(sensors, tmp_path):
    p = tmp_path / "bstfixture03"
    p.write_text("x")

    async def main():
        await anyio.to_thread.run_sync(p.read_text)

    anyio.run(main)
    assert [e.detail.rsplit(" ", 1)[1] for e in sensors.matching("bstfixture03")] == ["mode=w", "mode=r"]


def test_no_session_outside_the_fixture():
    from bastion.sensors import active_session
    assert active_session() is None
'''


def test_sensors_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3)
