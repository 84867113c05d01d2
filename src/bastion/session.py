"""Glue between inputs (threat-model file, CLI flags, demo) and the engine: target → surface → scan."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.engine.runner import Progress, ScanOptions, ScanResult, run_scan
from bastion.engine.writes import WritePolicy
from bastion.errors import BastionError, TargetError
from bastion.surface.model import Surface
from bastion.target.budget import Limits
from bastion.target.target import IN_PROCESS_BASE_URL, Target

# The demo is scanned over https so that transport-security checks (HSTS, Secure cookies) apply.
DEMO_BASE_URL = "https://demo.bastion.local"


@dataclass
class ScanPlan:
    target: Target
    surface: Surface
    options: ScanOptions
    config: Any = None  # bastion.model.BastionConfig when a threat-model file was given
    notes: list[str] = field(default_factory=list)


def demo_target(flaws: str | tuple[str, ...] = "all", framework: str = "flask") -> Target:
    from bastion.demo import create_app, create_fastapi_app

    factory = create_fastapi_app if framework == "fastapi" else create_app
    flaws_arg = flaws if isinstance(flaws, str) else ",".join(flaws)
    app = factory(flaws=flaws_arg)
    name = "create_fastapi_app" if framework == "fastapi" else "create_app"
    target = Target.from_app(app, spec=f"bastion.demo:{name}(flaws={flaws_arg!r})", base_url=DEMO_BASE_URL)
    target.name = f"bastion.demo:{name}"
    return target


def check_reachable(target: Target, limits: Limits | None = None) -> None:
    """A live URL must answer before we plan anything: an unreachable target is a usage error."""
    import asyncio

    from bastion.target.client import ProbeClient

    async def probe() -> None:
        async with ProbeClient(target, limits=limits) as client:
            ex = await client.request("GET", "/")
        if not ex.ok:
            raise TargetError(f"{target.base_url}: cannot reach the target ({ex.error})")

    asyncio.run(probe())


def discover(target: Target, openapi: str | Path | None = None, limits: Limits | None = None,
             crawl: bool = True, exclude_paths: list[str] | None = None) -> Surface:
    from bastion.surface.discover import discover_surface

    if target.kind == "url":
        check_reachable(target, limits)

    return discover_surface(target, openapi=openapi, limits=limits, crawl=crawl, exclude_paths=exclude_paths)


def plan_scan(*, config: Any = None, app: str | None = None, url: str | None = None, demo: bool = False,
              flaws: str = "all", framework: str = "flask", openapi: str | Path | None = None,
              checks: list[str] | None = None, exclude_checks: list[str] | None = None, seed: int = 0,
              limits: Limits | None = None, crawl: bool = True, fuzz_budget: int | None = None) -> ScanPlan:
    limits = limits or Limits()
    cfg = None
    secrets: list[str] = []
    scope_hosts: list[str] = []
    exclude_paths: list[str] = []
    if config is not None:
        from bastion.model import BastionConfig, load_config

        cfg = config if isinstance(config, BastionConfig) else load_config(config)
        secrets = sorted(cfg.secret_values())
        scope_hosts = list(cfg.scope.hosts)
        exclude_paths = list(cfg.scope.exclude_paths)
        app = app or cfg.target.app
        url = url or cfg.target.url
        if cfg.checks is not None:
            checks = checks or (list(cfg.checks.include) or None)
            exclude_checks = [*(exclude_checks or []), *cfg.checks.exclude]
        if openapi is None and cfg.target.openapi:
            openapi = cfg.resolve_path(cfg.target.openapi)
    if demo and cfg is None:
        # The demo ships its own threat model: roles alice, bob and admin, and an access policy.
        from bastion.demo import demo_config

        cfg = demo_config(framework)
        secrets = sorted(cfg.secret_values())
    # Declared dependencies with `double: true`: doubles started, their settings in the environment the
    # in-process app factory reads (bastion/resilience/wiring.py); restored once the target is built.
    wired = None
    if cfg is not None and cfg.dependencies and (demo or (app and not url)):
        from bastion.resilience.wiring import wire_dependencies

        wired = wire_dependencies(cfg.dependencies)
        secrets = sorted({*secrets, *(wired.secrets if wired is not None else [])})
    if demo:
        target = demo_target(flaws, framework)
    elif app:
        base_url = (cfg.target.base_url if cfg is not None else None) or IN_PROCESS_BASE_URL
        if cfg is not None:  # the app module sits next to its threat-model file
            import sys

            config_dir = str(cfg.resolve_path("."))
            if config_dir not in sys.path:
                sys.path.insert(0, config_dir)
        target = Target.from_spec(app, base_url=base_url)
    elif url:
        target = Target.from_url(url)
    else:
        raise BastionError("nothing to scan: give --demo, --app MODULE:FACTORY, --url URL or --config FILE")
    target.scope_hosts = scope_hosts
    if wired is not None:
        wired.attach(target)
    if cfg is not None and cfg.target.reset:
        from bastion.target.target import load_app

        target.reset_hook = load_app(cfg.target.reset)
    surface = discover(target, openapi=openapi, limits=limits, crawl=crawl, exclude_paths=exclude_paths)
    roles = {}
    if cfg is not None:
        from bastion.identity.login import login_roles_sync

        roles = login_roles_sync(target, cfg.roles, limits)
    options = ScanOptions(checks=checks, exclude_checks=exclude_checks or [], seed=seed, limits=limits,
                          secrets=secrets, scope_hosts=scope_hosts, exclude_paths=exclude_paths, roles=roles,
                          access=dict(cfg.access) if cfg is not None else {},
                          writes=WritePolicy.resolve(cfg.writes if cfg is not None else "auto",
                                                     in_process=target.in_process),
                          role_configs=dict(cfg.roles) if cfg is not None else {},
                          data_classes={k: list(v) for k, v in cfg.data_classes.items()} if cfg is not None else {},
                          accepted=list(cfg.accepted) if cfg is not None else [],
                          config_file=str(cfg.source) if cfg is not None and cfg.source else None,
                          config=cfg)
    if fuzz_budget is not None:
        options.fuzz_budget = max(0, fuzz_budget)
    return ScanPlan(target=target, surface=surface, options=options, config=cfg)


def scan_from_options(progress: Progress | None = None, **kwargs: Any) -> ScanResult:
    plan = plan_scan(**kwargs)
    try:
        return run_scan(plan.target, plan.surface, plan.options, progress)
    finally:
        from bastion.resilience.wiring import release

        release(plan.target)  # the doubles wired for this scan stop with it
