"""The static rule registry: every rule has an id, a catalog threat and builds a standard Finding.

Static rules do not fit the DAST `@check` registry (they run on files, not on entry points), so they
register here. Metadata not given on the rule comes from the catalog threat, as for DAST checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.catalog import get_threat
from bastion.findings.model import Confidence, Evidence, Finding, InputRef, Location, Severity

MAX_SOURCE_LINE = 300


@dataclass(frozen=True)
class StaticRule:
    id: str
    threat: str
    title: str
    severity: Severity
    cwe: int
    owasp: tuple[str, ...]
    mitigation: str


STATIC_RULES: dict[str, StaticRule] = {}


def static_rule(id: str, threat: str, *, title: str | None = None, severity: str | None = None,
                cwe: int | None = None) -> StaticRule:
    """Register (once) and return a static rule; catalog metadata fills what is not given."""
    if id in STATIC_RULES:
        return STATIC_RULES[id]
    t = get_threat(threat)
    rule = StaticRule(id=id, threat=threat, title=title or t.title,
                      severity=Severity.parse(severity) if severity else t.severity,
                      cwe=cwe if cwe is not None else t.cwe, owasp=tuple(t.owasp_refs),
                      mitigation=t.mitigation)
    STATIC_RULES[id] = rule
    return rule


def source_evidence(code_line: str, file: str, line: int, meta: dict[str, str] | None = None) -> Evidence:
    """Evidence of kind "source": the offending code line, trimmed."""
    text = code_line.strip()
    if len(text) > MAX_SOURCE_LINE:
        text = text[:MAX_SOURCE_LINE] + "…"
    return Evidence(kind="source", summary=f"{file}:{line}", content=text, meta=dict(meta or {}))


def static_finding(rule: StaticRule, *, file: str, line: int, code_line: str, detail: str = "",
                   confidence: Confidence = Confidence.firm, severity: Severity | None = None,
                   input: InputRef | None = None, meta: dict[str, str] | None = None,
                   title: str | None = None, cwe: int | None = None) -> Finding:
    """A Finding located at file:line with the code line as its "source" evidence."""
    evidence = [source_evidence(code_line, file, line, meta)]
    if detail:
        evidence.append(Evidence(kind="note", summary=detail))
    return Finding(check_id=rule.id, threat_id=rule.threat, title=title or rule.title,
                   severity=severity or rule.severity, confidence=confidence,
                   cwe=cwe if cwe is not None else rule.cwe, owasp=list(rule.owasp),
                   location=Location(file=file, line=line, input=input), evidence=evidence,
                   remediation=rule.mitigation)
