"""Drill output: a rich console timeline and checklist, JSON (bastion-drill-breach/1) and Markdown."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bastion.drills.timeline import SYMBOLS, DrillRun

SCHEMA = "bastion-drill-breach/1"
_OUTCOME_STYLE = {"blocked": "green", "rate-limited": "green", "succeeded": "red", "skipped": "dim"}
_ANSWER_STYLE = {"yes": "green", "no": "red", "unknown": "dim"}


def as_json(runs: list[DrillRun]) -> str:
    doc: dict[str, Any] = {"schema": SCHEMA, "passed": not any(r.failed for r in runs),
                           "narratives": [r.as_dict() for r in runs]}
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def as_markdown(runs: list[DrillRun]) -> str:
    lines = ["# Breach drills", ""]
    for run in runs:
        verdict = "passed" if not run.failed else f"FAILED ({len(run.failed)} expectation(s))"
        lines += [f"## {run.title} (`{run.narrative}`): {verdict}", "",
                  f"Alert channels watched: {', '.join(run.channels) or 'none declared'}", "",
                  "| +ms | step | action | outcome | detected by |", "|---:|---|---|---|---|"]
        for s in run.steps:
            action = s.did or s.says
            outcome = s.outcome + (f": {s.reason}" if s.reason else "")
            lines.append(f"| {s.start_ms} | {s.step} | {_cell(action)} | {_cell(outcome)} | {_cell(s.detected_by())} |")
        lines += ["", "### Incident-playbook checklist", ""]
        lines += [f"- {SYMBOLS[p.answer]} {p.question} {_cell(p.reason)}" for p in run.playbook]
        if run.failed:
            lines += ["", "### Failed expectations", ""]
            lines += [f"- {step}: {why}" for step, why in run.failed]
        lines.append("")
    return "\n".join(lines)


def print_console(runs: list[DrillRun], console: Console) -> None:
    for run in runs:
        table = Table(title=f"{run.title} ({run.narrative})", title_justify="left", show_lines=False)
        table.add_column("+ms", justify="right")
        table.add_column("step")
        table.add_column("action", overflow="fold")
        table.add_column("outcome", overflow="fold")
        table.add_column("detected by")
        for s in run.steps:
            outcome = Text(s.outcome, style=_OUTCOME_STYLE[s.outcome])
            if s.reason:
                outcome.append(f": {s.reason}", style="default")
            table.add_row(str(s.start_ms), s.step, s.did or s.says, outcome, s.detected_by())
        console.print(table)
        console.print(Text(f"alert channels watched: {', '.join(run.channels) or 'none declared'}", style="dim"))
        for p in run.playbook:
            line = Text(f" {SYMBOLS[p.answer]} ", style=_ANSWER_STYLE[p.answer])
            line.append(p.question, style="bold")
            line.append(f"  {p.reason}", style="default")
            console.print(line)
        for step, why in run.failed:
            console.print(Text(f" FAIL {step}: {why}", style="red"))
        console.print()
