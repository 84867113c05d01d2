"""History test fixtures: a fresh SQLite history per test, and one on a throw-away PostgreSQL cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's history file lives (not created yet)."""
    return tmp_path / "hist" / "history.db"


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
