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
