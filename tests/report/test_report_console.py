"""Console output: progress callback and summary, plain (no control codes) when not a terminal."""

from __future__ import annotations

from io import StringIO

from report_samples import make_result, many_findings
from rich.console import Console

from bastion.findings.model import Confidence, Finding, Location, Severity
from bastion.report import ConsoleProgress, print_summary


def _plain() -> tuple[Console, StringIO]:
    buf = StringIO()
    return Console(file=buf, force_terminal=False, width=200), buf


def test_progress_on_a_non_terminal_prints_plain_lines():
    console, buf = _plain()
    with ConsoleProgress(console) as progress:
        progress("start", {"checks": 2, "units": 7})
        progress("check", {"id": "injection.sql", "requests": 40, "findings": 2})
        progress("check", {"id": "headers.csp-missing", "requests": 43, "findings": 3})
        progress("unknown-event", {})
    out = buf.getvalue()
    assert "\x1b" not in out
    assert out.splitlines() == ["scanning: 2 checks, 7 units",
                                "[1/2] injection.sql · 40 requests · 2 findings",
                                "[2/2] headers.csp-missing · 43 requests · 3 findings"]


def test_progress_on_a_terminal_runs_a_live_bar_and_stops():
    buf = StringIO()
    console = Console(file=buf, force_terminal=True, width=100)
    progress = ConsoleProgress(console)
    progress("start", {"checks": 3, "units": 9})
    assert progress._progress is not None
    progress("check", {"id": "a.b", "requests": 1, "findings": 0})
    progress.close()  # a scan that stopped early sends no more events
    assert progress._progress is None and progress.done == 1
    progress.close()  # idempotent
    progress("start", {"checks": 1, "units": 1})
    progress("check", {"id": "a.b", "requests": 1, "findings": 0})
    assert progress._progress is None  # stops by itself when every check is done


def test_summary_lists_findings_counts_stats_errors_and_events(result):
    console, buf = _plain()
    print_summary(result, console)
    out = buf.getvalue()
    assert "\x1b" not in out
    for needle in ("injection.sql", "GET /search [query:q] app/search.py:41", "confirmed", "tentative",
                   "By severity: critical 1, high 1, medium 2, low 1, info 1",
                   "6 findings, 4 checks, 65 requests in 1.2 s, seed 7",
                   "Check errors (1):", "injection.sql: POST /login [form:user]: RuntimeError: boom <b>",
                   "Note: scan stopped early: request budget"):
        assert needle in out, needle


def test_summary_never_interprets_rich_markup_from_the_target():
    f = Finding(check_id="x.y", threat_id="x", title="[bold red]boom[/] [link=http://e]x[/link]",
                severity=Severity.high, confidence=Confidence.firm,
                location=Location(method="GET", path="/[i]a[/i]"))
    console, buf = _plain()
    print_summary(make_result(findings=[f], checks=[], events=[]), console)
    out = buf.getvalue()
    assert "[bold red]boom[/] [link=http://e]x[/link]" in out and "/[i]a[/i]" in out


def test_summary_with_colours_on_a_terminal(result):
    buf = StringIO()
    print_summary(result, Console(file=buf, force_terminal=True, color_system="standard", width=200))
    assert "\x1b[" in buf.getvalue()  # severities are coloured


def test_clean_run_and_row_cap():
    console, buf = _plain()
    print_summary(make_result(findings=[], checks=[], events=[]), console)
    assert "No findings." in buf.getvalue() and "Check errors" not in buf.getvalue()
    console, buf = _plain()
    print_summary(make_result(findings=many_findings(250)), console, max_rows=10)
    assert "… and 240 more findings" in buf.getvalue()
