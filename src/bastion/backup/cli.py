"""`bastion drill backup --config FILE | --demo`: the recovery drill for every declared data store."""

from __future__ import annotations

import json
from typing import Any

import click

from bastion.backup.drill import DrillReport, run_drill
from bastion.backup.stores import resolve_stores
from bastion.errors import BastionError


def _load(config: str | None, demo: bool, flaws: str) -> tuple[Any, Any]:
    """The model and, when a store has a `locate` hook, the in-process app it is called with."""
    if demo:
        from bastion.demo import create_app, demo_config

        return demo_config("flask"), create_app(flaws)
    if config is None:
        raise BastionError("give --config bastion.yaml (with a data_stores: section) or --demo")
    from bastion.model import load_config

    cfg = load_config(config)
    if not cfg.data_stores:
        raise BastionError(f"{config}: no data_stores: section, nothing to drill")
    app = None
    if any(s.locate for s in cfg.data_stores.values()):
        if cfg.target.app is None:
            raise BastionError(f"{config}: data_stores.*.locate needs an in-process target (target.app)")
        import sys

        from bastion.target.target import load_app

        sys.path.insert(0, str(cfg.resolve_path(".")))
        app = load_app(cfg.target.app)
    return cfg, app


def _as_dict(report: DrillReport) -> dict[str, Any]:
    return {"store": report.store.name, "kind": report.store.kind,
            "measurements": dict(report.measurements()),
            "backup_age_s": report.backup_age_s, "restore_s": report.restore_s,
            "rpo_s": report.store.rpo_s, "rto_s": report.store.rto_s,
            "problems": [{"threat": p.threat, "title": p.title, "detail": p.detail} for p in report.problems],
            "not_tested": report.skipped}


def _print(report: DrillReport) -> None:
    click.echo(f"data store {report.store.name}")
    for what, value in report.measurements():
        click.echo(f"  {what:32} {value}")
    for p in report.problems:
        click.echo(f"  FAIL {p.threat:20} {p.title}: {p.detail}")
    if not report.problems:
        click.echo("  ok: backup fresh, protected as declared, restores and matches")


@click.command("backup")
@click.option("--config", type=click.Path(exists=True, dir_okay=False), help="Threat-model file with data_stores:.")
@click.option("--demo", is_flag=True, help="Drill the shipped demo's database backup.")
@click.option("--flaws", default="all", show_default=True, help="Demo flaws to plant (with --demo).")
@click.option("--format", "fmt", type=click.Choice(["console", "json"]), default="console", show_default=True)
def backup_drill_command(config: str | None, demo: bool, flaws: str, fmt: str) -> None:
    """Backup exists within the RPO, is encrypted as declared, restores within the RTO and matches the live data.

    Exit 1 when any expectation fails. The live stores are only read; restores go to scratch locations.
    """
    cfg, app = _load(config, demo, flaws)
    reports = [run_drill(store) for store in resolve_stores(cfg, app)]
    if fmt == "json":
        click.echo(json.dumps({"schema": "bastion-drill-backup/1", "stores": [_as_dict(r) for r in reports]},
                              indent=2))
    else:
        for report in reports:
            _print(report)
    raise SystemExit(1 if any(r.problems for r in reports) else 0)
