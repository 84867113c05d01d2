"""What every report says about a check: its rule metadata and the per-check summary of a run."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from bastion.catalog import load_catalog
from bastion.checks.registry import load_checks
from bastion.engine.runner import ScanResult
from bastion.findings.model import Finding, Severity

SEVERITIES: tuple[Severity, ...] = (Severity.critical, Severity.high, Severity.medium, Severity.low,
                                    Severity.info)


@dataclass(frozen=True)
class RuleInfo:
    """A check as a rule: catalog/registry metadata, or what its findings say when it has none."""

    id: str
    title: str
    summary: str
    why: str
    mitigation: str
    severity: Severity
    cwe: int | None
    owasp: tuple[str, ...]
    stride: tuple[str, ...]
    threat_id: str

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def tags(self) -> list[str]:
        """Tags for SARIF consumers: security, CWE (both spellings GitHub knows), OWASP, STRIDE."""
        tags = ["security"]
        if self.cwe is not None:
            tags += [f"CWE-{self.cwe}", f"external/cwe/cwe-{self.cwe}"]
        tags += [*self.owasp, *(f"STRIDE:{s}" for s in self.stride)]
        return list(dict.fromkeys(tags))


def _rule_from(check_id: str, finding: Finding | None) -> RuleInfo:
    """Registry first, then the catalog threat, then the first finding: hand-built results have neither."""
    spec = load_checks().get(check_id)
    catalog = load_catalog()
    threat_id = spec.threat if spec else (finding.threat_id if finding else "")
    threat = catalog.get(threat_id)
    title = spec.title if spec else threat.title if threat else finding.title if finding else check_id
    severity = (spec.severity if spec else threat.severity if threat
                else finding.severity if finding else Severity.info)
    cwe = spec.cwe if spec else threat.cwe if threat else finding.cwe if finding else None
    owasp = (spec.owasp if spec else tuple(threat.owasp_refs) if threat
             else tuple(finding.owasp) if finding else ())
    mitigation = (spec.mitigation if spec else threat.mitigation if threat
                  else finding.remediation if finding else "")
    return RuleInfo(
        id=check_id, title=title, summary=threat.summary if threat else title,
        why=threat.why if threat else "", mitigation=mitigation, severity=severity, cwe=cwe,
        owasp=tuple(owasp), stride=tuple(threat.stride) if threat else (), threat_id=threat_id,
    )


def rules_for(result: ScanResult) -> dict[str, RuleInfo]:
    """Rules for every check that ran or reported, sorted by check id."""
    first: dict[str, Finding] = {}
    for f in result.findings:
        first.setdefault(f.check_id, f)
    ids = sorted({c.check_id for c in result.checks} | set(first))
    return {cid: _rule_from(cid, first.get(cid)) for cid in ids}


def severity_counts(findings: list[Finding]) -> dict[Severity, int]:
    """Number of findings per severity, every severity present (most severe first)."""
    counts = Counter(f.severity for f in findings)
    return {s: counts.get(s, 0) for s in SEVERITIES}


def findings_by_check(findings: list[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        grouped[f.check_id].append(f)
    return grouped


@dataclass(frozen=True)
class CheckRow:
    """One line of the per-check statistics table."""

    check_id: str
    requests: int
    units: int
    duration_s: float
    findings: int
    errors: list[str]


def check_rows(result: ScanResult) -> list[CheckRow]:
    """Per-check statistics in run order."""
    per_check = Counter(f.check_id for f in result.findings)
    return [CheckRow(c.check_id, c.requests, len(c.units), round(c.duration_s, 3),
                     per_check.get(c.check_id, 0), list(c.errors)) for c in result.checks]


def first_line(text: str) -> str:
    """The first line of an error message (the rest is a traceback)."""
    return text.strip().splitlines()[0] if text.strip() else ""
