"""The recovery drill on PostgreSQL: pg_dump archives and plain dumps restored into a scratch database."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import psycopg
from backup_fixtures import gzip_bytes, write_backup

from bastion.backup import StoreSpec, run_drill
from bastion.backup.restore import libpq_url, pg_tool

SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL, total_cents int NOT NULL);
INSERT INTO customers (email) VALUES ('ada@example.test'), ('grace@example.test');
INSERT INTO orders (customer_id, total_cents) VALUES (1, 1200), (2, 990), (1, 45);
"""


def _live(cluster: Any) -> str:
    url = cluster.database_url("live")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(SCHEMA)
    return url


def _dump(url: str, *flags: str) -> bytes:
    done = subprocess.run([pg_tool("pg_dump"), "--no-owner", "--no-privileges", *flags, "-d", libpq_url(url)],
                          capture_output=True, check=True, timeout=120)
    return done.stdout


def _spec(url: str, backups: Path) -> StoreSpec:
    return StoreSpec(name="orders-db", kind="postgresql", url=url, backup_glob=str(backups / "*"),
                     rto_s=900.0, rpo_s=86400.0, rto="15m", rpo="24h")


def _drill_databases(url: str) -> list[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bastion_drill_%'")]


def test_custom_format_archive_restores_and_matches(pg_cluster: Any, tmp_path: Path) -> None:
    url = _live(pg_cluster)
    write_backup(tmp_path / "b", "orders.dump", _dump(url, "-Fc"))
    report = run_drill(_spec(url, tmp_path / "b"))
    assert report.problems == [] and report.skipped == []
    assert report.tables_compared == 2
    assert report.classification is not None and report.classification.kind == "pg_dump custom-format archive"
    assert _drill_databases(url) == []  # the scratch database is dropped


def test_plain_gzipped_dump_restores(pg_cluster: Any, tmp_path: Path) -> None:
    url = _live(pg_cluster)
    write_backup(tmp_path / "b", "orders.sql.gz", gzip_bytes(_dump(url, "-Fp")))
    report = run_drill(_spec(url, tmp_path / "b"))
    assert report.problems == [] and report.tables_compared == 2


def test_truncated_archive_does_not_restore(pg_cluster: Any, tmp_path: Path) -> None:
    url = _live(pg_cluster)
    data = _dump(url, "-Fc")
    write_backup(tmp_path / "b", "orders.dump", data[: len(data) // 2])
    report = run_drill(_spec(url, tmp_path / "b"))
    assert [p.threat for p in report.problems] == ["backup.restore"]
    assert "pg_restore failed" in report.problems[0].detail
    assert _drill_databases(url) == []


def test_rows_written_since_the_backup_are_tolerated_and_measured(pg_cluster: Any, tmp_path: Path) -> None:
    url = _live(pg_cluster)
    write_backup(tmp_path / "b", "orders.dump", _dump(url, "-Fc"))
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("INSERT INTO orders (customer_id, total_cents) VALUES (2, 5)")
    report = run_drill(_spec(url, tmp_path / "b"))
    assert report.problems == []
    assert report.changed_tables == ["public.orders: live 4 rows, backup 3"]


def test_missing_table_without_commit_timestamps_is_measured_not_judged(pg_cluster: Any,
                                                                        tmp_path: Path) -> None:
    """track_commit_timestamp is off on this cluster: the drill cannot tell a partial backup from tables
    created since, so it reports the difference as the data-loss window instead of a finding."""
    url = _live(pg_cluster)
    write_backup(tmp_path / "b", "orders.dump", _dump(url, "-Fc", "-t", "customers"))
    report = run_drill(_spec(url, tmp_path / "b"))
    assert report.problems == [] and report.live_changed_since_backup is True
    assert report.changed_tables == ["public.orders: live 3 rows, not in the backup"]
