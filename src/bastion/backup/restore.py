"""Restore a backup into a scratch location and fingerprint tables (row count + checksum of sorted rows).

SQLite: the restored file (or an executed SQL dump) in a temp dir, checked with `PRAGMA integrity_check`.
PostgreSQL: a new scratch database (`bastion_drill_<hex>`) on the scratch server (default: the live
server), filled by `pg_restore` (custom format) or `psql` (plain SQL), dropped afterwards. The live
store is opened read-only (SQLite `mode=ro`, PostgreSQL read-only transactions).
"""

from __future__ import annotations

import glob
import hashlib
import secrets
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

PG_TOOL_TIMEOUT = 600
_SQLITE_HEADER = b"SQLite format 3\x00"


class RestoreError(RuntimeError):
    """The backup does not restore (corrupt, wrong format, restore tool failed)."""


class DrillSetupError(RuntimeError):
    """The drill cannot run here (no scratch database rights, tools or live store): not tested, not a finding."""


@dataclass(frozen=True)
class TableState:
    """A table's row count and a checksum over its rows in a canonical order."""

    rows: int
    checksum: str


Snapshot = dict[str, TableState]


def sqlite_snapshot(conn: sqlite3.Connection) -> Snapshot:
    """Every user table of a SQLite database, fingerprinted."""
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    out: Snapshot = {}
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        rows = sorted(repr(tuple(row)) for row in conn.execute(f"SELECT * FROM {quoted}"))  # noqa: S608
        out[name] = TableState(len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
    return out


def live_sqlite_snapshot(path: Path) -> Snapshot:
    """The live SQLite store, opened read-only."""
    if not path.is_file():
        raise DrillSetupError(f"live SQLite store {path.name} not found")
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=10)
    try:
        return sqlite_snapshot(conn)
    finally:
        conn.close()


def restore_sqlite(plain: bytes, scratch: Path) -> Snapshot:
    """Restore a SQLite file or SQL dump under `scratch`, check its integrity, fingerprint it."""
    target = scratch / "restored.sqlite3"
    if plain.startswith(_SQLITE_HEADER):
        target.write_bytes(plain)
        conn = sqlite3.connect(target)
    else:
        try:
            script = plain.decode("utf-8")
        except UnicodeDecodeError:
            raise RestoreError("neither a SQLite database file nor a SQL dump") from None
        conn = sqlite3.connect(target)
        try:
            conn.executescript(script)
        except sqlite3.Error as exc:
            conn.close()
            raise RestoreError(f"the SQL dump does not load: {exc}") from None
    try:
        check = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if check != ["ok"]:
            raise RestoreError("PRAGMA integrity_check: " + "; ".join(map(str, check[:5])))
        return sqlite_snapshot(conn)
    except sqlite3.DatabaseError as exc:
        raise RestoreError(f"not a usable SQLite database: {exc}") from None
    finally:
        conn.close()


# --- PostgreSQL ---------------------------------------------------------------------------------

def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://`) as a libpq URL (`postgresql://`)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(libpq_url(url))._replace(path="/" + name))


def pg_tool(name: str) -> str:
    """`pg_restore` / `psql`: on PATH, else Debian's newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, name).is_file():
            return str(Path(folder, name))
    raise DrillSetupError(f"{name} not found (install the PostgreSQL client tools)")


def pg_snapshot(url: str) -> Snapshot:
    """Every base table outside the system schemas, fingerprinted server-side, in a read-only transaction."""
    import psycopg

    out: Snapshot = {}
    with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
        conn.read_only = True
        tables = conn.execute("SELECT table_schema, table_name FROM information_schema.tables "
                              "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
                              "('pg_catalog', 'information_schema') ORDER BY 1, 2").fetchall()
        for schema, table in tables:
            ident = f'"{schema.replace(chr(34), chr(34) * 2)}"."{table.replace(chr(34), chr(34) * 2)}"'
            rows, digest = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "  # noqa: S608
                f"FROM {ident} t").fetchone() or (0, "")
            out[f"{schema}.{table}"] = TableState(int(rows), str(digest)[:16])
    return out


def pg_last_commit(url: str) -> float | None:
    """When the live database last committed (needs track_commit_timestamp = on), else None."""
    import psycopg

    with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
        conn.read_only = True
        if conn.execute("SHOW track_commit_timestamp").fetchone() != ("on",):
            return None
        row = conn.execute("SELECT extract(epoch FROM (pg_last_committed_xact()).timestamp)").fetchone()
        return float(row[0]) if row and row[0] is not None else None


def restore_postgres(plain: bytes, live_url: str, scratch_url: str | None, scratch: Path) -> Snapshot:
    """Restore into a new scratch database, fingerprint it, drop it."""
    import psycopg

    server = libpq_url(scratch_url or live_url)
    name = f"bastion_drill_{secrets.token_hex(4)}"
    dump = scratch / "backup.dump"
    dump.write_bytes(plain)
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise DrillSetupError(f"cannot create a scratch database for the restore: {exc}".strip()) from None
    target = _with_database(server, name)
    try:
        if plain.startswith(b"PGDMP"):
            argv = [pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "-d", target, str(dump)]
        else:
            argv = [pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", str(dump)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PG_TOOL_TIMEOUT, check=False)
        if done.returncode != 0:
            raise RestoreError(f"{Path(argv[0]).name} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[:400]}")
        return pg_snapshot(target)
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
