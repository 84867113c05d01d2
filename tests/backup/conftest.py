"""Backup test fixtures: the history tests' throw-away PostgreSQL cluster (tests/history/pg_cluster.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "history"))


@pytest.fixture(scope="session")
def drill_pg_cluster() -> Iterator[object]:
    """One PostgreSQL cluster per test process; without the binaries: fail under CI, skip elsewhere."""
    from pg_cluster import find_pg_bin, remove_cluster, start_cluster

    bin_dir = find_pg_bin()
    if bin_dir is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the PostgreSQL drill tests")
        pytest.skip(message)
    cluster = start_cluster(bin_dir)
    try:
        yield cluster
    finally:
        remove_cluster(cluster)
