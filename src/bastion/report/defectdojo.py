"""`defectdojo.json`: findings in DefectDojo's "Generic Findings Import" JSON format.

DefectDojo's generic parser requires `title`, `severity` and `description` on every finding and rejects
any key outside its allow-list, so this writer emits only documented fields (see ALLOWED_FIELDS).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from bastion import __version__
from bastion.engine.runner import ScanResult
from bastion.findings.model import Confidence, Finding, Severity
from bastion.findings.redact import Redactor
from bastion.report.rules import RuleInfo, rules_for

DOJO_SEVERITY = {Severity.critical: "Critical", Severity.high: "High", Severity.medium: "Medium",
                 Severity.low: "Low", Severity.info: "Info"}
# DefectDojo's generic JSON parser: fields a finding may carry (others make the import fail).
REQUIRED_FIELDS = frozenset({"title", "severity", "description"})
ALLOWED_FIELDS = REQUIRED_FIELDS | frozenset({
    "date", "cwe", "cve", "cvssv3", "cvssv3_score", "mitigation", "impact", "steps_to_reproduce",
    "severity_justification", "references", "active", "verified", "false_p", "out_of_scope", "risk_accepted",
    "under_review", "is_mitigated", "thread_id", "mitigated", "numerical_severity", "param", "payload", "line",
    "file_path", "component_name", "component_version", "static_finding", "dynamic_finding",
    "scanner_confidence", "unique_id_from_tool", "vuln_id_from_tool", "sast_source_object", "sast_sink_object",
    "sast_source_line", "sast_source_file_path", "nb_occurences", "publish_date", "service",
    "planned_remediation_date", "planned_remediation_version", "effort_for_fixing", "endpoints",
    "files", "vulnerability_ids",
})
ENDPOINT_FIELDS = frozenset({"protocol", "userinfo", "host", "port", "path", "query", "fragment"})
# DefectDojo's scanner_confidence: 1-2 certain, 3-5 firm, 6+ tentative.
SCANNER_CONFIDENCE = {Confidence.confirmed: 1, Confidence.firm: 3, Confidence.tentative: 6}
# Evidence excerpts in the description: enough to triage, not the whole response.
EVIDENCE_EXCERPT = 2000


def _run_date(result: ScanResult) -> str:
    """The run's day (YYYY-MM-DD, UTC), which DefectDojo stores as the finding date."""
    try:
        moment = datetime.fromisoformat(result.started_at)
    except (TypeError, ValueError):
        moment = datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date().isoformat()


def _endpoint(url: str | None) -> dict[str, Any] | None:
    """An endpoint object DefectDojo accepts, from the finding's URL (None for file-only findings)."""
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return None
    endpoint: dict[str, Any] = {"protocol": parts.scheme, "host": parts.hostname}
    if parts.port:
        endpoint["port"] = parts.port
    if parts.path:
        endpoint["path"] = parts.path.lstrip("/")
    if parts.query:
        endpoint["query"] = parts.query
    return endpoint


def _description(f: Finding, rule: RuleInfo | None) -> str:
    lines = [f"**{f.title}**", "", f"Location: `{f.location.label()}`"]
    if f.role:
        lines.append(f"Role: {f.role}")
    lines += [f"Check: `{f.check_id}` (threat `{f.threat_id}`), confidence: {f.confidence.value}"]
    if rule and rule.summary:
        lines += ["", rule.summary]
    for ev in f.evidence:
        lines += ["", f"Evidence ({ev.kind}): {ev.summary}"]
        if ev.content:
            lines += ["```", ev.content[:EVIDENCE_EXCERPT], "```"]
    return "\n".join(lines)


def _references(f: Finding) -> str:
    refs = []
    if f.cwe is not None:
        refs.append(f"https://cwe.mitre.org/data/definitions/{f.cwe}.html")
    refs += [f"OWASP {o}" for o in f.owasp]
    return "\n".join(refs)


def dojo_finding(f: Finding, rule: RuleInfo | None, date: str) -> dict[str, Any]:
    """One DefectDojo finding; `f` must already be redacted."""
    is_static = bool(f.location.file) and not (f.location.method or f.location.path)
    item: dict[str, Any] = {
        "title": f.title,
        "description": _description(f, rule),
        "severity": DOJO_SEVERITY[f.severity],
        "mitigation": f.remediation or (rule.mitigation if rule else ""),
        "impact": (rule.why if rule and rule.why else f"{f.severity.value} severity {f.threat_id}"),
        "references": _references(f),
        "date": date,
        "active": True,
        "verified": f.confidence is Confidence.confirmed,
        "static_finding": is_static,
        "dynamic_finding": not is_static,
        "unique_id_from_tool": f.fingerprint,
        "vuln_id_from_tool": f.check_id,
        "scanner_confidence": SCANNER_CONFIDENCE[f.confidence],
    }
    if f.cwe is not None:
        item["cwe"] = f.cwe
    if f.location.file:
        item["file_path"] = f.location.file
    if f.location.line is not None:
        item["line"] = f.location.line
    if f.location.input is not None:
        item["param"] = f.location.input.name
    if f.reproduction.curl:
        item["steps_to_reproduce"] = f"```\n{f.reproduction.curl}\n```"
    endpoint = _endpoint(f.location.url)
    item["endpoints"] = [endpoint] if endpoint else []
    return item


def defectdojo_document(result: ScanResult) -> dict[str, Any]:
    """The import document; findings pass through the redactor again so no secret-shaped text leaves."""
    redactor = Redactor()
    rules = rules_for(result)
    date = _run_date(result)
    return {"name": "Bastion", "type": "Bastion Scan", "version": __version__,
            "findings": [dojo_finding(redactor.finding(f), rules.get(f.check_id), date) for f in result.findings]}


def defectdojo_json(result: ScanResult) -> str:
    """`defectdojo.json` text (import it as scan type "Generic Findings Import")."""
    return json.dumps(defectdojo_document(result), indent=2, ensure_ascii=False) + "\n"
