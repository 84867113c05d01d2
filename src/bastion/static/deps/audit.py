"""Dependency audit: declared/installed versions × OSV advisories → findings, ranked by whether the app imports them.

Ranking decision: an advisory on a package the scanned sources import keeps its CVSS severity and is
`firm`; one on a package they never import (a transitive or unused dependency) is `tentative` and one
severity step lower, so it sorts below the same advisory on code the app really runs. Without Python
sources to look at, nothing is lowered (`imported: unknown`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.findings.model import Confidence, Evidence, Finding, Location, Severity
from bastion.static.deps.cvss import CvssError, base_score, severity_of
from bastion.static.deps.imports import dist_modules, imported_modules
from bastion.static.deps.manifests import ManifestError, Pinned, read_installed, read_manifest
from bastion.static.deps.osv import DEFAULT_OSV_URL, DEFAULT_TTL_S, Match, OfflineOsv, OsvClient
from bastion.static.files import Skipped
from bastion.static.rules import static_rule

VULNERABLE = "deps.vulnerable-dependency"
UNPINNED = "deps.unpinned-dependency"
MAX_SUMMARY = 300
_DB_SEVERITY = {"CRITICAL": Severity.critical, "HIGH": Severity.high, "MODERATE": Severity.medium,
                "MEDIUM": Severity.medium, "LOW": Severity.low}
_LOWER = {Severity.critical: Severity.high, Severity.high: Severity.medium, Severity.medium: Severity.low,
          Severity.low: Severity.info, Severity.info: Severity.info}


@dataclass
class DepsOptions:
    """Where advisories come from and which environments to audit besides the manifests."""

    osv_url: str = DEFAULT_OSV_URL
    offline_dir: str | None = None
    cache_dir: str | None = ".bastion/osv-cache"
    cache_ttl_s: float = DEFAULT_TTL_S
    installed: bool = False
    site_packages: str | None = None
    timeout_s: float = 15.0

    @classmethod
    def from_env(cls) -> DepsOptions | None:
        """Options from BASTION_OSV_OFFLINE / BASTION_OSV_URL (how `bastion scan --static` opts in)."""
        offline, url = os.environ.get("BASTION_OSV_OFFLINE"), os.environ.get("BASTION_OSV_URL")
        if not offline and not url:
            return None
        return cls(osv_url=url or DEFAULT_OSV_URL, offline_dir=offline or None)


@dataclass
class DepsReport:
    findings: list[Finding] = field(default_factory=list)
    packages: int = 0
    notes: list[str] = field(default_factory=list)


def audit_dependencies(manifests: Iterable[tuple[Path, str]], python_sources: list[tuple[str, str]],
                       options: DepsOptions, skipped: list[Skipped]) -> DepsReport:
    """Findings for every pinned dependency an OSV advisory affects, and info for unpinned ones.

    A malformed manifest is skipped (reason recorded); an unusable OSV source raises OsvError.
    """
    entries: list[Pinned] = []
    for path, display in manifests:
        try:
            entries.extend(read_manifest(path, display))
        except ManifestError as exc:
            skipped.append(Skipped(display, f"dependency manifest not read: {exc.args[0]}"))
    if options.installed or options.site_packages:
        entries.extend(read_installed(options.site_packages))  # a bad --site-packages is a usage error
    pinned = [e for e in entries if e.version]
    report = DepsReport(packages=len({(e.name, e.version) for e in pinned}))
    source: OfflineOsv | OsvClient = (
        OfflineOsv(options.offline_dir, skipped) if options.offline_dir
        else OsvClient(options.osv_url, cache_dir=options.cache_dir, ttl_s=options.cache_ttl_s,
                       timeout_s=options.timeout_s))
    matches = source.advisories({(e.name, e.version or "") for e in pinned}) if pinned else {}
    report.notes.extend(source.stats.notes)
    imports = imported_modules(python_sources) if python_sources else None
    grouped: dict[tuple[str, str], list[tuple[Pinned, Match]]] = {}
    for entry in pinned:
        for match in matches.get((entry.name, entry.version or ""), []):
            grouped.setdefault((entry.name, match.advisory["id"]), []).append((entry, match))
    for (name, _), hits in sorted(grouped.items()):
        report.findings.append(_vulnerable(name, hits, _imported(name, imports, options.site_packages)))
    pinned_names = {e.name for e in pinned}
    unpinned: dict[str, list[Pinned]] = {}
    for e in entries:
        if not e.version and e.name not in pinned_names:
            unpinned.setdefault(e.name, []).append(e)
    report.findings.extend(_unpinned(name, decls) for name, decls in sorted(unpinned.items()))
    return report


def _imported(name: str, imports: set[str] | None, site_packages: str | None) -> tuple[str, list[str]]:
    """("true"|"false"|"unknown", modules of the dist that the sources import)."""
    if imports is None:
        return "unknown", []
    used = sorted(dist_modules(name, site_packages) & imports)
    return ("true" if used else "false"), used


def cvss_of(advisory: dict[str, Any]) -> tuple[float | None, str]:
    """The highest CVSS v3 base score among the advisory's severities, and its vector."""
    best: tuple[float | None, str] = (None, "")
    for sev in advisory.get("severity") or []:
        if not isinstance(sev, dict) or sev.get("type") != "CVSS_V3" or not isinstance(sev.get("score"), str):
            continue
        try:
            score = base_score(sev["score"])
        except CvssError:
            continue
        if best[0] is None or score > best[0]:
            best = (score, sev["score"])
    if best[0] is None:  # keep a v4 (or other) vector for the reader even though it is not scored here
        other = next((s.get("score") for s in advisory.get("severity") or []
                      if isinstance(s, dict) and isinstance(s.get("score"), str)), "")
        best = (None, str(other)[:200])
    return best


