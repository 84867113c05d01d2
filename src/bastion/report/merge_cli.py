"""`bastion report --merge a.json b.json ...`: the reports of a sharded run (registered by bastion.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from bastion.errors import BastionError


def _fail(message: str) -> NoReturn:
    click.echo(f"bastion: error: {message}", err=True)
    raise SystemExit(2)


@click.command("report")
@click.option("--merge", "merge", is_flag=True, required=True,
              help="Join the findings.json of every shard of one `bastion scan --shard i/n` run.")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bastion-report", show_default=True,
              help="Directory for the merged reports.")
@click.option("--format", "formats", default="json,html", show_default=True,
              help="Comma-separated: json, sarif, junit, html, md, defectdojo.")
@click.option("--db", "db_url", help="History database (default .bastion/history.db, or $BASTION_DB_URL).")
@click.option("--no-history", is_flag=True, help="Do not record the merged run in the history.")
@click.option("--config", "config", type=click.Path(dir_okay=False),
              help="The shards' bastion.yaml: its hash is recorded with the run in the history.")
@click.option("--fail-on", default="none", show_default=True,
              help="Exit 1 when a merged finding is at or above this severity (critical/high/medium/low/info).")
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False),
              help="Reviewed baseline: only merged findings not in it count for --fail-on.")
def report_command(merge: bool, files: tuple[str, ...], out_dir: str, formats: str, db_url: str | None,
                   no_history: bool, config: str | None, fail_on: str, baseline_file: str | None) -> None:
    """Write the reports of a sharded run, identical to the unsharded run's (timings aside)."""
    from bastion.report.gate import exit_code, parse_fail_on
    from bastion.report.merge import merge_files
    from bastion.report.writer import FILE_FORMATS, validate_formats, write_reports

    try:
        parse_fail_on(fail_on)
        chosen = [f for f in validate_formats(formats.split(",")) if f in FILE_FORMATS]
        if not chosen:
            raise BastionError(f"--format: choose file formats from {', '.join(FILE_FORMATS)}")
        result = merge_files(files)
        gated, states = list(result.findings), None
        if baseline_file:
            from datetime import date

            from bastion.findings.baseline import apply_baseline, load_baseline, sarif_baseline_states

            baseline = load_baseline(baseline_file)
            gated, _ = apply_baseline(gated, baseline, date.today())
            states = sarif_baseline_states(result.findings, baseline)
        written = write_reports(result, chosen, Path(out_dir), baseline_states=states)
        for path in written:
            click.echo(f"wrote {path}", err=True)
        if not no_history:
            from bastion.history.record import record_run

            config_hash = None
            if config:
                from bastion.model import load_config

                config_hash = load_config(config).config_hash()
            summary = record_run(result, db_url=db_url, config_hash=config_hash)
            counts = ", ".join(f"{n} {state}" for state, n in summary.counts.items() if n)
            click.echo(f"history: run {summary.run_id} recorded from {len(files)} shard(s) "
                       f"({counts or 'no findings'})", err=True)
    except BastionError as exc:
        _fail(str(exc))
    click.echo(f"merged {len(files)} shard(s): {len(result.findings)} finding(s), {result.requests} requests")
    raise SystemExit(exit_code(result, fail_on, gated))
