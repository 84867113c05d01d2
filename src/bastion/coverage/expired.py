"""Expired exclusions: an `accepted:` entry past its `until` date is itself a finding."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from bastion.catalog import get_threat
from bastion.errors import ConfigError
from bastion.findings.baseline import apply_suppressions
from bastion.findings.model import Confidence, Evidence, Finding, Location
from bastion.model.schema import AcceptedRisk

CHECK_ID = "model.expired-exclusion"


def is_expired(risk: AcceptedRisk, today: date) -> bool:
    """The rule `apply_suppressions` uses: a suppression holds up to and including its `until` date."""
    return risk.until < today


def expired_exclusion_findings(accepted: Sequence[AcceptedRisk], today: date, findings: Sequence[Finding],
                               *, config_file: str | None = None) -> list[Finding]:
    """One finding per expired entry, located at its line in the threat-model file when known.

    The findings the entry used to hide are already active again (see `apply_suppressions`); this
    finding makes the lapsed review visible even when the entry matches nothing any more.
    """
    threat = get_threat(CHECK_ID)
    lines = _entry_lines(config_file, len(accepted))
    out: list[Finding] = []
    for index, risk in enumerate(accepted):
        if not is_expired(risk, today):
            continue
        # Reuse the suppression logic: its note says how many findings the entry hid and now count again.
        _, _, notes = apply_suppressions(findings, [risk], today)
        where = " ".join(x for x in (risk.method, risk.path) if x) or "every location"
        owner = f", owner {risk.owner}" if risk.owner else ""
        out.append(Finding(
            check_id=CHECK_ID, threat_id=threat.id,
            title=f"Accepted risk {risk.threat} at {where} expired on {risk.until.isoformat()}",
            severity=threat.severity, confidence=Confidence.confirmed, cwe=threat.cwe,
            owasp=list(threat.owasp_refs),
            location=Location(file=_display_path(config_file), line=lines[index]),
            evidence=[Evidence(kind="note", summary=f"accepted until {risk.until.isoformat()}{owner}; "
                                                    f"reason: {risk.reason}",
                               content="\n".join(notes),
                               meta={"threat": risk.threat, "until": risk.until.isoformat(),
                                     **({"owner": risk.owner} if risk.owner else {})})],
            remediation=threat.mitigation, fingerprint=_fingerprint(risk),
        ))
    return out


def _fingerprint(risk: AcceptedRisk) -> str:
    """Stable per entry (threat, where, role); a renewed `until` ends the finding instead of moving it."""
    parts = [CHECK_ID, risk.threat, risk.method or "", risk.path or "", risk.role or ""]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def _entry_lines(config_file: str | None, count: int) -> list[int | None]:
    """Line of each `accepted:` item in the file, None when the file is unknown or unreadable now."""
    lines: list[int | None] = [None] * count
    if not config_file:
        return lines
    from bastion.safeyaml import load_yaml_file

    try:
        doc = load_yaml_file(config_file)
    except (ConfigError, OSError):
        return lines
    for index in range(count):
        if ("accepted", index) in doc.lines:
            lines[index] = doc.lines[("accepted", index)]
    return lines


def _display_path(config_file: str | None) -> str:
    """The config file relative to the working directory when it is below it (stable across machines)."""
    if not config_file:
        return "bastion.yaml"
    path = Path(config_file)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
