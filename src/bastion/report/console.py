"""Console output with rich: a live progress bar during the scan, then a summary of the run.

Both work on a non-terminal (CI logs, pipes): progress becomes one plain line per check and the
summary is printed without control codes.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from bastion.engine.runner import ScanResult
from bastion.findings.model import Severity
from bastion.identity.matrix import matrix_table
from bastion.report.rules import first_line, severity_counts

SEVERITY_STYLE = {Severity.critical: "bold white on red", Severity.high: "bold red",
                  Severity.medium: "yellow", Severity.low: "cyan", Severity.info: "dim"}
MAX_ROWS = 200


class ConsoleProgress:
    """The engine's progress callback: `progress(event, data)` for "start" and "check" events."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.total = 0
        self.done = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "start":
            self._start(int(data.get("checks", 0)), int(data.get("units", 0)))
        elif event == "check":
            self._check(str(data.get("id", "")), int(data.get("requests", 0)), int(data.get("findings", 0)))

    def _start(self, checks: int, units: int) -> None:
        self.close()
        self.total, self.done = checks, 0
        if not self.console.is_terminal:
            self.console.print(Text(f"scanning: {checks} checks, {units} units"))
            return
        self._progress = Progress(TextColumn("[bold]scan[/]"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=self.console, transient=True)
        self._task = self._progress.add_task("starting", total=checks)
        self._progress.start()

    def _check(self, check_id: str, requests: int, findings: int) -> None:
        self.done += 1
        line = f"{check_id} · {requests} requests · {findings} findings"
        if self._progress is None or self._task is None:
            self.console.print(Text(f"[{self.done}/{self.total}] {line}"))
            return
        self._progress.update(self._task, completed=self.done, description=line)
        if self.done >= self.total:
            self.close()

    def close(self) -> None:
        """Stop the live display (also when the scan stopped early and sent no more events)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None

    def __enter__(self) -> ConsoleProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _findings_table(result: ScanResult, max_rows: int) -> Table:
    table = Table(title="Findings", title_justify="left", expand=False)
    # Severity, check id and confidence are short and grep-able: keep them on one line; location
    # and title take the remaining width.
    for name, no_wrap in (("Severity", True), ("Check", True), ("Location", False), ("Confidence", True),
                          ("Title", False)):
        table.add_column(name, overflow="fold", no_wrap=no_wrap, ratio=None if no_wrap else 1)
    # Text(...) everywhere: a title or path from the target must never be read as rich markup.
    for f in result.findings[:max_rows]:
        table.add_row(Text(f.severity.value, style=SEVERITY_STYLE[f.severity]), Text(f.check_id),
                      Text(f.location.label()), Text(f.confidence.value), Text(f.title))
    return table


def _authz_table(result: ScanResult) -> Table:
    roles, rows = matrix_table(result.authz_matrix)
    table = Table(title="Authorization matrix (role × entry point)", title_justify="left", expand=False)
    table.add_column("Entry point", overflow="fold")
    for role in roles:
        table.add_column(Text(role), overflow="fold")
    for key, labels in rows:
        table.add_row(Text(key), *(Text(label, style="bold red" if "(policy" in label
                                        else "") for label in labels))
    return table


def _counts_line(result: ScanResult) -> Text:
    line = Text("By severity: ")
    for i, (sev, n) in enumerate(severity_counts(result.findings).items()):
        if i:
            line.append(", ")
        line.append(f"{sev.value} {n}", style=SEVERITY_STYLE[sev] if n else "")
    return line


def print_summary(result: ScanResult, console: Console, max_rows: int = MAX_ROWS) -> None:
    """Findings table, counts by severity, run statistics, check errors and run events."""
    if result.findings:
        console.print(_findings_table(result, max_rows))
        if len(result.findings) > max_rows:
            more = len(result.findings) - max_rows
            console.print(Text(f"… and {more} more findings (see the report files)"))
    else:
        console.print(Text("No findings.", style="bold green"))
    if result.authz_matrix:
        console.print(_authz_table(result))
    console.print(_counts_line(result))
    console.print(Text(f"Run: {len(result.findings)} findings, {len(result.checks)} checks, "
                       f"{result.requests} requests in {result.duration_s:.1f} s, seed {result.seed}, "
                       f"target {result.target.spec or result.target.base_url}"))
    if result.coverage_plan is not None:
        from bastion.coverage import coverage_of

        console.print(Text(coverage_of(result).summary_line() + " (details: bastion coverage)"))
    errors = [(c.check_id, e) for c in result.checks for e in c.errors]
    if errors:
        console.print(Text(f"Check errors ({len(errors)}):", style="bold red"))
        for check_id, err in errors:
            console.print(Text(f"  {check_id}: {first_line(err)}"))
    for event in result.events:
        console.print(Text(f"Note: {event}", style="yellow"))



