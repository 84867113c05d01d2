"""Scan a small third-party app with a threat model (roles, access, privacy/audit sections): shared by tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.engine.writes import WritePolicy
from bastion.identity.login import login_roles_sync
from bastion.model import BastionConfig
from bastion.resilience.wiring import release, wire_dependencies
from bastion.session import discover
from bastion.target.target import Target


def scan_with_model(app: Any, model: dict[str, Any], checks: list[str],
                    reset: Callable[[Any], None] | None = None) -> ScanResult:
    """Run `checks` against the in-process `app` with `model` as its bastion.yaml (target filled in).

    With `dependencies:` doubles, `app` is a factory called while their settings are in the environment.
    """
    cfg = BastionConfig.model_validate({"target": {"app": "tests:app"}, **model})
    wired = wire_dependencies(cfg.dependencies) if cfg.dependencies else None
    target = Target.from_app(app() if wired is not None else app)
    if wired is not None:
        wired.attach(target)
    target.reset_hook = reset
    surface = discover(target, crawl=False)
    roles = login_roles_sync(target, cfg.roles)
    options = ScanOptions(checks=checks, roles=roles, role_configs=dict(cfg.roles), access=dict(cfg.access),
                          writes=WritePolicy.resolve("auto", in_process=True), config=cfg,
                          secrets=sorted(cfg.secret_values()))
    try:
        result = run_scan(target, surface, options)
    finally:
        release(target)
    errors = [e for c in result.checks for e in c.errors]
    assert not errors, errors
    return result