def _severity(advisory: dict[str, Any], score: float | None) -> Severity:
    if score is not None:
        return severity_of(score)
    db = advisory.get("database_specific")
    label = str(db.get("severity", "")).upper() if isinstance(db, dict) else ""
    return _DB_SEVERITY.get(label, Severity.medium)


def _aliases(advisory: dict[str, Any]) -> list[str]:
    return sorted(str(a) for a in advisory.get("aliases") or [] if isinstance(a, str))[:20]


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def _vulnerable(name: str, hits: list[tuple[Pinned, Match]], imported: tuple[str, list[str]]) -> Finding:
    rule = static_rule(VULNERABLE, VULNERABLE)
    advisory = hits[0][1].advisory
    adv_id = str(advisory["id"])
    aliases = _aliases(advisory)
    score, vector = cvss_of(advisory)
    severity = _severity(advisory, score)
    confidence = Confidence.firm
    state, modules = imported
    if state == "false":
        severity, confidence = _LOWER[severity], Confidence.tentative
    elif state == "unknown":
        confidence = Confidence.tentative
    fixed = sorted({v for _, m in hits for v in m.fixed})
    versions = sorted({e.version or "" for e, _ in hits})
    cve = next((a for a in aliases if a.startswith("CVE-")), "")
    title = f"{name} {', '.join(versions)}: known vulnerability {adv_id}" + (f" ({cve})" if cve else "")
    meta = {"package": name, "versions": ",".join(versions), "advisory": adv_id, "aliases": ",".join(aliases),
            "fixed": ",".join(fixed), "imported": state, "modules": ",".join(modules)}
    if score is not None:
        meta["cvss_score"] = f"{score:.1f}"
    if vector:
        meta["cvss_vector"] = vector
    evidence = [Evidence(kind="source", summary=f"{e.file}:{e.line}" if e.line else e.file,
                         content=f"{name} {e.spec or e.version} ({e.source}: version {e.version})", meta=meta)
                for e, _ in hits]
    summary = str(advisory.get("summary") or advisory.get("details") or "")[:MAX_SUMMARY]
    note = f"{adv_id}: {summary}" if summary else adv_id
    evidence.append(Evidence(kind="note", summary=note, content=(
        f"fixed in {', '.join(fixed)}" if fixed else "no fixed version published")
        + f"; imported by the app: {state}" + (f" ({', '.join(modules)})" if modules else "")))
    upgrade = (f"Upgrade {name} to {fixed[0]} or later (fixed in {', '.join(fixed)}). " if fixed
               else f"No fixed release of {name} is known: remove it or mitigate per {adv_id}. ")
    first = hits[0][0]
    return Finding(check_id=rule.id, threat_id=rule.threat, title=title, severity=severity,
                   confidence=confidence, cwe=rule.cwe, owasp=list(rule.owasp),
                   location=Location(file=first.file, line=first.line), evidence=evidence[:12],
                   remediation=upgrade + rule.mitigation,
                   # One flaw per package and advisory, wherever and at whichever version it is pinned.
                   fingerprint=_fingerprint(rule.id, name, adv_id))


def _unpinned(name: str, decls: list[Pinned]) -> Finding:
    rule = static_rule(UNPINNED, UNPINNED)
    evidence = [Evidence(kind="source", summary=f"{d.file}:{d.line}" if d.line else d.file,
                         content=f"{name} {d.spec}".strip(), meta={"package": name})
                for d in decls[:12]]
    first = decls[0]
    return Finding(check_id=rule.id, threat_id=rule.threat,
                   title=f"{name}: version not pinned, cannot determine whether it is vulnerable",
                   severity=Severity.info, confidence=Confidence.firm, cwe=rule.cwe, owasp=list(rule.owasp),
                   location=Location(file=first.file, line=first.line), evidence=evidence,
                   remediation=rule.mitigation, fingerprint=_fingerprint(rule.id, name))
