"""Deduplication: one finding per flaw per location, evidence merged, strongest confidence kept."""

from __future__ import annotations

from collections.abc import Iterable

from bastion.findings.model import Finding

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
