"""History test fixtures: a fresh SQLite history per test, and one on a throw-away PostgreSQL cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's history file lives (not created yet)."""
    return tmp_path / "hist" / "history.db"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[object]:
    """One PostgreSQL cluster per test process; without the binaries: fail under CI, skip elsewhere."""
    from pg_cluster import find_pg_bin, remove_cluster, start_cluster

    bin_dir = find_pg_bin()
    if bin_dir is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the PostgreSQL history tests (.ci/run installs postgresql)")
        pytest.skip(message)
    cluster = start_cluster(bin_dir)
    try:
        yield cluster
    finally:
        remove_cluster(cluster)


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return pg_cluster.database_url()


@pytest.fixture(params=BACKENDS)
def history_db(request, tmp_path: Path) -> str:
    """A history URL on each backend: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "hist" / "history.db")
    return request.getfixturevalue("pg_url")
