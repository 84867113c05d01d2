"""The store: pragmas, URL resolution, migrations in place, and refusing foreign or newer files untouched."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest
from history_fakes import make_finding, make_result
from sqlalchemy import inspect, select, text

from bastion.errors import BastionError
from bastion.history import open_store, record_run, resolve_db_url
from bastion.history.schema import findings
from bastion.history.store import HistoryError, head_revision


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fresh_store_has_schema_wal_and_foreign_keys(db_path: Path) -> None:
    engine = open_store(str(db_path))
    with engine.connect() as conn:
        assert {"runs", "run_checks", "findings", "run_findings", "alembic_version"} <= set(
            inspect(conn).get_table_names())
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision() == "0003"
    engine.dispose()


def test_db_url_resolution(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BASTION_DB_URL", raising=False)
    assert resolve_db_url() == f"sqlite:///{tmp_path / '.bastion' / 'history.db'}"
    monkeypatch.setenv("BASTION_DB_URL", "postgresql://u:p@127.0.0.1/h")
    assert resolve_db_url() == "postgresql://u:p@127.0.0.1/h"
    assert resolve_db_url("x.db") == f"sqlite:///{tmp_path / 'x.db'}"  # --db wins over the environment


def test_default_location_is_created(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BASTION_DB_URL", raising=False)
    record_run(make_result([make_finding()]))
    assert (tmp_path / ".bastion" / "history.db").is_file()


def test_upgrade_from_revision_1_keeps_data(db_path: Path) -> None:
    old = make_finding(path="/old")
    engine = open_store(str(db_path), revision="0001")
    with engine.begin() as conn:
        assert "reopen_count" not in {c["name"] for c in inspect(conn).get_columns("findings")}
        conn.execute(text(
            "INSERT INTO runs (started_at, finished_at, target, seed, tool_version, duration_s, requests, status) "
            "VALUES ('2025-12-01T00:00:00+00:00', '2025-12-01T00:00:01+00:00', 'app:demo', 0, '0.0.9', 1, 5, "
            "'complete')"))
        conn.execute(text(
            "INSERT INTO findings (target, fingerprint, check_id, threat_id, title, severity, confidence, location, "
            "first_seen, last_seen, state) VALUES ('app:demo', :fp, 'injection.sql', 'T', 't', 'high', 'firm', "
            "'{}', '2025-12-01T00:00:00+00:00', '2025-12-01T00:00:00+00:00', 'new')"), {"fp": old.fingerprint})
        conn.execute(text("INSERT INTO run_checks (run_id, check_id, duration_s, requests, units) "
                          "VALUES (1, 'injection.sql', 1, 5, 1)"))
    engine.dispose()

    engine = open_store(str(db_path))  # upgrades in place to head
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        assert "ix_runs_target_started" in {i["name"] for i in inspect(conn).get_indexes("runs")}
        row = conn.execute(select(findings)).one()
        assert (row.fingerprint, row.reopen_count) == (old.fingerprint, 0)
        assert conn.execute(text("SELECT errors FROM run_checks")).scalar() == 0
    engine.dispose()
    summary = record_run(make_result([], checks=["injection.sql"]), db_url=str(db_path))
    assert summary.fixed == [old.fingerprint]


def _assert_refused(path: Path, *needles: str) -> None:
    before = _digest(path)
    names_before = sorted(os.listdir(path.parent))
    with pytest.raises(BastionError) as info:
        open_store(str(path))
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message
    assert isinstance(info.value, HistoryError) and info.value.exit_code == 2
    assert _digest(path) == before
    assert sorted(os.listdir(path.parent)) == names_before  # no -wal/-shm/journal left behind


def test_random_bytes_are_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "random.db"
    path.write_bytes(os.urandom(8192))
    _assert_refused(path, "not a SQLite database")


def test_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    _assert_refused(path, "customers", "not a Bastion history")


def test_history_from_a_newer_bastion_is_refused_untouched(db_path: Path) -> None:
    record_run(make_result([make_finding()]), db_url=str(db_path))
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    _assert_refused(db_path, "newer Bastion", "0099")


def test_corrupt_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("y" * 500,)] * 200)
    conn.commit()
    conn.close()
    data = bytearray(path.read_bytes())
    data[4096:16384] = os.urandom(12288)  # trash pages after the header page
    path.write_bytes(bytes(data))
    _assert_refused(path)


def test_missing_history_is_not_created_for_reading(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    with pytest.raises(HistoryError, match="no history yet"):
        open_store(str(path), create=False)
    assert not path.exists()


def test_unusable_or_unreachable_server_url_is_a_clear_error() -> None:
    with pytest.raises(HistoryError) as info:
        open_store("postgresql://bastion:secret@127.0.0.1:1/history")
    assert "127.0.0.1" in str(info.value) and "secret" not in str(info.value)
    with pytest.raises(HistoryError, match="not a usable database URL"):
        open_store("nosuchdialect://x/y")


def test_write_retries_while_another_writer_holds_the_lock(db_path: Path, monkeypatch) -> None:
    from sqlalchemy.exc import OperationalError

    from bastion.history import store

    engine = open_store(str(db_path))
    naps: list[float] = []
    monkeypatch.setattr(store.time, "sleep", naps.append)
    calls = []

    def work(conn) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return "written"

    assert store.write_transaction(engine, work) == "written"
    assert len(naps) == 2

    def always_locked(conn) -> str:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    with pytest.raises(HistoryError, match="still locked"):
        store.write_transaction(engine, always_locked, attempts=3)
    assert len(naps) == 2 + 2

    def broken(conn) -> str:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    with pytest.raises(HistoryError, match="disk I/O error"):
        store.write_transaction(engine, broken)  # not a lock: no retry
    assert len(naps) == 4
    engine.dispose()


def test_reading_an_old_history_upgrades_it_and_an_empty_one_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    open_store(str(old), revision="0001").dispose()
    engine = open_store(str(old), create=False)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    engine.dispose()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(HistoryError, match="empty"):
        open_store(str(empty), create=False)
