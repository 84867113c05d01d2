"""The `bastion` command. Exit codes: 0 clean, 1 findings at/above --fail-on, 2 usage or config error."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bastion import __version__
from bastion.errors import BastionError

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("console", "json", "sarif", "junit", "html", "md", "defectdojo")


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _fail(message: str) -> None:
    click.echo(f"bastion: error: {message}", err=True)
    sys.exit(2)


def target_options(func: F) -> F:
    """Options naming what to test, shared by scan / surface / init."""
    opts = [
        click.option("--config", "config", type=click.Path(dir_okay=False), help="Threat-model file (bastion.yaml)."),
        click.option("--demo", is_flag=True, help="Use the built-in demo service, in-process."),
        click.option("--flaws", default="all", show_default=True,
                     help="Demo flaws to plant: all, none, or a comma-separated list."),
        click.option("--framework", type=click.Choice(["flask", "fastapi"]), default="flask", show_default=True,
                     help="Which demo variant."),
        click.option("--app", "app", help="In-process app: 'module:app' or 'module:create_app()'."),
        click.option("--url", "url", help="A running service you own, e.g. http://127.0.0.1:8000."),
        click.option("--openapi", type=click.Path(dir_okay=False), help="OpenAPI 3.x document to merge."),
        click.option("--no-crawl", is_flag=True, help="Do not crawl links and forms."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _limits(config_limits: Any, **flags: Any) -> Any:
    from dataclasses import replace

    from bastion.target.budget import Limits

    base = config_limits or Limits()
    changes = {k: v for k, v in flags.items() if v is not None}
    return replace(base, **changes)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bastion")
def cli() -> None:
    """Bastion: threat-model-driven security testing for Python web services."""


@cli.command()
@target_options
@click.option("--checks", help="Check ids or families to run (comma-separated), e.g. injection,headers.csp-missing.")
@click.option("--exclude-checks", help="Check ids or families to skip.")
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes every random choice.")
@click.option("--format", "formats", default="console", show_default=True,
              help=f"Comma-separated: {', '.join(FORMATS)}.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bastion-report", show_default=True,
              help="Directory for file reports.")
@click.option("--fail-on", default="high", show_default=True,
              help="Exit 1 when a finding is at or above this severity (critical/high/medium/low/info/none).")
@click.option("--max-requests", type=int, help="Request budget for the whole run.")
@click.option("--timeout", "request_timeout", type=float, help="Per-request time limit (seconds).")
@click.option("--total-time", type=float, help="Time budget for the whole run (seconds).")
@click.option("--concurrency", type=int, help="Requests in flight at once.")
@click.option("--fuzz-budget", type=click.IntRange(min=0), default=None,
              help="Fuzzed examples per entry point for the fuzz checks (default 24; 0 disables fuzzing).")
@click.option("--static", "with_static", is_flag=True,
              help="Also analyse the source (SAST, secrets, infra files) and merge it with the runtime findings.")
@click.option("--static-path", "static_paths", multiple=True, type=click.Path(exists=True),
              help="Source tree for --static (default: the in-process app's package).")
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False),
              help="Reviewed baseline (bastion baseline create): only findings not in it count for --fail-on.")
@click.option("--db", "db_url", help="History database: SQLite path or SQLAlchemy URL "
              "(default .bastion/history.db, or $BASTION_DB_URL).")
@click.option("--no-history", is_flag=True, help="Do not record this run in the history.")
@click.option("--shard", "shard_spec", metavar="I/N",
              help="Run only part I of N of the plan (CI matrix); join the parts with `bastion report --merge`.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--auto-roles/--no-auto-roles", default=None,
              help="With no role configured, sign two throw-away users up through the service's sign-up "
                   "(default: in-process targets, and URL targets whose writes allow it).")
def scan(config: str | None, demo: bool, flaws: str, framework: str, app: str | None, url: str | None,
         openapi: str | None, no_crawl: bool, checks: str | None, exclude_checks: str | None, seed: int,
         formats: str, out_dir: str, fail_on: str, max_requests: int | None, request_timeout: float | None,
         total_time: float | None, concurrency: int | None, fuzz_budget: int | None, with_static: bool,
         static_paths: tuple[str, ...],
         baseline_file: str | None, db_url: str | None, no_history: bool, quiet: bool,
         shard_spec: str | None = None, auto_roles: bool | None = None) -> None:
    """Attack the target's entry points and report findings."""
    from rich.console import Console

    from bastion.engine.runner import run_scan
    from bastion.findings.model import Severity
    from bastion.report import write_reports
    from bastion.report.console import ConsoleProgress, print_summary
    from bastion.report.gate import exit_code
    from bastion.session import plan_scan

    fmt = _csv(formats) or ["console"]
    unknown = [f for f in fmt if f not in FORMATS]
    if unknown:
        _fail(f"--format: unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    gate: str | None = None if fail_on.lower() == "none" else fail_on
    if gate is not None:
        try:
            Severity.parse(gate)
        except ValueError as exc:
            _fail(f"--fail-on: {exc}")
    console = Console(stderr=True)
    try:
        cfg_limits = None
        cfg = None
        if config:
            from bastion.model import load_config

            cfg = load_config(config)
            cfg_limits = cfg.limits()
        limits = _limits(cfg_limits, max_requests=max_requests, request_timeout=request_timeout,
                         total_time=total_time, concurrency=concurrency)
        shard = None
        if shard_spec:
            from bastion.engine.shard import Shard

            shard = Shard.parse(shard_spec)
        plan = plan_scan(config=cfg, app=app, url=url, demo=demo, flaws=flaws, framework=framework,
                         openapi=openapi, checks=_csv(checks), exclude_checks=_csv(exclude_checks), seed=seed,
                         limits=limits, crawl=not no_crawl, fuzz_budget=fuzz_budget, auto_roles=auto_roles)
        with plan:  # the doubles and listeners started for the scan stop with it, whatever happens
            plan.options.shard = shard
            progress = None if quiet else ConsoleProgress(console)
            try:
                result = run_scan(plan.target, plan.surface, plan.options, progress)
            finally:
                if progress is not None:
                    progress.close()
        if with_static or static_paths:
            from bastion.static import merge_with_dast, run_static

            paths: list[str | Path] = [*(static_paths or _app_source_paths(plan.target))]
            static_result = run_static(paths, plan.surface)
            result = merge_with_dast(result, static_result.findings)
            console.print(f"static: {static_result.files_scanned} files, {len(static_result.findings)} findings, "
                          f"{len(static_result.skipped)} skipped", markup=False)
        gated, accepted, notes, baseline_states = _accepted_findings(result, cfg, baseline_file)
        files = [f for f in fmt if f != "console"]
        if "console" in fmt:
            print_summary(result, Console())
        for note in notes:
            console.print(note, markup=False)
        if accepted:
            console.print(f"{len(accepted)} finding(s) baselined or suppressed: not counted for --fail-on")
        if files:
            written = write_reports(result, files, Path(out_dir), baseline_states=baseline_states)
            for path in written:
                console.print(f"wrote {path}")
        if shard is not None and not no_history:
            # One shard's findings would mark the other shards' findings fixed: the merged run is recorded.
            console.print(f"history: shard {shard.label} not recorded; `bastion report --merge` records the "
                          "merged run", markup=False)
        elif not no_history:
            from bastion.history.record import record_run

            summary = record_run(result, db_url=db_url, config_hash=cfg.config_hash() if cfg else None,
                                 accepted={f.fingerprint for f in accepted})
            counts = ", ".join(f"{n} {state}" for state, n in summary.counts.items() if n)
            console.print(f"history: run {summary.run_id} recorded ({counts or 'no findings'})", markup=False)
    except BastionError as exc:
        _fail(str(exc))
    sys.exit(exit_code(result, gate, gated))


def _app_source_paths(target: Any) -> list[str]:
    """The source of an in-process app: the package holding its module (or the lone module file)."""
    import importlib.util

    module = target.spec.partition(":")[0] if target.in_process else ""
    spec = importlib.util.find_spec(module) if module else None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise BastionError("--static needs --static-path PATH for this target (no importable app source)")
    origin = Path(spec.origin)
    in_package = origin.name == "__init__.py" or "." in module
    return [str(origin.parent if in_package else origin)]


def _accepted_findings(result: Any, cfg: Any, baseline_file: str | None) -> tuple[list[Any], list[Any], list[str],
                                                                                   dict[str, str] | None]:
    """(findings that count for the gate, baselined or suppressed ones, notes, SARIF baseline states)."""
    from datetime import date

    from bastion.findings.baseline import apply_baseline, apply_suppressions, load_baseline, sarif_baseline_states

    gated = list(result.findings)
    accepted: list[Any] = []
    states = None
    if baseline_file:
        baseline = load_baseline(baseline_file)
        gated, baselined = apply_baseline(gated, baseline, date.today())
        accepted += baselined
        states = sarif_baseline_states(result.findings, baseline)
    notes: list[str] = []
    if cfg is not None and cfg.accepted:
        gated, suppressed, notes = apply_suppressions(gated, cfg.accepted, date.today())
        accepted += suppressed
    return gated, accepted, notes, states


@cli.command()
@target_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def surface(config: str | None, demo: bool, flaws: str, framework: str, app: str | None, url: str | None,
            openapi: str | None, no_crawl: bool, fmt: str) -> None:
    """List the entry points and inputs Bastion discovered (method, path, input, name, source line)."""
    from bastion.session import plan_scan
    from bastion.surface.discover import surface_rows

    try:
        plan = plan_scan(config=config, app=app, url=url, demo=demo, flaws=flaws, framework=framework,
                         openapi=openapi, crawl=not no_crawl)
        plan.release()  # listing the surface needs no running double
    except BastionError as exc:
        _fail(str(exc))
    rows = surface_rows(plan.surface)
    if fmt == "json":
        click.echo(json.dumps([dict(zip(("method", "path", "in", "name", "source"), r, strict=True))
                               for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(plan.surface.entry_points)} entry points, {len(rows)} inputs")
    for col in ("method", "path", "in", "name", "source"):
        table.add_column(col)
    for row in rows:
        table.add_row(*[str(c) if c is not None else "" for c in row])
    Console().print(table)


@cli.command()
@click.argument("threat_id", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def catalog(threat_id: str | None, fmt: str) -> None:
    """List the threat catalog, or show one threat (like `ruff rule`)."""
    from bastion.catalog import load_catalog
    from bastion.checks.registry import load_checks

    threats = load_catalog()
    checks = load_checks()
    by_threat: dict[str, list[str]] = {}
    for spec in checks.values():
        by_threat.setdefault(spec.threat, []).append(spec.id)
    from bastion.static import static_checks_by_threat

    for static_threat, rule_ids in static_checks_by_threat().items():
        by_threat.setdefault(static_threat, []).extend(rule_ids)
    from bastion.coverage.expired import CHECK_ID as EXPIRED_EXCLUSION  # judged by the engine itself

    by_threat.setdefault(EXPIRED_EXCLUSION, []).append(EXPIRED_EXCLUSION)
    if threat_id:
        threat = threats.get(threat_id)
        if threat is None:
            _fail(f"unknown threat {threat_id!r}; `bastion catalog` lists them")
            return
        if fmt == "json":
            click.echo(json.dumps({**threat.model_dump(mode="json"), "checks": sorted(by_threat.get(threat.id, []))},
                                  indent=2))
            return
        refs = ", ".join([f"CWE-{threat.cwe}", *threat.owasp, *threat.owasp_api, *[f"ASVS {a}" for a in threat.asvs]])
        click.echo(f"# {threat.title} ({threat.id})\n")
        click.echo(f"Severity: {threat.severity.value}   STRIDE: {', '.join(threat.stride)}")
        click.echo(f"References: {refs}")
        click.echo(f"Checks: {', '.join(sorted(by_threat.get(threat.id, []))) or '(none yet)'}\n")
        click.echo(f"## What it is\n{threat.summary}\n\n## Why it is bad\n{threat.why}\n")
        if threat.example:
            click.echo(f"## Example\n{threat.example}\n")
        click.echo(f"## How to fix\n{threat.mitigation}")
        return
    if fmt == "json":
        click.echo(json.dumps([{**t.model_dump(mode="json"), "checks": sorted(by_threat.get(t.id, []))}
                               for t in threats.values()], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(threats)} threats")
    for col in ("id", "severity", "CWE", "OWASP", "title"):
        table.add_column(col)
    for t in sorted(threats.values(), key=lambda t: t.id):
        table.add_row(t.id, t.severity.value, str(t.cwe), " ".join(t.owasp_refs), t.title)
    Console().print(table)


@cli.command()
@click.option("--app", "app", help="In-process app: 'module:app' or 'module:create_app()'.")
@click.option("--url", "url", help="A running service you own.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default="bastion.yaml", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(app: str | None, url: str | None, out: str, force: bool) -> None:
    """Write a starting threat-model file from the app's routes."""
    from bastion.model.init import render_starting_config, write_starting_config
    from bastion.session import plan_scan

    if not app and not url:
        _fail("init needs --app MODULE:FACTORY or --url URL")
    try:
        plan = plan_scan(app=app, url=url)
        plan.release()
        text = render_starting_config(plan.surface, app_spec=app, url=url)
        write_starting_config(Path(out), text, force=force)
    except BastionError as exc:
        _fail(str(exc))
    click.echo(f"wrote {out} ({len(plan.surface.entry_points)} entry points)")


@cli.group()
def demo() -> None:
    """The built-in demo service (the test oracle)."""


@demo.command("serve")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback only.")
@click.option("--flaws", default="all", show_default=True)
@click.option("--framework", type=click.Choice(["flask", "fastapi"]), default="flask", show_default=True)
@click.option("--tls", "use_tls", is_flag=True, help="Serve https with the demo's TLS configuration (demo/tls.py); "
                                                     "the CA is printed for --ca-file.")
def demo_serve(port: int, host: str, flaws: str, framework: str, use_tls: bool) -> None:
    """Serve the demo on 127.0.0.1 for URL-mode scans."""
    from bastion.demo.serve import serve

    try:
        serve(port, flaws=flaws, host=host, framework=framework, use_tls=use_tls)
    except (ValueError, BastionError) as exc:
        _fail(str(exc))


@demo.command("flaws")
def demo_flaws() -> None:
    """List the demo's flaws and the checks that must find them."""
    from bastion.demo.flaws import FLAWS

    for flaw in sorted(FLAWS.values(), key=lambda f: f.id):
        click.echo(f"{flaw.id:28} {', '.join(flaw.checks):50} {flaw.location}")


@cli.command("checks")
def list_checks() -> None:
    """List the registered checks."""
    from bastion.checks.registry import load_checks

    for cid, spec in sorted(load_checks().items()):
        click.echo(f"{cid:34} {spec.severity.value:8} CWE-{spec.cwe:<5} {spec.scope:6} {spec.title}")


@cli.group()
def drill() -> None:
    """Drills that exercise recovery and detection: `bastion drill backup`, `bastion drill breach`."""


def _register_commands() -> None:
    """Commands that live with their subsystem."""
    from bastion.backup.cli import backup_drill_command
    from bastion.tls.cli import tls_command

    cli.add_command(tls_command, "tls")
    drill.add_command(backup_drill_command, "backup")
    from bastion.drills.cli import breach_drill_command

    drill.add_command(breach_drill_command, "breach")
    from bastion.coverage.cli import build_coverage_command
    from bastion.dashboard.cli import dashboard_command
    from bastion.history.cli import audit_command, baseline_group, changelog_command, history_command
    from bastion.report.merge_cli import report_command
    from bastion.static.cli import static

    cli.add_command(history_command, "history")
    cli.add_command(baseline_group, "baseline")
    cli.add_command(audit_command, "audit")
    cli.add_command(changelog_command, "changelog")
    cli.add_command(static, "static")
    cli.add_command(build_coverage_command(target_options), "coverage")
    cli.add_command(dashboard_command, "dashboard")
    cli.add_command(report_command, "report")


_register_commands()


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except BastionError as exc:
        _fail(str(exc))
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
