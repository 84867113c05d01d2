"""`report.md`: a GitHub-renderable report (summary, findings table, one section per finding, checks).

Everything that came from the target (titles, paths, evidence) is untrusted: inline text is HTML-escaped
and markdown-escaped so it cannot become a link, an image or raw HTML; evidence sits in code fences
longer than any backtick run inside it, so it cannot close its fence.
"""

from __future__ import annotations

import html
import re

from bastion.engine.runner import ScanResult
from bastion.findings.model import Finding
from bastion.identity.matrix import matrix_table
from bastion.report.rules import SEVERITIES, check_rows, first_line, severity_counts

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}|~!#])")
_BACKTICKS = re.compile(r"`+")


def md_text(value: str) -> str:
    """One line of inert inline text: whitespace collapsed, HTML and markdown syntax escaped."""
    flat = " ".join(value.split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def md_code(value: str, table: bool = False) -> str:
    """An inline code span that survives backticks in `value` (and pipes, inside a table cell)."""
    flat = " ".join(value.split())
    if table:  # GFM splits cells on `|` even inside code spans
        flat = flat.replace("|", "\\|")
    if not flat:
        return "(none)"
    ticks = "`" * (max((len(m) for m in _BACKTICKS.findall(flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def md_fence(content: str, lang: str = "text") -> str:
    """A fenced code block whose fence is longer than any backtick run in `content`."""
    longest = max((len(m) for m in _BACKTICKS.findall(content)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{content.rstrip(chr(10))}\n{fence}"


def _summary(result: ScanResult) -> list[str]:
    counts = severity_counts(result.findings)
    lines = ["## Summary", "", "| Severity | Findings |", "| --- | ---: |"]
    lines += [f"| {s.value} | {counts[s]} |" for s in SEVERITIES]
    lines += [f"| **total** | **{len(result.findings)}** |", ""]
    for event in result.events:
        lines += [f"> **Note:** {md_text(event)}", ""]
    return lines


def _findings_table(findings: list[Finding]) -> list[str]:
    lines = ["## Findings", ""]
    if not findings:
        return [*lines, "No findings.", ""]
    lines += ["| # | Severity | Check | Location | Confidence | Title |",
              "| ---: | --- | --- | --- | --- | --- |"]
    for n, f in enumerate(findings, 1):
        lines.append(f"| [{n}](#finding-{n}) | {f.severity.value} | {md_code(f.check_id, table=True)} | "
                     f"{md_text(f.location.label())} | {f.confidence.value} | {md_text(f.title)} |")
    return [*lines, ""]


def _finding_section(n: int, f: Finding) -> list[str]:
    loc = f.location
    lines = [f'<a id="finding-{n}"></a>', "", f"### {n}. {md_text(f.title)}", "",
             f"- **Severity:** {f.severity.value} · **Confidence:** {f.confidence.value}",
             f"- **Check:** {md_code(f.check_id)} · **Threat:** {md_code(f.threat_id)}"
             + (f" · **CWE:** CWE-{f.cwe}" if f.cwe is not None else "")
             + (f" · **OWASP:** {md_text(', '.join(f.owasp))}" if f.owasp else ""),
             f"- **Location:** {md_text(loc.label())}"]
    if loc.url:
        lines.append(f"- **URL:** {md_code(loc.url)}")
    if f.role:
        lines.append(f"- **Role:** {md_text(f.role)}")
    lines += [f"- **Fingerprint:** {md_code(f.fingerprint)}", ""]
    if f.remediation:
        lines += [f"**Remediation:** {md_text(f.remediation)}", ""]
    if f.evidence:
        lines += ["**Evidence**", ""]
        for ev in f.evidence:
            lines += [f"*{ev.kind}:* {md_text(ev.summary)}", ""]
            if ev.content:
                lines += [md_fence(ev.content), ""]
    if f.reproduction.curl or f.reproduction.pytest:
        lines += ["<details><summary>Reproduce</summary>", ""]
        if f.reproduction.curl:
            lines += [md_fence(f.reproduction.curl, "sh"), ""]
        if f.reproduction.pytest:
            lines += [md_fence(f.reproduction.pytest, "python"), ""]
        lines += ["</details>", ""]
    return lines


def _authz_matrix(result: ScanResult) -> list[str]:
    if not result.authz_matrix:
        return []
    roles, rows = matrix_table(result.authz_matrix)
    lines = ["## Authorization matrix", "",
             "Actual access per role; UPPER CASE marks a difference from the declared policy.", "",
             "| Entry point | " + " | ".join(md_text(r) for r in roles) + " |",
             "| --- |" + " --- |" * len(roles)]
    lines += [f"| {md_code(key, table=True)} | " + " | ".join(md_text(x) for x in labels) + " |"
              for key, labels in rows]
    return [*lines, ""]


def _coverage(result: ScanResult) -> list[str]:
    """The threat-coverage summary (per threat); `bastion coverage --detail` has every cell."""
    if result.coverage_plan is None:
        return []
    from bastion.coverage import coverage_of
    from bastion.coverage.render import coverage_markdown

    return [coverage_markdown(coverage_of(result), heading="##").rstrip("\n"), ""]


def _checks(result: ScanResult) -> list[str]:
    rows = check_rows(result)
    lines = ["## Checks", ""]
    if not rows:
        return [*lines, "No checks ran.", ""]
    lines += ["| Check | Requests | Units | Findings | Duration (s) | Errors |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {md_code(r.check_id, table=True)} | {r.requests} | {r.units} | {r.findings} | "
              f"{r.duration_s:.3f} | {len(r.errors)} |" for r in rows]
    lines.append("")
    errors = [(r.check_id, e) for r in rows for e in r.errors]
    if errors:
        lines += ["### Check errors", ""]
        for cid, err in errors:
            lines += [f"- {md_code(cid)}: {md_text(first_line(err))}", "", md_fence(err), ""]
    return lines


def markdown_report(result: ScanResult) -> str:
    """`report.md` text."""
    info = result.run_info()
    lines = ["# Bastion security report", "",
             f"- **Target:** {md_code(str(info['target']))}",
             f"- **Bastion:** {md_text(str(info['version']))} · **Seed:** {result.seed}",
             f"- **Started:** {md_text(result.started_at)} · **Duration:** {result.duration_s:.1f} s · "
             f"**Requests:** {result.requests}", ""]
    lines += _summary(result)
    lines += _findings_table(result.findings)
    if result.findings:
        lines += ["## Details", ""]
        for n, f in enumerate(result.findings, 1):
            lines += _finding_section(n, f)
    lines += _authz_matrix(result)
    lines += _coverage(result)
    lines += _checks(result)
    return "\n".join(lines).rstrip("\n") + "\n"
