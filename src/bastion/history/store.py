"""Opening the history database: URL resolution, SQLite pragmas, validation, migrations, write retries."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from bastion.errors import BastionError

DEFAULT_DB_PATH = Path(".bastion") / "history.db"
ENV_DB_URL = "BASTION_DB_URL"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 30.0
WRITE_ATTEMPTS = 8
# How long to wait for a PostgreSQL server to accept the connection before calling it unreachable.
CONNECT_TIMEOUT_S = 10
# pg_advisory_xact_lock key serializing schema migrations of one PostgreSQL history (any constant works).
MIGRATION_LOCK_KEY = 0x0BA5_710E

T = TypeVar("T")


class HistoryError(BastionError):
    """The history database is missing, foreign, corrupt, too new or unreachable."""


def resolve_db_url(db_url: str | None = None) -> str:
    """`--db` wins, then BASTION_DB_URL, then `.bastion/history.db`; a bare path means a SQLite file."""
    chosen = db_url or os.environ.get(ENV_DB_URL) or str(DEFAULT_DB_PATH)
    if "://" not in chosen:
        return URL.create("sqlite", database=str(Path(chosen).expanduser().resolve())).render_as_string()
    return chosen


def display_url(db_url: str) -> str:
    """The URL as shown to users: the file path for SQLite, the URL without its password otherwise."""
    try:
        url = make_url(db_url)
    except ArgumentError:
        return db_url
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def _alembic_config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def known_revisions() -> set[str]:
    """Every migration revision this Bastion ships."""
    script = ScriptDirectory.from_config(_alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def head_revision() -> str:
    """The newest migration revision this Bastion ships."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself, so writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that upgrades from read to write can fail with "database is locked"
        # without waiting; BEGIN IMMEDIATE waits (busy timeout) for the writer lock instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("bastion_write") else "BEGIN")

    return engine


def _server_url(url: URL) -> URL:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver Bastion depends on."""
    if url.drivername in ("postgres", "postgresql"):
        return url.set(drivername="postgresql+psycopg")
    return url


def _server_engine(url: URL) -> Engine:
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _check_sqlite_file(path: Path, *, create: bool) -> None:
    """Refuse a file that is not SQLite before SQLAlchemy touches it."""
    if not path.exists():
        if not create:
            raise HistoryError(f"{path}: no history yet (record a scan first, or give --db)")
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if path.is_dir():
        raise HistoryError(f"{path}: is a directory, not a history database")
    with path.open("rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if head and head != SQLITE_MAGIC:
        raise HistoryError(f"{path}: not a SQLite database, so not a Bastion history; "
                           "move it away or give another --db")


def _validate(engine: Engine, shown: str) -> str | None:
    """The file's alembic revision (None when empty); raise on a foreign, corrupt or newer database."""
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                verdict = conn.exec_driver_sql("PRAGMA quick_check").scalar()
                if verdict != "ok":
                    raise HistoryError(f"{shown}: the SQLite file is corrupt ({verdict}); restore it from a backup")
            tables = set(inspect(conn).get_table_names())
            if not tables:
                return None
            if "alembic_version" not in tables:
                listed = ", ".join(sorted(tables)[:5])
                raise HistoryError(f"{shown}: holds tables that are not a Bastion history ({listed}); "
                                   "give another --db")
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (HistoryError, OperationalError):
        raise  # OperationalError: the server or file cannot be reached; open_store says so
    except DatabaseError as exc:
        raise HistoryError(f"{shown}: cannot read the history database: {exc.orig or exc}") from None
    if revision is None:
        return None
    if revision not in known_revisions():
        raise HistoryError(f"{shown}: written by a newer Bastion (schema revision {revision}, this Bastion "
                           f"knows up to {head_revision()}); upgrade Bastion to use it")
    return str(revision)


def _upgrade(conn: Connection, revision: str) -> None:
    if conn.dialect.name == "postgresql":
        # Two processes opening a fresh history at once: the second waits, then finds the schema current.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    command.upgrade(_alembic_config(conn), revision)


def open_store(db_url: str | None = None, *, create: bool = True, revision: str = "head") -> Engine:
    """An engine on a valid, migrated history; `create=False` refuses to create a new SQLite file."""
    resolved = resolve_db_url(db_url)
    shown = display_url(resolved)
    try:
        url = make_url(resolved)
        is_sqlite = url.get_backend_name() == "sqlite"
        if is_sqlite:
            if url.database and url.database != ":memory:":
                _check_sqlite_file(Path(url.database), create=create)
            engine = _sqlite_engine(url)
        else:
            engine = _server_engine(_server_url(url))
    except (ArgumentError, NoSuchModuleError) as exc:
        raise HistoryError(f"{shown}: not a usable database URL ({exc})") from None
    except ImportError as exc:
        raise HistoryError(f"{shown}: the database driver is not installed ({exc.name}); "
                           f"pip install it to use this URL") from None
    try:
        current = _validate(engine, shown)
    except OperationalError as exc:
        engine.dispose()
        reason = " ".join(str(exc.orig or exc).split())  # drivers add hint lines; a CLI error is one line
        raise HistoryError(f"{shown}: cannot connect to the history database: {reason}") from None
    except BaseException:
        engine.dispose()
        raise
    if current is None and not create:
        engine.dispose()
        raise HistoryError(f"{shown}: no history yet (the database is empty; record a scan first)")
    # An existing Bastion history is upgraded in place even when only reading it.
    if current != revision:
        write_transaction(engine, lambda conn: _upgrade(conn, revision), shown=shown)
        if is_sqlite:
            _enable_wal(engine)
    return engine


def _enable_wal(engine: Engine) -> None:
    """Switch the file to WAL (persistent): readers never block the writer, a killed writer loses nothing."""
    raw = engine.raw_connection()
    try:
        # Outside any transaction: SQLite refuses to change the journal mode inside one.
        raw.driver_connection.execute("PRAGMA journal_mode=WAL")  # type: ignore[union-attr]
    finally:
        raw.close()


def _is_locked(exc: OperationalError) -> bool:
    message = str(exc.orig or exc).lower()
    return any(word in message for word in ("database is locked", "database is busy", "deadlock",
                                             "could not serialize"))


def write_transaction(engine: Engine, work: Callable[[Connection], T], *, shown: str = "history",
                      attempts: int = WRITE_ATTEMPTS) -> T:
    """Run `work` in one write transaction; retry when another writer holds the SQLite lock."""
    for attempt in range(attempts):
        try:
            with engine.connect().execution_options(bastion_write=True) as conn, conn.begin():
                return work(conn)
        except OperationalError as exc:
            if not _is_locked(exc):
                raise HistoryError(f"{shown}: cannot write the history: {exc.orig or exc}") from None
            if attempt == attempts - 1:
                raise HistoryError(f"{shown}: still locked by another writer after {attempts} attempts; "
                                   "try again") from None
            # Jitter keeps two retrying writers from colliding again in lock step.
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")  # pragma: no cover
