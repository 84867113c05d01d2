"""History test fixtures: a fresh SQLite history per test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's history file lives (not created yet)."""
    return tmp_path / "hist" / "history.db"
