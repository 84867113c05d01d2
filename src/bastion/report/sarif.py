"""`bastion.sarif`: SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from bastion import __version__
from bastion.engine.runner import ScanResult
from bastion.findings.model import Finding, Location, Severity
from bastion.report.rules import RuleInfo, first_line, rules_for

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/bastion-security/"
FINGERPRINT_KEY = "bastion/v1"

# GitHub code scanning reads `security-severity` (a CVSS-like score as a string) from rule properties.
SECURITY_SEVERITY = {Severity.critical: "9.5", Severity.high: "8.0", Severity.medium: "5.5",
                     Severity.low: "3.0", Severity.info: "0.0"}
LEVEL = {Severity.critical: "error", Severity.high: "error", Severity.medium: "warning",
         Severity.low: "note", Severity.info: "note"}

# Characters a URI may hold unescaped (RFC 3986 reserved + unreserved), plus '%' for escapes.
_URI_SAFE = ":/?#[]@!$&'()*+,;=-._~%"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def as_uri(text: str) -> str:
    """Percent-encode what RFC 3986 does not allow (braces of path templates, spaces, unicode)."""
    return quote(_BAD_PERCENT.sub("%25", text), safe=_URI_SAFE)


def _utc(timestamp: str, plus_seconds: float = 0.0) -> str | None:
    """RFC 3339 UTC time with a 'Z', or None when the run's timestamp is not ISO 8601."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    moment = (moment + timedelta(seconds=plus_seconds)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _rule(rule: RuleInfo) -> dict[str, Any]:
    why = rule.why or rule.summary
    fix = rule.mitigation or "See the finding's remediation."
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", rule.id) if part),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": why},
        "help": {"text": f"{why}\n\nMitigation: {fix}",
                 "markdown": f"**{rule.title}**\n\n{why}\n\n**Mitigation:** {fix}"},
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {
            "tags": rule.tags,
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "precision": "high",
            **({"cwe": rule.cwe} if rule.cwe is not None else {}),
            **({"threat": rule.threat_id} if rule.threat_id else {}),
        },
    }


def _http_properties(loc: Location) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if loc.method:
        props["method"] = loc.method
    if loc.path:
        props["path"] = loc.path
    if loc.url:
        props["url"] = loc.url
    if loc.input:
        props["input"] = {"in": loc.input.in_, "name": loc.input.name}
    return props


def _location(loc: Location, base_url: str) -> dict[str, Any]:
    """Source file and line when known; otherwise the URL (or base URL + path) as the artifact."""
    if loc.file:
        physical: dict[str, Any] = {"artifactLocation": {"uri": as_uri(loc.file)}}
        if loc.line and loc.line > 0:
            physical["region"] = {"startLine": loc.line}
    else:
        # Dashboards render this as a link: only an http(s) URL, never javascript: or data:.
        web = loc.url if loc.url and loc.url.lower().startswith(("http://", "https://")) else None
        uri = web or (base_url.rstrip("/") + (loc.path or "/"))
        physical = {"artifactLocation": {"uri": as_uri(uri)}}
    out: dict[str, Any] = {"physicalLocation": physical}
    if loc.method or loc.path:
        name = f"{loc.method or ''} {loc.path or ''}".strip()
        logical: dict[str, Any] = {"name": name, "kind": "resource"}
        if loc.input:
            logical["fullyQualifiedName"] = f"{name} [{loc.input.in_}:{loc.input.name}]"
        out["logicalLocations"] = [logical]
    props = _http_properties(loc)
    if props:
        out["properties"] = props
    return out


def _result(f: Finding, rule_index: int, base_url: str) -> dict[str, Any]:
    text = f"{f.title} at {f.location.label()}"
    return {
        "ruleId": f.check_id,
        "ruleIndex": rule_index,
        "level": LEVEL[f.severity],
        "message": {"text": text},
        "locations": [_location(f.location, base_url)],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "fingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": {
            "severity": f.severity.value,
            "confidence": f.confidence.value,
            "security-severity": SECURITY_SEVERITY[f.severity],
            "threat": f.threat_id,
            **({"cwe": f.cwe} if f.cwe is not None else {}),
            **({"owasp": list(f.owasp)} if f.owasp else {}),
            **({"role": f.role} if f.role else {}),
            **({"remediation": f.remediation} if f.remediation else {}),
        },
    }


def _with_baseline_state(out: dict[str, Any], f: Finding, states: dict[str, str] | None) -> dict[str, Any]:
    if states is not None and f.fingerprint in states:
        out["baselineState"] = states[f.fingerprint]
    return out


def _invocation(result: ScanResult) -> dict[str, Any]:
    notes: list[dict[str, Any]] = []
    for stats in result.checks:
        for err in stats.errors:
            notes.append({"level": "error", "message": {"text": f"{stats.check_id}: {first_line(err)}"},
                          "descriptor": {"id": stats.check_id}})
    for event in result.events:
        notes.append({"level": "warning", "message": {"text": event}})
    inv: dict[str, Any] = {"executionSuccessful": not any(s.errors for s in result.checks)}
    start, end = _utc(result.started_at), _utc(result.started_at, result.duration_s)
    if start and end:
        inv["startTimeUtc"], inv["endTimeUtc"] = start, end
    if notes:
        inv["toolExecutionNotifications"] = notes
    return inv


def sarif_document(result: ScanResult, baseline_states: dict[str, str] | None = None) -> dict[str, Any]:
    """The SARIF log as plain data: one run, rules for every check that ran or reported.

    `baseline_states` maps fingerprints to SARIF `baselineState` values (new, unchanged, updated, absent).
    """
    rules = rules_for(result)
    index = {cid: i for i, cid in enumerate(rules)}
    base_url = result.target.base_url
    run = {
        "tool": {"driver": {
            "name": "Bastion", "version": __version__, "semanticVersion": __version__,
            "informationUri": INFORMATION_URI, "rules": [_rule(r) for r in rules.values()],
        }},
        "invocations": [_invocation(result)],
        "automationDetails": {"id": f"bastion/{result.target.spec or base_url}/"},
        "results": [_with_baseline_state(_result(f, index[f.check_id], base_url), f, baseline_states)
                    for f in result.findings],
        "properties": {"target": result.target.spec, "seed": result.seed, "requests": result.requests},
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def sarif_json(result: ScanResult, baseline_states: dict[str, str] | None = None) -> str:
    """`bastion.sarif` text."""
    return json.dumps(sarif_document(result, baseline_states), indent=2, ensure_ascii=False) + "\n"
