"""`bastion dashboard --out dash.html [--db URL]` (registered by bastion.cli)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click

from bastion.errors import BastionError


def _fail(message: str) -> NoReturn:
    click.echo(f"bastion: error: {message}", err=True)
    raise SystemExit(2)


@click.command("dashboard")
@click.option("--out", "out", type=click.Path(dir_okay=False), default="dash.html", show_default=True,
              help="The HTML file to write (one self-contained page).")
@click.option("--db", "db_url", default=None, metavar="URL",
              help="History database URL or SQLite path (default: BASTION_DB_URL or .bastion/history.db).")
@click.option("--target", default=None, help="Only runs of this target (app spec or URL).")
@click.option("--last", type=click.IntRange(min=1), default=None, metavar="N", help="Only the last N runs.")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="bastion.yaml: its `assets` group open findings by asset, its `accepted` feed the audit.")
def dashboard_command(out: str, db_url: str | None, target: str | None, last: int | None,
                      config: str | None) -> None:
    """Write the risk dashboard: trends, time to fix, open findings by asset and threat, coverage, audit."""
    from bastion.dashboard.data import build_dashboard_data
    from bastion.dashboard.html import dashboard_html
    from bastion.history.store import open_store
    from bastion.report.writer import atomic_write

    try:
        assets: dict[str, str] = {}
        accepted: list[object] = []
        if config:
            from bastion.model import load_config

            cfg = load_config(config)
            assets = {name: asset.path for name, asset in cfg.assets.items()}
            accepted = list(cfg.accepted)
        engine = open_store(db_url, create=False)
        try:
            data = build_dashboard_data(engine, target=target, last=last, assets=assets, accepted=accepted)
        finally:
            engine.dispose()
        page = dashboard_html(data, generated_at=datetime.now(UTC).isoformat(timespec="seconds"))
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, page.encode("utf-8", errors="replace"))
    except BastionError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{out}: cannot write the dashboard: {exc.strerror}")
    click.echo(f"wrote {out}: {len(data.history['runs'])} run(s), {data.open_total} open finding(s)")
