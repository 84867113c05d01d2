"""In-process outages (bastion/resilience/outage.py): scoped to the fault window and to the switching context."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.doubles.faults import FaultInjector
from bastion.model import BastionConfig
from bastion.resilience import wire_dependencies
from bastion.resilience.outage import Outage, active, address_of, outage_for


def _in_thread(work: Any) -> Any:
    """Run `work` in a plain new thread (no copied context), return its result or exception."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(work())
        except Exception as exc:  # noqa: BLE001 -- the test inspects whatever happened
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out[0]


def _touch(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
    return "ok"


@pytest.fixture
def listener() -> Iterator[tuple[str, int]]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()


def test_sqlite_outage_hits_only_the_declared_file_in_the_switching_context(tmp_path: Path) -> None:
    store, other = tmp_path / "perms.db", tmp_path / "history.db"
    _touch(store)
    outage = Outage("perms", sqlite_path=str(store))
    with FaultInjector().outage(outage):
        with pytest.raises(sqlite3.OperationalError, match="unable to open database file"):
            sqlite3.connect(store)
        with pytest.raises(sqlite3.OperationalError):
            sqlite3.connect(f"file:{store}?mode=rw", uri=True)
        assert _touch(other) == "ok"  # another file: untouched
        assert _in_thread(lambda: _touch(store)) == "ok"  # another thread's work: untouched
        copied = contextvars.copy_context()  # what the in-process transport hands the app's thread
        assert isinstance(_in_thread(lambda: copied.run(sqlite3.connect, store)), sqlite3.OperationalError)
    assert _touch(store) == "ok" and active() == ()
    assert outage.fault_state.count("outage") == 3


def test_tcp_outage_refuses_the_store_address_only(listener: tuple[str, int]) -> None:
    host, port = listener
    outage = Outage("db", address=address_of(f"postgresql://localhost:{port}/app"))
    with FaultInjector().errors(outage):  # any fault kind is an outage for a store Bastion does not run
        with pytest.raises(ConnectionRefusedError, match="bastion fault"):
            socket.create_connection((host, port), timeout=2)
        assert _in_thread(lambda: socket.create_connection((host, port), timeout=2).close()) is None
    socket.create_connection((host, port), timeout=2).close()


def test_outage_follows_asyncio_tasks_started_in_the_window(listener: tuple[str, int]) -> None:
    host, port = listener
    outage = Outage("cache", address=(host, port))

    async def connect() -> None:
        _, writer = await asyncio.open_connection(host, port)
        writer.close()

    async def scenario() -> None:
        with FaultInjector().outage(outage):
            with pytest.raises(ConnectionRefusedError):
                await asyncio.create_task(connect())
        await connect()

    asyncio.run(scenario())


calls: list[tuple[Any, bool]] = []


def switch(app: Any, on: bool) -> None:
    """A `fault_hook` the way an app would write one."""
    calls.append((app, on))


def test_fault_hook_is_preferred_and_called_with_the_app(tmp_path: Path) -> None:
    cfg = BastionConfig.model_validate({"target": {"app": "svc:app"}, "dependencies": {
        "db": {"kind": "sqlite", "path": str(tmp_path / "x.db"), "fault_hook": f"{__name__}:switch",
               "protects": ["GET /x"]}}})
    wired = wire_dependencies(cfg.dependencies)
    assert wired is not None
    class App:
        pass

    app = App()
    wired.attach(app)
    item = wired.get("db")
    assert item is not None and item.kind == "sqlite" and item.addresses == [str(tmp_path / "x.db")]
    calls.clear()
    with FaultInjector().outage(item.double):
        _touch(tmp_path / "x.db")  # the hook decides what breaks: the path is not refused by Bastion
    assert calls == [(app, True), (app, False)]
    wired.close()


def test_declarations_without_a_way_to_break_them_wire_nothing() -> None:
    dep = BastionConfig.model_validate({"target": {"app": "a:b"}, "dependencies": {
        "db": {"kind": "postgresql"}}}).dependencies["db"]
    assert outage_for("db", dep) is None
    with pytest.raises(ValueError, match="host and a port"):
        address_of("memcached://cache")


def test_history_writes_during_the_window_succeed(tmp_path: Path) -> None:
    """Bastion's own store is SQLite too: a sqlite outage on the app's file must not touch it."""
    from bastion.history.record import record_run
    from bastion.session import scan_from_options

    result = scan_from_options(demo=True, flaws="permission_db_fail_open", checks=["resilience.fail-open"])
    from bastion.demo.resilience_deps import permissions_db_path

    outage = Outage("permissions", sqlite_path=permissions_db_path())
    with FaultInjector().outage(outage):
        with pytest.raises(sqlite3.OperationalError):
            sqlite3.connect(permissions_db_path())
        summary = record_run(result, db_url=str(tmp_path / "history.db"))
    assert summary is not None
    with sqlite3.connect(tmp_path / "history.db") as conn:
        assert conn.execute("SELECT count(*) FROM findings").fetchone()[0] >= 1
