"""Helpers for testing checks: scan an app object directly, and run a finding's generated reproduction.

    result = scan_app(my_app, surface, checks=["injection.sql"])
    assert reproduction_passes(result.findings[0].reproduction.pytest, replace=("buggy_app()", "fixed_app()"))
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable
from typing import Any

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.surface.model import Surface
from bastion.target.target import IN_PROCESS_BASE_URL, Target


def scan_app(app: Any, surface: Surface | None = None, *, checks: Iterable[str], spec: str = "tests:app",
             base_url: str = IN_PROCESS_BASE_URL, seed: int = 0, strict: bool = True) -> ScanResult:
    """Run `checks` against an in-process app; without a surface, discover it (no crawl).

    `spec` is how the generated reproductions re-create the app (`module:factory()`); `strict` makes a
    check that raised fail the caller instead of being recorded silently.
    """
    target = Target.from_app(app, spec=spec, base_url=base_url)
    if surface is None:
        from bastion.surface.discover import discover_surface

        surface = discover_surface(target, crawl=False)
    result = run_scan(target, surface, ScanOptions(checks=list(checks), seed=seed))
    if strict:
        errors = [e for c in result.checks for e in c.errors]
        assert not errors, errors
    return result


def findings_of(result: ScanResult, check_id: str) -> list[Any]:
    """The findings of one check, after asserting that no check raised during the scan."""
    errors = [e for c in result.checks for e in c.errors]
    assert not errors, errors
    return [f for f in result.findings if f.check_id == check_id]


def reproduction_passes(source: str, *, replace: tuple[str, str] | None = None, app: Any = None,
                        module: str | None = None) -> bool:
    """Run a generated pytest reproduction; True when its test passes (the flaw is gone).

    `replace` swaps text in the source (e.g. the app factory of the scanned app for a fixed one);
    `app` with `module` registers `module.app` so a reproduction of spec `module:app` imports it.
    """
    if replace is not None:
        source = source.replace(*replace)
    if module is not None:
        mod = types.ModuleType(module)
        mod.app = app  # type: ignore[attr-defined]
        sys.modules[module] = mod
    namespace: dict[str, Any] = {}
    exec(compile(source, "<reproduction>", "exec"), namespace)  # noqa: S102 - code Bastion generated
    test = next(v for k, v in namespace.items() if k.startswith("test_"))
    try:
        if "sensors" in test.__code__.co_varnames[:test.__code__.co_argcount]:
            # A sensor-proof reproduction: what the `sensors` fixture gives it under pytest.
            from bastion.sensors import SensorSession, sensor_session

            with sensor_session(SensorSession()) as session:
                test(session)
        else:
            test()
    except AssertionError:
        return False
    return True
