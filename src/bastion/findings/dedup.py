"""Deduplication: one finding per flaw per location, evidence merged, strongest confidence kept."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from bastion.findings.model import Finding, Severity, compute_fingerprint

MAX_EVIDENCE = 12


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    by_fp: dict[str, Finding] = {}
    for f in findings:
        kept = by_fp.get(f.fingerprint)
        if kept is None:
            by_fp[f.fingerprint] = f
            continue
        # Keep the more certain (then more severe) one as the base, merge the other's evidence in.
        if (f.confidence.rank, f.severity.rank) > (kept.confidence.rank, kept.severity.rank):
            kept, f = f, kept
        seen = {(e.kind, e.summary, e.content) for e in kept.evidence}
        extra = [e for e in f.evidence if (e.kind, e.summary, e.content) not in seen]
        evidence = (kept.evidence + extra)[:MAX_EVIDENCE]
        by_fp[kept.fingerprint] = kept.model_copy(update={"evidence": evidence})
    return sorted(by_fp.values(), key=Finding.sort_key)


def merge_roles(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per (check, location, severity) listing every role it was seen as.

    Authorization checks find the same flaw once per role (alice and bob can both read the
    admin export); reports list it once, titled with the roles, evidence from the first role.
    The fingerprint leaves the roles out, so it does not change when another role joins.
    """
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        key = f.model_copy(update={"role": None, "fingerprint": ""})
        groups.setdefault((compute_fingerprint(key), f.severity.value), []).append(f)
    merged: list[Finding] = []
    top: dict[str, int] = {}
    for fingerprint, severity in groups:
        top[fingerprint] = max(top.get(fingerprint, -1), Severity(severity).rank)
    for (base_fingerprint, severity), items in groups.items():
        # Two outcomes at one place (refused as one role, let through as another) stay two findings.
        fingerprint = base_fingerprint if Severity(severity).rank == top[base_fingerprint] else \
            hashlib.sha256(f"{base_fingerprint}\x1f{severity}".encode()).hexdigest()[:24]
        roles = list(dict.fromkeys(f.role for f in items if f.role))
        base = items[0]
        seen = {(e.kind, e.summary, e.content) for e in base.evidence}
        extra = [e for f in items[1:] for e in f.evidence[:1] if (e.kind, e.summary, e.content) not in seen]
        title = base.title + (f" (as {', '.join(roles)})" if len(roles) > 1 else "")
        merged.append(base.model_copy(update={"title": title, "fingerprint": fingerprint,
                                              "evidence": (base.evidence + extra)[:MAX_EVIDENCE]}))
    return merged
