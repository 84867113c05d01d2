"""Django SQL sensor: statements Django runs in any thread, with the app's file:line, only during a session.

Django's settings are process-wide, so the scenario runs in a child process and reports JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")

APP = textwrap.dedent('''
    import contextvars
    import json
    import os
    import threading

    import django
    from django.conf import settings

    settings.configure(INSTALLED_APPS=[], DATABASES={"default": {
        "ENGINE": "django.db.backends.sqlite3", "NAME": "file:sensed?mode=memory&cache=shared"}})
    django.setup()

    from django.db import connection
    from django.db.backends.utils import CursorWrapper

    from bastion.sensors import django_sql
    from bastion.sensors.events import SensorSession
    from bastion.sensors.hook import sensor_session

    ORIGINAL = CursorWrapper.execute
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE people (name TEXT)")


    def lookup(value):
        with connection.cursor() as cur:
            cur.execute(f"SELECT name FROM people WHERE name = '{value}'")  # SPLICED
            cur.execute("SELECT name FROM people WHERE name = %s", [value])  # BOUND


    def in_worker(value):
        """Like the in-process WSGI transport: a worker thread, context copied, its own DB connection."""
        worker = threading.Thread(target=contextvars.copy_context().run, args=(lookup, value))
        worker.start()
        worker.join()


    lookup("bstoutside01")  # no session: nothing is recorded, nothing is wrapped
    wrapped_before = CursorWrapper.execute is not ORIGINAL
    session = SensorSession(app_roots=[os.path.dirname(os.path.abspath(__file__))])
    with sensor_session(session):
        installed = django_sql.installed()
        in_worker("bstworker01")
        lookup("bstmainthr01")  # the connection opened before the session (also sqlite3-traced)
    events = [{"detail": e.raw_detail, "file": os.path.basename(e.file or ""), "line": e.line}
              for e in session.events if e.kind == "sql"]
    print(json.dumps({"events": events, "installed": installed, "wrapped_before": wrapped_before,
                      "restored": CursorWrapper.execute is ORIGINAL and not django_sql.installed()}))
''')


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work: Path = tmp_path_factory.mktemp("djsql")
    (work / "djsql_app.py").write_text(APP)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(work), os.environ.get("PYTHONPATH", "")])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, "-c", "import djsql_app"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    result["spliced_line"] = next(i for i, line in enumerate(APP.splitlines(), 1) if "# SPLICED" in line)
    return result


def _with(outcome: dict[str, Any], canary: str) -> list[dict[str, Any]]:
    return [e for e in outcome["events"] if canary in e["detail"]]


def test_spliced_statement_in_a_worker_thread_is_seen_at_the_apps_line(outcome: dict[str, Any]) -> None:
    [event] = _with(outcome, "bstworker01")  # exactly one: the bound query shows `%s`, not the value
    assert event["file"] == "djsql_app.py" and event["line"] == outcome["spliced_line"]


def test_preopened_connection_is_not_recorded_twice(outcome: dict[str, Any]) -> None:
    [event] = _with(outcome, "bstmainthr01")  # Django's sensor, not also the sqlite3 trace callback
    assert event["line"] == outcome["spliced_line"]


def test_bound_parameters_are_never_recorded(outcome: dict[str, Any]) -> None:
    assert any("name = %s" in e["detail"] for e in outcome["events"])
    assert not [e for e in outcome["events"] if "%s" in e["detail"] and "bst" in e["detail"]]


def test_installed_only_during_the_session(outcome: dict[str, Any]) -> None:
    assert outcome["installed"] and not outcome["wrapped_before"] and outcome["restored"]
    assert not _with(outcome, "bstoutside01")
