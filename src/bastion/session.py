"""Glue between inputs (threat-model file, CLI flags, demo) and the engine: target → surface → scan."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import ExitStack
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
    # The declared dependencies planning wired (doubles started, outages prepared) for this scan.
    wired: list[str] = field(default_factory=list)

    def release(self) -> None:
        """Stop the doubles and the alert listener started for this plan's target now (idempotent)."""
        from bastion.drills.alerts import release_sinks
        from bastion.resilience.wiring import release

        release(self.target)
        release_sinks(self.target)

    def __enter__(self) -> ScanPlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def scan_needs(checks: list[str] | None, exclude_checks: list[str] | None = None,
               roles: Mapping[str, Any] | None = None) -> frozenset[str]:
    """What the selected checks (`@check(needs=...)`) and the roles' logins need started for the scan."""
    from bastion.checks.registry import select_checks

    excluded = [x.rstrip(".") for x in exclude_checks or []]
    selected = [c for c in select_checks(checks)
                if not any(c.id == x or c.id.startswith(x + ".") for x in excluded)]
    needs = {n for spec in selected for n in spec.needs}
    # An `oidc:` role logs in at a provider, or through a target route that redirects to one: that provider
    # may be the IdP double the app is wired to, so the double must run before the roles log in.
    if any(getattr(role, "oidc", None) is not None for role in (roles or {}).values()):
        needs.add("oidc")
    return frozenset(needs)


def needed_dependencies(dependencies: Mapping[str, Any], needs: Iterable[str], *,
                        demo: bool) -> dict[str, Any]:
    """The declared dependencies to wire for a scan that needs `needs` (see `scan_needs`).

    The demo gets exactly the kinds asked for: its factory reads every dependency setting as optional (the
    routes behind an unwired dependency answer 503 "not configured"). A user's service gets all or nothing:
    its factory may require any setting and its routes may call any dependency, so its dependencies are
    left out only when no selected check needs one (and `plan_scan` starts them all after all when the app
    cannot be built without them).
    """
    wanted = set(needs)
    if not wanted:
        return {}
    if "dependencies" in wanted or not demo:
        return dict(dependencies)
    return {name: dep for name, dep in dependencies.items() if dep.kind in wanted}


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
              limits: Limits | None = None, crawl: bool = True, fuzz_budget: int | None = None,
              needs: Iterable[str] | None = None, auto_roles: bool | None = None) -> ScanPlan:
    """Build the target, wire what the scan needs, discover the surface and log the roles in.

    `needs`: what to start (`@check(needs=...)` values); default: what the selected checks and roles need.
    `auto_roles`: sign two throw-away users up when no role is configured (None: the model's setting, else
    on for in-process targets and URL targets that allow the writes; see bastion/identity/autoroles.py).
    """
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
    # Only what the selected checks and the roles need is started (`needed_dependencies`): ~0.65 s saved
    # per demo scan whose checks drive no double.
    in_process = bool(demo or (app and not url))
    wanted = frozenset(needs) if needs is not None else scan_needs(
        checks, exclude_checks, cfg.roles if cfg is not None else None)
    declared = dict(cfg.dependencies) if cfg is not None and in_process else {}
    deps = needed_dependencies(declared, wanted, demo=demo)
    notes: list[str] = []
    # What planning starts (doubles, listeners) is stopped here if planning fails; on success it lives as
    # long as the target and `scan_from_options` releases it after the scan.
    started = ExitStack()
    wired = _wire(deps, started)
    try:
        # The model's alert webhook (`alerts.webhook`): a loopback listener whose URL the app factory reads from
        # the named environment variable (bastion/drills/alerts.py); restored once the target is built. The
        # demo starts it for checks that watch alerts; a user's service whenever it gets its dependencies.
        alerts = cfg.alerts if cfg is not None and cfg.alerts is not None and cfg.alerts.webhook else None
        alert_sinks = None
        if alerts is not None and ("alerts" in wanted or (wanted and not demo)):
            alert_sinks = _start_sinks(alerts, in_process, started)
        if demo:
            target = demo_target(flaws, framework)
        elif app:
            base_url = (cfg.target.base_url if cfg is not None else None) or IN_PROCESS_BASE_URL
            if cfg is not None:  # the app module sits next to its threat-model file
                import sys

                config_dir = str(cfg.resolve_path("."))
                if config_dir not in sys.path:
                    sys.path.insert(0, config_dir)
            try:
                target = Target.from_spec(app, base_url=base_url)
            except Exception:
                if (deps or not declared) and (alert_sinks is not None or alerts is None):
                    raise
                # The factory requires a dependency's settings: build it again with everything declared wired.
                if declared and not deps:
                    deps = declared
                    wired = _wire(deps, started)
                if alerts is not None and alert_sinks is None:
                    alert_sinks = _start_sinks(alerts, in_process, started)
                target = Target.from_spec(app, base_url=base_url)
        elif url:
            target = Target.from_url(url)
        else:
            raise BastionError("nothing to scan: give --demo, --app MODULE:FACTORY, --url URL or --config FILE")
        target.scope_hosts = scope_hosts
        if declared.keys() - deps.keys():
            notes.append("dependencies not wired (no selected check needs them): "
                         + ", ".join(sorted(declared.keys() - deps.keys())))
        if wired is not None:
            secrets = sorted({*secrets, *wired.secrets})
            wired.attach(target)
        if alert_sinks is not None:
            alert_sinks.attach(target)
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
        from bastion.identity.autoroles import add_auto_roles

        auto_note = add_auto_roles(target, surface, options, cfg, limits, auto_roles)
        notes += [auto_note] if auto_note else []
        if crawl and target.kind == "url" and options.roles:
            _crawl_as_roles(target, surface, options.roles, limits, exclude_paths)
        return ScanPlan(target=target, surface=surface, options=options, config=cfg, notes=notes,
                        wired=sorted(wired.deps) if wired is not None else [])
    except BaseException:
        started.close()
        raise


