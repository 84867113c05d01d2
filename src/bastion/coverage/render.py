"""Coverage as text: a console table (rich), Markdown and JSON; a summary per threat, rows on demand."""

from __future__ import annotations

import io
import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bastion.coverage.model import FINDING, NOT_TESTED, TESTED, Coverage, ThreatCoverage

STATUS_STYLE = {FINDING: "bold red", TESTED: "green", NOT_TESTED: "yellow"}
FORMATS = ("console", "json", "md")


def entry_summary(t: ThreatCoverage) -> str:
    """"2 finding · 30 tested · 20 not tested" over entry points (empty when no route-level rows)."""
    counts = t.entry_counts()
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    return " · ".join(parts)


def coverage_json(coverage: Coverage) -> str:
    return json.dumps(coverage.as_dict(), indent=2, ensure_ascii=False) + "\n"


def print_coverage(coverage: Coverage, console: Console, *, detail: bool = False) -> None:
    """One row per threat (status, entry points, roles, checks); with `detail`, every cell below it."""
    table = Table(title="Threat coverage", title_justify="left", expand=False)
    # Threat and status stay on one line (grep-able); the rest wraps into the remaining width.
    for name, no_wrap in (("Threat", True), ("Status", True), ("Entry points", False), ("Roles", False),
                          ("Checks", False)):
        table.add_column(name, overflow="fold", no_wrap=no_wrap, ratio=None if no_wrap else 1)
    for t in coverage.threats:
        # Text(...) everywhere: paths and test names come from the target or the user, never markup.
        table.add_row(Text(t.id), Text(t.summary_label(), style=STATUS_STYLE[t.status]), Text(entry_summary(t)),
                      Text(", ".join(t.roles())), Text(", ".join(t.checks) or "-"))
        if detail:
            for r in t.rows:
                notes = f" [{'; '.join(r.notes)}]" if r.notes else ""
                table.add_row(Text(""), Text(r.label(), style=STATUS_STYLE[r.status]), Text(r.entry),
                              Text(r.role), Text(f"{r.detail}{notes}"))
    console.print(table)
    console.print(Text(coverage.summary_line()))
    for warning in coverage.warnings:
        console.print(Text(f"Warning: {warning}", style="yellow"))


def console_text(coverage: Coverage, *, detail: bool = False, width: int = 160) -> str:
    """The console rendering as plain text (for --out FILE and pipes)."""
    # The text comes from the recording; the stream itself is thrown away.
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    print_coverage(coverage, console, detail=detail)
    return console.export_text()


def _md(value: str) -> str:
    from bastion.report.markdown import md_text

    return md_text(value)


def coverage_markdown(coverage: Coverage, *, detail: bool = False, heading: str = "#") -> str:
    """A Markdown section: summary line, a table per threat, and (with `detail`) the cells of each threat."""
    from bastion.report.markdown import md_code

    lines = [f"{heading} Threat coverage", "", _md(coverage.summary_line()), "",
             "| Threat | Status | Entry points | Roles | Checks |", "| --- | --- | --- | --- | --- |"]
    for t in coverage.threats:
        lines.append(f"| {md_code(t.id, table=True)} | {_md(t.summary_label())} | {_md(entry_summary(t))} | "
                     f"{_md(', '.join(t.roles()))} | {_md(', '.join(t.checks) or '-')} |")
    lines.append("")
    for warning in coverage.warnings:
        lines += [f"> **Warning:** {_md(warning)}", ""]
    if detail:
        for t in coverage.threats:
            lines += [f"{heading}# {_md(t.id)}: {_md(t.summary_label())}", "",
                      "| Entry point | Role | Status | Detail |", "| --- | --- | --- | --- |"]
            for r in t.rows:
                notes = f" ({'; '.join(r.notes)})" if r.notes else ""
                lines.append(f"| {md_code(r.entry, table=True)} | {_md(r.role)} | {_md(r.label())} | "
                             f"{_md(r.detail + notes)} |")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
