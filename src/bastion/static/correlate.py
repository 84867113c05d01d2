"""Tie static findings to the routes they sit behind, and merge them with runtime (DAST) findings.

Correlation: a finding's *entry* function is where its request data was read (for request-data
rules) or the function holding the construct (for configuration rules). Each discovered entry point
names its handler (`module:qualname`); a finding belongs to every route whose handler is the entry
function or calls it (module-local calls, up to three deep). The copy per route gets
`location.method/path` (and `input` when the tainted source is one of the route's inputs), keeps
`file/line`, and carries `reachable: "true"` and `route` in its source evidence meta.

Ranking decision: a request-data finding that no discovered route reaches (dead code, an
unregistered view, a handler in another module) gets `reachable: "false"` and its severity lowered
one step, so it sorts below the same flaw on a live route. Configuration findings outside any
handler (module-level debug flags, secret keys, CORS set-up) are app-wide: `reachable: "app"`, severity
unchanged. Without a surface (plain `bastion static PATH`) nothing is marked.

Merging (`merge_with_dast`): a static finding and a DAST finding for the same flaw — same threat id,
same route (method and normalised path), and the same input (or the same file and line) — become one
finding: the DAST one, with its fingerprint and title, its evidence extended with the source line,
and confidence max(DAST, static), so a runtime-confirmed flaw stays confirmed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import replace

from bastion.engine.runner import ScanResult
from bastion.findings.dedup import dedupe
from bastion.findings.model import Evidence, Finding, InputRef, Location, Severity, normalize_path
from bastion.static.python_scan import ModuleInfo
from bastion.surface.model import EntryPoint, Surface

MAX_CALL_DEPTH = 3
_LOWER = {Severity.critical: Severity.high, Severity.high: Severity.medium, Severity.medium: Severity.low,
          Severity.low: Severity.info, Severity.info: Severity.info}


def module_file(module: str) -> str | None:
    """Real path of an already imported (or importable) module's source file."""
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if path is None:
        try:
            import importlib.util

            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        path = spec.origin if spec else None
    return os.path.realpath(path) if path else None


def _handler_index(surface: Surface) -> dict[tuple[str, str], list[EntryPoint]]:
    index: dict[tuple[str, str], list[EntryPoint]] = {}
    for ep in surface.sorted():
        if not ep.handler or ":" not in ep.handler:
            continue
        module, _, qualname = ep.handler.partition(":")
        real = module_file(module)
        if real:
            index.setdefault((real, qualname), []).append(ep)
    return index


def _reaches(calls: dict[str, set[str]], start: str, goal: str) -> bool:
    frontier, seen = {start}, {start}
    for _ in range(MAX_CALL_DEPTH):
        frontier = {c for f in frontier for c in calls.get(f, ()) if c not in seen}
        if goal in frontier:
            return True
        seen |= frontier
    return False


def _meta(f: Finding) -> dict[str, str]:
    return f.evidence[0].meta if f.evidence else {}


def _sources(f: Finding) -> list[tuple[str, str]]:
    raw = _meta(f).get("sources", "")
    return [tuple(s.split(":", 1)) for s in raw.split(",") if ":" in s]  # type: ignore[misc]


def _matching_input(ep: EntryPoint, sources: list[tuple[str, str]]) -> InputRef | None:
    for loc, name in sources:
        for inp in ep.inputs:
            same_name = inp.name.lower() == name.lower() if loc == "header" else inp.name == name
            if same_name and (inp.location == loc or (loc == "query" and inp.location == "form")):
                return InputRef.model_validate({"in": inp.location, "name": inp.name})
    return None


def _with_meta(f: Finding, update: dict[str, str], **changes: object) -> Finding:
    evidence = list(f.evidence)
    if evidence:
        evidence[0] = evidence[0].model_copy(update={"meta": {**evidence[0].meta, **update}})
    data = f.model_dump(by_alias=True, exclude={"proof"})
    data.update(evidence=[e.model_dump() for e in evidence], fingerprint="", **changes)
    return Finding.model_validate(data)  # fingerprint recomputed for the new location


def correlate(findings: Iterable[Finding], surface: Surface, real_files: dict[str, str],
              modules: dict[str, ModuleInfo]) -> list[Finding]:
    """Map each finding to its route(s); mark and rank the ones no route reaches (see module doc)."""
    index = _handler_index(surface)
    out: list[Finding] = []
    for f in findings:
        meta = _meta(f)
        real = real_files.get(f.location.file or "")
        module = modules.get(real or "")
        entry = meta.get("entry") or (module.function_at(f.location.line or 0) if module else None)
        if real is None or module is None or not entry or entry == "<module>":
            out.append(f)
            continue
        file_calls = module.calls
        eps = [ep for (path, qual), group in index.items() if path == real
               and (qual == entry or _reaches(file_calls, qual, entry)) for ep in group]
        sources = _sources(f)
        if sources:
            with_input = [ep for ep in eps if _matching_input(ep, sources)]
            eps = with_input or eps
        if not eps:
            if sources:
                out.append(_with_meta(f, {"reachable": "false"}, severity=_LOWER[f.severity].value))
            else:
                out.append(_with_meta(f, {"reachable": "app"}))
            continue
        for ep in eps:
            inp = _matching_input(ep, sources) or f.location.input
            location = Location(method=ep.method, path=ep.path, input=inp, file=f.location.file,
                                line=f.location.line)
            out.append(_with_meta(f, {"reachable": "true", "route": ep.key},
                                  location=location.model_dump(by_alias=True)))
    return dedupe(out)


def _same_input(static: Finding, dast: Finding) -> bool:
    d = dast.location.input
    s = static.location.input
    if s is None and not _sources(static) and not static.check_id.startswith("static.bandit."):
        return True  # a configuration rule (cookie flags, XML parser) covers the whole route
    if d is None or s is None:
        return d is None and s is None
    names = {(s.in_, s.name)} | set(_sources(static))
    return any(loc == d.in_ and (name.lower() == d.name.lower() if loc == "header" else name == d.name)
               for loc, name in names) or (d.in_ == "form" and (("query", d.name) in names))


def _same_flaw(static: Finding, dast: Finding) -> bool:
    s, d = static.location, dast.location
    if static.threat_id != dast.threat_id or not s.path or (s.method or "") != (d.method or ""):
        return False
    if normalize_path(s.path) != normalize_path(d.path):
        return False
    same_line = bool(s.file and s.file == d.file and s.line == d.line)
    return same_line or _same_input(static, dast)


def merge_with_dast(result: ScanResult, static: list[Finding]) -> ScanResult:
    """One list: each DAST finding absorbs the static findings of the same flaw; the rest are added."""
    merged = list(result.findings)
    unmatched: list[Finding] = []
    for s in static:
        hits = [i for i, d in enumerate(merged) if d.check_id != s.check_id and _same_flaw(s, d)]
        if not hits:
            unmatched.append(s)
            continue
        for i in hits:
            d = merged[i]
            source = [Evidence(kind=e.kind, summary=e.summary, content=e.content,
                               meta={**e.meta, "static_check": s.check_id})
                      for e in s.evidence if e.kind == "source"]
            confidence = max(d.confidence, s.confidence, key=lambda c: c.rank)
            merged[i] = d.model_copy(update={"evidence": [*d.evidence, *source], "confidence": confidence})
    findings = sorted([*merged, *dedupe(unmatched)], key=Finding.sort_key)
    return replace(result, findings=findings)
