"""Fake ScanResults for history tests (also imported by the writer subprocess script)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bastion.engine.context import CheckStats
from bastion.engine.runner import ScanResult
from bastion.findings.model import Confidence, Evidence, Finding, InputRef, Location, Severity
from bastion.surface.model import Surface
from bastion.target.target import Target


def make_finding(check_id: str = "injection.sql", path: str = "/items", param: str | None = "q",
                 severity: str = "high", method: str = "GET", role: str | None = None,
                 threat_id: str | None = None) -> Finding:
    """A finding whose fingerprint depends on check, method, path, parameter and role."""
    return Finding(check_id=check_id, threat_id=threat_id or f"T-{check_id}", title=f"{check_id} at {path}",
                   severity=Severity(severity), confidence=Confidence.firm, role=role,
                   location=Location(method=method, path=path, url=f"http://127.0.0.1:9{path}",
                                     input=InputRef(**{"in": "query", "name": param}) if param else None),
                   evidence=[Evidence(kind="note", summary=f"probe on {path}", content="x" * 50)])


def make_result(findings: Iterable[Finding], checks: Sequence[str] = ("injection.sql", "headers.csp"),
                started_at: str = "2026-01-05T10:00:00+00:00", target: str = "app:demo",
                duration_s: float = 2.5, requests: int = 40, errors: bool = False) -> ScanResult:
    """A finished scan of `target` that ran `checks` and found `findings`."""
    stats = [CheckStats(check_id=c, requests=requests // max(1, len(checks)), duration_s=duration_s / 2,
                        units=["target", "GET /items"], errors=["boom"] if errors else [])
             for c in checks]
    return ScanResult(target=Target(kind="url", base_url="http://127.0.0.1:9", spec=target), surface=Surface(),
                      seed=7, started_at=started_at, duration_s=duration_s, requests=requests, checks=stats,
                      findings=list(findings))
