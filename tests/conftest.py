"""Shared fixtures: demo scans are cached per (framework, flaws, checks) for the whole session."""


from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bastion.engine.runner import ScanResult
from bastion.session import scan_from_options

pytest_plugins = ["pytester"]

_CACHE: dict[tuple[str, str, tuple[str, ...] | None, int], ScanResult] = {}


def _scan_demo(flaws: str = "all", checks: list[str] | tuple[str, ...] | None = None,
               framework: str = "flask", seed: int = 0) -> ScanResult:
    key = (framework, flaws, tuple(checks) if checks else None, seed)
    if key not in _CACHE:
        _CACHE[key] = scan_from_options(demo=True, flaws=flaws, framework=framework,
                                        checks=list(checks) if checks else None, seed=seed)
    return _CACHE[key]


@pytest.fixture(scope="session")
def scan_demo() -> Callable[..., ScanResult]:
    """scan_demo(flaws="all", checks=None, framework="flask", seed=0) -> ScanResult (cached)."""
    return _scan_demo



@pytest.fixture(autouse=True, scope="session")
def _history_in_a_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """CLI scans record history; keep each test worker's store out of the working tree."""
    import os

    os.environ.setdefault("BASTION_DB_URL", str(tmp_path_factory.mktemp("history") / "history.db"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[object]:
    """One throw-away PostgreSQL cluster per test process (history and backup tests).

    Without the binaries the tests fail under CI (.ci/run installs postgresql) and skip elsewhere.
    """
    import os
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "history"))
    from pg_cluster import find_pg_bin, remove_cluster, start_cluster

    bin_dir = find_pg_bin()
    if bin_dir is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the PostgreSQL tests (.ci/run installs postgresql)")
        pytest.skip(message)
    cluster = start_cluster(bin_dir)
    try:
        yield cluster
    finally:
        remove_cluster(cluster)
