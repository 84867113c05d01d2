"""`bastion coverage`: run the scan (or read a findings.json) and show each threat's coverage.

`bastion.cli` builds it with `build_coverage_command(target_options)`, so the options match `bastion scan`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from bastion.coverage.model import Coverage
from bastion.coverage.render import FORMATS, console_text, coverage_json, coverage_markdown, print_coverage
from bastion.errors import BastionError


def _fail(message: str) -> NoReturn:
    click.echo(f"bastion: error: {message}", err=True)
    sys.exit(2)


def build_coverage_command(target_options: Callable[[Any], Any]) -> click.Command:
    """The command, with the target options `bastion scan` uses (passed in: bastion.cli imports this module)."""
    return click.command("coverage")(target_options(coverage_command))


@click.option("--checks", help="Check ids or families to run (comma-separated).")
@click.option("--exclude-checks", help="Check ids or families to skip.")
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes every random choice.")
@click.option("--from", "from_file", type=click.Path(dir_okay=False),
              help="Read the coverage section of a findings.json instead of scanning.")
@click.option("--tests", "tests_file", type=click.Path(dir_okay=False),
              help="Merge hand-written pytest tests (the file of pytest --bastion-coverage-out FILE).")
@click.option("--detail", is_flag=True, help="Show every threat × entry point × role cell, not only the summary.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="console", show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def coverage_command(config: str | None, demo: bool, flaws: str, framework: str, app: str | None, url: str | None,
                     openapi: str | None, no_crawl: bool, checks: str | None, exclude_checks: str | None,
                     seed: int, from_file: str | None, tests_file: str | None, detail: bool, fmt: str,
                     out: str | None, quiet: bool) -> None:
    """List each catalog threat × entry point × role as tested / finding / not tested (and why)."""
    from bastion.coverage.findings_file import coverage_from_findings_file
    from bastion.coverage.user_tests import load_user_tests, merge_user_tests

    if from_file and (config or demo or app or url):
        _fail("give either --from FILE or a target (--demo, --config, --app, --url), not both")
    try:
        if from_file:
            coverage = coverage_from_findings_file(from_file)
        else:
            coverage = _scan_coverage(config=config, demo=demo, flaws=flaws, framework=framework, app=app, url=url,
                                      openapi=openapi, crawl=not no_crawl, checks=checks,
                                      exclude_checks=exclude_checks, seed=seed, quiet=quiet)
        if tests_file:
            coverage = merge_user_tests(coverage, load_user_tests(tests_file))
    except BastionError as exc:
        _fail(str(exc))
    _emit(coverage, fmt, detail, out)


def _scan_coverage(*, checks: str | None, exclude_checks: str | None, quiet: bool, config: str | None,
                   **target: Any) -> Coverage:
    from rich.console import Console

    from bastion.coverage.compute import compute_coverage
    from bastion.report.console import ConsoleProgress
    from bastion.session import scan_from_options

    cfg = None
    limits = None
    if config:
        from bastion.model import load_config

        cfg = load_config(config)
        limits = cfg.limits()
    progress = None if quiet else ConsoleProgress(Console(stderr=True))
    try:
        # scan_from_options also stops the scan's doubles and listeners right after the scan.
        result = scan_from_options(progress, config=cfg, checks=_csv(checks), exclude_checks=_csv(exclude_checks),
                                   limits=limits, **target)
    finally:
        if progress is not None:
            progress.close()
    return compute_coverage(result)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _emit(coverage: Coverage, fmt: str, detail: bool, out: str | None) -> None:
    if fmt == "json":
        text = coverage_json(coverage)
    elif fmt == "md":
        text = coverage_markdown(coverage, detail=detail)
    elif out:
        text = console_text(coverage, detail=detail)
    else:
        from rich.console import Console

        print_coverage(coverage, Console(), detail=detail)
        return
    if out:
        from bastion.report.writer import atomic_write

        try:
            atomic_write(Path(out), text.encode("utf-8", errors="replace"))
        except OSError as exc:
            _fail(f"cannot write {out}: {exc.strerror}")
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)