def _crawl_as_roles(target: Target, surface: Surface, roles: Mapping[str, Any], limits: Limits,
                    exclude_paths: list[str]) -> None:
    """Crawl a URL target again as each signed-in role (same limits): pages only members reach join the surface.

    In-process targets need no second crawl: their routes are introspected whatever the crawl can reach.
    """
    from bastion.surface.crawl import crawl_site
    from bastion.surface.discover import _run_sync, merge_surfaces, normalise

    for role in roles.values():
        headers = dict(role.headers)
        if role.cookies:
            headers["cookie"] = "; ".join(f"{name}={value}" for name, value in role.cookies.items())
        if not headers:
            continue
        known = normalise(surface)
        crawled = _run_sync(lambda known=known, headers=headers: crawl_site(
            target, known=known, limits=limits, exclude_paths=exclude_paths, headers=headers))
        merge_surfaces(surface, crawled)


def _wire(deps: Mapping[str, Any], started: ExitStack) -> Any:
    """Start the doubles of `deps` (their settings in os.environ until `attach`); stopped with `started`."""
    if not deps:
        return None
    from bastion.resilience.wiring import wire_dependencies

    wired = wire_dependencies(deps)
    if wired is not None:
        started.callback(wired.close)
    return wired


def _start_sinks(alerts: Any, in_process: bool, started: ExitStack) -> Any:
    """Start the alert webhook listener (its URL in os.environ until `attach`); stopped with `started`."""
    from bastion.drills.alerts import start_alert_sinks

    sinks = start_alert_sinks(alerts, in_process=in_process)
    if sinks is not None:
        started.callback(sinks.close)
        started.callback(sinks.restore_environment)
    return sinks


def scan_from_options(progress: Progress | None = None, **kwargs: Any) -> ScanResult:
    """Plan and run a scan; the doubles and listeners it started stop when it ends, whatever happens."""
    with plan_scan(**kwargs) as plan:
        return run_scan(plan.target, plan.surface, plan.options, progress)
