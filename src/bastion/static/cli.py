"""`bastion static PATH...`: static analysis with optional route correlation, reusing the report writers.

The lead registers `static` in `bastion.cli`; exit codes follow the rest of Bastion: 0 clean, 1 a
finding at or above --fail-on, 2 usage or configuration error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bastion.errors import BastionError

FORMATS = ("console", "json", "sarif", "junit", "html", "md")


def _fail(message: str) -> None:
    click.echo(f"bastion: error: {message}", err=True)
    sys.exit(2)


@click.command("static")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--app", "app", help="In-process app ('module:app' or 'module:create_app()') to tie findings to routes.")
@click.option("--format", "formats", default="console", show_default=True,
              help=f"Comma-separated: {', '.join(FORMATS)}.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bastion-report", show_default=True,
              help="Directory for file reports.")
@click.option("--fail-on", default="high", show_default=True, help="Exit 1 at or above this severity (or none).")
@click.option("--no-bandit", is_flag=True, help="Only Bastion's own rules (skip bandit).")
@click.option("--no-secrets", is_flag=True, help="Skip secret scanning (detect-secrets).")
@click.option("--secrets-baseline", type=click.Path(dir_okay=False),
              help="detect-secrets baseline of accepted secrets (`detect-secrets scan > .secrets.baseline`).")
def static(paths: tuple[str, ...], app: str | None, formats: str, out_dir: str, fail_on: str,
           no_bandit: bool, no_secrets: bool, secrets_baseline: str | None) -> None:
    """Scan code and config: SAST (bandit + Bastion's rules), secrets, Dockerfile, compose, k8s, CI workflows."""
    from rich.console import Console

    from bastion.report import write_reports
    from bastion.report.console import print_summary
    from bastion.report.gate import exit_code, parse_fail_on
    from bastion.static.runner import run_static, static_scan_result

    fmt = [f.strip().lower() for f in formats.split(",") if f.strip()] or ["console"]
    unknown = [f for f in fmt if f not in FORMATS]
    if unknown:
        _fail(f"--format: unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    err = Console(stderr=True)
    try:
        parse_fail_on(fail_on)
        surface = None
        if app:
            from bastion.surface.discover import discover_surface
            from bastion.target.target import Target

            surface = discover_surface(Target.from_spec(app), crawl=False)
        static_result = run_static(list(paths), surface, bandit=not no_bandit, secrets=not no_secrets,
                                   secrets_baseline=secrets_baseline)
        result = static_scan_result(static_result, list(paths))
        if "console" in fmt:
            print_summary(result, Console())
        files = [f for f in fmt if f != "console"]
        if files:
            for path in write_reports(result, files, Path(out_dir)):
                err.print(f"wrote {path}")
        if static_result.skipped:
            err.print(f"{len(static_result.skipped)} file(s) skipped (see the report's run events)")
    except BastionError as exc:
        _fail(str(exc))
    sys.exit(exit_code(result, fail_on))
