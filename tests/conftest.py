"""Shared fixtures: demo scans are cached per (framework, flaws, checks) for the whole session."""


from __future__ import annotations

from collections.abc import Callable

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
