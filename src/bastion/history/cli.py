"""Click commands `bastion history` and `bastion baseline create` (registered by bastion.cli)."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import click

from bastion.errors import BastionError
from bastion.history.metrics import SEVERITIES, history_report, load_snapshot
from bastion.history.store import open_store

_SEV_SHORT = {"critical": "crit", "high": "high", "medium": "med", "low": "low", "info": "info"}


def _fail(message: str) -> NoReturn:
    click.echo(f"bastion: error: {message}", err=True)
    raise SystemExit(2)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render_table(report: dict[str, Any]) -> str:
    """The history report as plain-text tables for a terminal."""
    lines = ["Runs (oldest first)",
             f"{'run':>5}  {'started':<25} {'status':<9} {'secs':>8} {'reqs':>7} {'new':>4} "
             + " ".join(f"{_SEV_SHORT[s]:>4}" for s in SEVERITIES) + f" {'open':>5}  target"]
    new_by_run = {r["run_id"]: r["new"] for r in report["discovery"]["per_run"]}
    for run, sev in zip(report["runs"], report["open_by_severity"], strict=True):
        lines.append(f"{run['run_id']:>5}  {run['started_at']:<25} {run['status']:<9} {run['duration_s']:>8.2f} "
                     f"{run['requests']:>7} {new_by_run[run['run_id']]:>4} "
                     + " ".join(f"{sev[s]:>4}" for s in SEVERITIES) + f" {sev['total']:>5}  {run['target']}")
    lines += ["", "Time to fix (days)", f"{'severity':<9} {'fixed':>5} {'mean':>8} {'median':>8}"]
    for sev, ttf in report["time_to_fix"].items():
        lines.append(f"{sev:<9} {ttf['fixed']:>5} {_fmt(ttf['mean_days']):>8} {_fmt(ttf['median_days']):>8}")
    disc, reopen = report["discovery"], report["reopen"]
    weeks = ", ".join(f"{w}: {n}" for w, n in disc["per_week"].items()) or "-"
    lines += ["", f"Discovery: {disc['mean_per_run']:g} new findings per run; per week: {weeks}",
              f"Reopen rate: {reopen['rate']:g} ({reopen['reopened']} reopened of {reopen['fixes']} fixes)",
              "", "Per-check cost", f"{'check':<40} {'runs':>5} {'mean s':>9} {'mean reqs':>10}"]
    for cid, cost in report["checks"].items():
        lines.append(f"{cid:<40} {cost['runs']:>5} {cost['mean_duration_s']:>9.3f} {cost['mean_requests']:>10.1f}")
    return "\n".join(lines)


@click.command("history")
@click.option("--db", "db_url", default=None, metavar="URL",
              help="History database URL or SQLite path (default: BASTION_DB_URL or .bastion/history.db).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--target", default=None, help="Only runs of this target (app spec or URL).")
@click.option("--last", type=click.IntRange(min=1), default=None, metavar="N", help="Only the last N runs.")
def history_command(db_url: str | None, fmt: str, target: str | None, last: int | None) -> None:
    """Show trends from the run history: open findings, time to fix, discovery and reopen rates, cost."""
    try:
        engine = open_store(db_url, create=False)
    except BastionError as exc:
        _fail(str(exc))
    try:
        report = history_report(load_snapshot(engine, target=target, last=last))
    finally:
        engine.dispose()
    if fmt == "json":
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    elif not report["runs"]:
        click.echo("no runs recorded" + (f" for target {target}" if target else ""))
    else:
        click.echo(render_table(report))


@click.group("baseline")
def baseline_group() -> None:
    """Reviewed baselines: findings in one do not fail `--fail-on`."""


@baseline_group.command("create")
@click.option("--from", "source", required=True, type=click.Path(dir_okay=False),
              help="A findings.json written by `bastion scan --format json`.")
@click.option("--out", default="bastion-baseline.json", show_default=True, type=click.Path(dir_okay=False),
              help="Baseline file to write (atomically).")
@click.option("--reviewer", default=None, help="Who reviewed the findings going into the baseline.")
def baseline_create_command(source: str, out: str, reviewer: str | None) -> None:
    """Write a baseline of every finding in a findings.json; review it and commit it."""
    from bastion.findings.baseline import create_baseline, load_findings_file

    try:
        baseline = create_baseline(load_findings_file(source), out, reviewer=reviewer)
    except BastionError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{out}: cannot write the baseline: {exc.strerror}")
    click.echo(f"wrote {out}: {len(baseline.entries)} finding(s) baselined")


@click.command("changelog")
@click.option("--since", required=True, metavar="RUN|DATE",
              help="A run id, or a date (compares from the last run before it).")
@click.option("--until", "until", type=click.IntRange(min=1), default=None, metavar="RUN",
              help="Compare up to this run (default: the latest run of the target).")
@click.option("--target", default=None, help="Target (app spec or URL); default: the latest run's.")
@click.option("--db", "db_url", default=None, metavar="URL", help="History database URL or SQLite path.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def changelog_command(since: str, until: int | None, target: str | None, db_url: str | None, fmt: str) -> None:
    """Which threats, entry points and roles gained or lost coverage since a run or a date."""
    from bastion.history.changelog import build_changelog, render_changelog

    try:
        engine = open_store(db_url, create=False)
    except BastionError as exc:
        _fail(str(exc))
    try:
        doc = build_changelog(engine, since, until=until, target=target)
    except BastionError as exc:
        _fail(str(exc))
    finally:
        engine.dispose()
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False) if fmt == "json" else render_changelog(doc))


@click.command("audit")
@click.option("--last", type=click.IntRange(min=1), default=10, show_default=True, metavar="N",
              help="How many recent runs to audit.")
@click.option("--target", default=None, help="Only runs of this target.")
@click.option("--db", "db_url", default=None, metavar="URL", help="History database URL or SQLite path.")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="bastion.yaml whose `accepted` suppressions are checked for expiry.")
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False), default=None,
              help="Baseline file whose entries' `until` dates are checked for expiry.")
@click.option("--coverage", "coverage_file", type=click.Path(dir_okay=False), default=None,
              help="pytest coverage JSON (--bastion-coverage-out) listing hand-written tests and their threats.")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Audit as of this day (default: today).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def audit_command(last: int, target: str | None, db_url: str | None, config: str | None,
                  baseline_file: str | None, coverage_file: str | None, today: Any, fmt: str) -> None:
    """Audit the suite: unexercised checks and threats, flaky checks, expiring exclusions, untested threats."""
    from datetime import date

    from bastion.history.audit import AuditInput, audit_report, load_audit_runs, load_user_tests, render_audit

    try:
        accepted = []
        if config:
            from bastion.model import load_config

            accepted = list(load_config(config).accepted)
        baseline = None
        if baseline_file:
            from bastion.findings.baseline import load_baseline

            baseline = load_baseline(baseline_file)
        tests = load_user_tests(coverage_file) if coverage_file else []
        engine = open_store(db_url, create=False)
        try:
            window, check_runs, seen = load_audit_runs(engine, last=last, target=target)
        finally:
            engine.dispose()
    except BastionError as exc:
        _fail(str(exc))
    data = AuditInput(runs=window, check_runs=check_runs, run_findings=seen, checks=_dast_checks(),
                      static_threats=_static_threats(), catalog=_catalog(), accepted=accepted, baseline=baseline,
                      tests=tests)
    report = audit_report(data, today.date() if today else date.today())
    click.echo(json.dumps(report, indent=2, ensure_ascii=False) if fmt == "json" else render_audit(report))


def _dast_checks() -> dict[str, str]:
    from bastion.checks.registry import load_checks

    return {cid: spec.threat for cid, spec in load_checks().items()}


def _static_threats() -> frozenset[str]:
    from bastion.static import static_checks_by_threat

    return frozenset(static_checks_by_threat())


def _catalog() -> dict[str, Any]:
    from bastion.catalog import load_catalog

    return dict(load_catalog())
