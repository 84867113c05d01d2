"""PostgreSQL history: URL forms, migrations in place, refusing foreign or newer databases untouched."""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner
from history_fakes import make_finding, make_result
from sqlalchemy import inspect, make_url, select, text

from bastion.history import open_store, record_run
from bastion.history.cli import history_command
from bastion.history.schema import findings
from bastion.history.store import HistoryError, head_revision


def _plain(url: str) -> str:
    """The psycopg conninfo URL for a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _snapshot(url: str) -> dict[str, object]:
    """Tables, their row counts and the alembic revision: what "untouched" means for a server database."""
    with psycopg.connect(_plain(url)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # type: ignore[index]
        version = (conn.execute("SELECT version_num FROM alembic_version").fetchone()
                   if "alembic_version" in tables else None)
    return {"counts": counts, "version": version}


def test_fresh_postgres_store_has_the_schema_at_head(pg_url: str) -> None:
    engine = open_store(pg_url)
    assert engine.dialect.name == "postgresql" and engine.driver == "psycopg"
    with engine.connect() as conn:
        assert {"runs", "run_checks", "findings", "run_findings", "run_units", "alembic_version"} <= set(
            inspect(conn).get_table_names())
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    engine.dispose()


def test_plain_postgresql_url_uses_psycopg(pg_url: str) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    record_run(make_result([make_finding()]), db_url=plain)
    heroku_style = pg_url.replace("postgresql+psycopg://", "postgres://")
    engine = open_store(heroku_style, create=False)
    assert engine.driver == "psycopg"
    engine.dispose()


def test_postgres_history_is_upgraded_in_place(pg_url: str) -> None:
    old = make_finding(path="/old")
    engine = open_store(pg_url, revision="0001")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO runs (started_at, finished_at, target, seed, tool_version, duration_s, requests, status) "
            "VALUES ('2025-12-01T00:00:00+00:00', '2025-12-01T00:00:01+00:00', 'app:demo', 0, '0.0.9', 1, 5, "
            "'complete')"))
        conn.execute(text(
            "INSERT INTO findings (target, fingerprint, check_id, threat_id, title, severity, confidence, location, "
            "first_seen, last_seen, state) VALUES ('app:demo', :fp, 'injection.sql', 'T', 't', 'high', 'firm', "
            "'{}', '2025-12-01T00:00:00+00:00', '2025-12-01T00:00:00+00:00', 'new')"), {"fp": old.fingerprint})
    engine.dispose()
    summary = record_run(make_result([], checks=["injection.sql"]), db_url=pg_url)
    assert summary.fixed == [old.fingerprint]
    engine = open_store(pg_url, create=False)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        assert conn.execute(select(findings.c.reopen_count)).scalar() == 0
    engine.dispose()


def test_postgres_history_from_a_newer_bastion_is_refused_untouched(pg_url: str) -> None:
    record_run(make_result([make_finding()]), db_url=pg_url)
    with psycopg.connect(_plain(pg_url)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    before = _snapshot(pg_url)
    with pytest.raises(HistoryError, match="newer Bastion") as info:
        record_run(make_result([make_finding(path="/x")]), db_url=pg_url)
    assert "0099" in str(info.value)
    assert _snapshot(pg_url) == before
    out = CliRunner().invoke(history_command, ["--db", pg_url])
    assert out.exit_code == 2 and "newer Bastion" in out.output
    assert _snapshot(pg_url) == before


def test_foreign_postgres_database_is_refused_untouched(pg_url: str) -> None:
    with psycopg.connect(_plain(pg_url)) as conn:
        conn.execute("CREATE TABLE customers (id serial PRIMARY KEY, name text)")
        conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    before = _snapshot(pg_url)
    with pytest.raises(HistoryError, match="not a Bastion history"):
        open_store(pg_url)
    assert _snapshot(pg_url) == before


def test_unreachable_postgres_is_exit_2_without_the_password() -> None:
    url = "postgresql://bastion:hunter2-secret@127.0.0.1:1/history"
    out = CliRunner().invoke(history_command, ["--db", url])
    assert out.exit_code == 2
    assert "cannot connect" in out.output and "127.0.0.1:1" in out.output
    assert "hunter2-secret" not in out.output


def test_missing_postgres_database_is_a_clear_error(pg_url: str) -> None:
    missing = pg_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(HistoryError, match="cannot connect"):
        open_store(missing)
