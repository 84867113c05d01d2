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
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
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
@click.option("--git-depth", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also scan the last N commits of git history for secrets (0: off).")
@click.option("--git-max-bytes", type=click.IntRange(min=1), default=64 * 1024 * 1024, show_default=True,
              help="Stop reading git history after this many bytes of diff.")
@click.option("--deps", "deps", is_flag=True,
              help="Audit dependencies (requirements*.txt, pyproject.toml, uv.lock, poetry.lock) against OSV.")
@click.option("--osv-url", help="OSV API base URL (implies --deps). Default: https://api.osv.dev.")
@click.option("--osv-offline", type=click.Path(file_okay=False),
              help="Directory of OSV JSON advisories to use instead of the API (implies --deps).")
@click.option("--osv-cache", default=".bastion/osv-cache", show_default=True, help="OSV answer cache directory.")
@click.option("--osv-cache-ttl", type=click.FloatRange(min=0), default=24 * 3600.0, show_default=True,
              help="Seconds a cached OSV answer stays fresh.")
@click.option("--installed", is_flag=True, help="Also audit the packages installed in this Python (implies --deps).")
@click.option("--site-packages", type=click.Path(file_okay=False),
              help="Also audit the packages installed in this site-packages directory (implies --deps).")
@click.option("--import", "imports", multiple=True, type=click.Path(dir_okay=False),
              help="SARIF 2.1.0 file of another tool to merge into the findings (repeatable).")
@click.option("--db", "db_url", help="Record the run in this history database (SQLite path or SQLAlchemy URL).")
def static(paths: tuple[str, ...], app: str | None, formats: str, out_dir: str, fail_on: str,
           no_bandit: bool, no_secrets: bool, secrets_baseline: str | None, git_depth: int, git_max_bytes: int,
           deps: bool, osv_url: str | None, osv_offline: str | None, osv_cache: str, osv_cache_ttl: float,
           installed: bool, site_packages: str | None, imports: tuple[str, ...], db_url: str | None) -> None:
    """Scan code and config: SAST (bandit + Bastion's rules), secrets, dependencies, IaC and CI files."""
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
    if not paths and not imports:
        _fail("give at least one PATH to scan or an --import SARIF file")
    deps_options = None
    if deps or osv_url or osv_offline or installed or site_packages:
        from bastion.static.deps import DepsOptions

        deps_options = DepsOptions(osv_url=osv_url or DepsOptions.osv_url, offline_dir=osv_offline,
                                   cache_dir=osv_cache or None, cache_ttl_s=osv_cache_ttl, installed=installed,
                                   site_packages=site_packages)
    try:
        parse_fail_on(fail_on)
        surface = None
        if app:
            from bastion.surface.discover import discover_surface
            from bastion.target.target import Target

            surface = discover_surface(Target.from_spec(app), crawl=False)
        static_result = run_static(list(paths), surface, bandit=not no_bandit, secrets=not no_secrets,
                                   secrets_baseline=secrets_baseline, deps=deps_options, git_depth=git_depth,
                                   git_max_bytes=git_max_bytes, imports=list(imports))
        result = static_scan_result(static_result, list(paths))
        if "console" in fmt:
            print_summary(result, Console())
        files = [f for f in fmt if f != "console"]
        if files:
            for path in write_reports(result, files, Path(out_dir)):
                err.print(f"wrote {path}")
        for note in static_result.notes:
            err.print(note, markup=False)
        if static_result.skipped:
            err.print(f"{len(static_result.skipped)} file(s) skipped (see the report's run events)")
        if db_url:
            from bastion.history.record import record_run

            summary = record_run(result, db_url=db_url)
            err.print(f"history: run {summary.run_id} recorded", markup=False)
    except BastionError as exc:
        _fail(str(exc))
    sys.exit(exit_code(result, fail_on))
