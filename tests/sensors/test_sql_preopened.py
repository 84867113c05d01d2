"""sqlite3 connections opened before the sensor session (at import time) are traced during it, and only then."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from flask import Flask, jsonify, request

from bastion.sensors import SensorSession, sensor_session, sqlite_trace
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.testing import findings_of, reproduction_passes, scan_app

SQL = "injection.sql"
BLIND = "blind, seen only by the sensors"

# Opened when this module is imported, long before any scan: the way many small apps hold their DB.
_DB = sqlite3.connect(":memory:", check_same_thread=False)
_DB.execute("CREATE TABLE products (name TEXT)")
_DB.executemany("INSERT INTO products VALUES (?)", [("apple",), ("pear",)])
_DB_LOCK = threading.Lock()


def metering_app(*, safe: bool = False) -> Flask:
    """Search metering through the import-time connection: errors swallowed, results unused."""
    app = Flask(__name__)

    @app.get("/search")
    def search() -> object:
        q = request.args.get("q", "apple")
        with _DB_LOCK:
            try:
                if safe:
                    _DB.execute("SELECT count(*) FROM products WHERE name = ?", (q,)).fetchone()
                else:
                    _DB.execute(f"SELECT count(*) FROM products WHERE name = '{q}'").fetchone()  # noqa: S608
            except sqlite3.Error:
                pass
        return jsonify(ok=True)

    @app.get("/safe/search")
    def safe_search() -> object:
        with _DB_LOCK:
            _DB.execute("SELECT count(*) FROM products WHERE name = ?", (request.args.get("q", "apple"),)).fetchone()
        return jsonify(ok=True)

    return app


SURFACE = Surface([EntryPoint("GET", "/search", [Input("query", "q")]),
                   EntryPoint("GET", "/safe/search", [Input("query", "q")])])


def test_blind_sqli_through_an_import_time_connection_is_found_by_the_sensor() -> None:
    result = scan_app(metering_app(), SURFACE, checks=[SQL], spec=f"{__name__}:metering_app()")
    found = {f.location.path: f for f in findings_of(result, SQL)}
    assert set(found) == {"/search"}  # the bound twin stays clean although its values show expanded
    f = found["/search"]
    assert BLIND in f.title and f.confidence == "confirmed"
    sensor = [e for e in f.evidence if e.kind == "sensor"]
    assert sensor and sensor[0].meta["file"].endswith("test_sql_preopened.py")
    assert f.location.file and f.location.file.endswith("test_sql_preopened.py")
    # Its reproduction watches the SQL sensor: the import-time connection is traced there too.
    assert "SENSOR_KIND = 'sql'" in f.reproduction.pytest
    assert not reproduction_passes(f.reproduction.pytest)
    assert reproduction_passes(f.reproduction.pytest, replace=("metering_app()", "metering_app(safe=True)"))


def test_trace_is_installed_with_the_session_and_removed_after() -> None:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    session = SensorSession()
    with sensor_session(session):
        assert sqlite_trace.traced_count() >= 1
        conn.execute("SELECT 'bstinside1'").fetchone()
    conn.execute("SELECT 'bstafter01'").fetchone()  # no session: must not be seen, nor reach the callback
    assert sqlite_trace.traced_count() == 0
    assert [e.kind for e in session.matching("bstinside1")] == ["sql"]
    assert session.matching("bstafter01") == []
    # A later session traces it again.
    again = SensorSession()
    with sensor_session(again):
        conn.execute("SELECT 'bstagain01'").fetchone()
    assert [e.kind for e in again.matching("bstagain01")] == ["sql"]


def test_nested_sessions_keep_tracing_until_the_outer_one_ends() -> None:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    outer = SensorSession()
    with sensor_session(outer):
        with sensor_session(SensorSession()):
            pass
        conn.execute("SELECT 'bstnested1'").fetchone()
    assert [e.kind for e in outer.matching("bstnested1")] == ["sql"]
    assert sqlite_trace.traced_count() == 0


def test_connections_bound_to_another_thread_and_closed_ones_are_skipped() -> None:
    holder: list[sqlite3.Connection] = []
    worker = threading.Thread(target=lambda: holder.append(sqlite3.connect(":memory:")))
    worker.start()
    worker.join()
    closed = sqlite3.connect(":memory:")
    closed.close()
    with sensor_session(SensorSession()):  # neither raises; the other connections are still traced
        traced = sqlite_trace.traced_count()
    assert traced >= 1  # at least this module's import-time connection
    with pytest.raises(sqlite3.ProgrammingError):
        holder[0].execute("SELECT 1")  # untouched: still bound to its own thread


def test_the_search_is_bounded() -> None:
    conns = [sqlite3.connect(":memory:") for _ in range(3)]
    assert len(sqlite_trace.preopened_connections(limit=2)) == 2
    for c in conns:
        c.close()
