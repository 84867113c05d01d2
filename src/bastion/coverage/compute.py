"""Compute threat coverage from a scan: catalog threats × the checks' planned units × what happened."""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING

from bastion.catalog import load_catalog
from bastion.checks.registry import CheckSpec, load_checks
from bastion.coverage.expired import CHECK_ID as EXPIRED_CHECK
from bastion.coverage.expired import is_expired
from bastion.coverage.model import (
    ALL_ENTRIES,
    ANY_ROLE,
    CHECK_ERROR,
    EXCLUDED,
    FINDING,
    NO_CHECK,
    NOT_APPLICABLE,
    NOT_TESTED,
    STATIC_ONLY,
    TESTED,
    Coverage,
    CoverageRow,
    ThreatCoverage,
    best_row,
    sort_rows,
)
from bastion.engine.units import RunPlanRecord, UnitRecord
from bastion.findings.baseline import suppression_matches
from bastion.findings.model import Confidence, Finding, Location, Severity, normalize_path
from bastion.model.schema import AcceptedRisk
from bastion.surface.model import EntryPoint, Surface

if TYPE_CHECKING:
    from bastion.engine.runner import ScanResult

Cell = tuple[str, str]  # (entry, role)


def compute_coverage(result: ScanResult) -> Coverage:
    """Every catalog threat (and any other threat the findings name) with its rows and status."""
    catalog = load_catalog()
    checks_by_threat: dict[str, list[CheckSpec]] = defaultdict(list)
    for spec in sorted(load_checks().values(), key=lambda s: s.id):
        checks_by_threat[spec.threat].append(spec)
    static_by_threat = _static_rules()
    plan = result.coverage_plan
    stats = {s.check_id: s.unit_records for s in result.checks}
    findings_by_threat: dict[str, list[Finding]] = defaultdict(list)
    for f in result.findings:
        findings_by_threat[f.threat_id].append(f)
    entry_index = {(ep.method, normalize_path(ep.path)): ep.key for ep in result.surface.entry_points}
    threats: list[ThreatCoverage] = []
    for tid in sorted({*catalog, *findings_by_threat}):
        threat = catalog.get(tid)
        sample = findings_by_threat[tid][0] if findings_by_threat[tid] else None
        specs = checks_by_threat.get(tid, [])
        cells: dict[Cell, CoverageRow] = {}
        for spec in specs:
            for row in _check_rows(spec, plan, stats.get(spec.id), result.surface):
                _merge(cells, row)
        if tid == EXPIRED_CHECK and plan is not None:
            _merge(cells, _expired_check_row(plan))
        for f in findings_by_threat[tid]:
            _add_finding(cells, f, entry_index)
        if not cells:
            _merge(cells, _no_check_row(static_by_threat.get(tid, [])))
        rows = _apply_accepted(list(cells.values()), tid, specs, plan)
        threats.append(ThreatCoverage(
            id=tid, title=threat.title if threat else (sample.title if sample else tid),
            severity=(threat.severity.value if threat else sample.severity.value if sample else "info"),
            checks=[s.id for s in specs] + static_by_threat.get(tid, []), rows=sort_rows(rows)))
    return Coverage(threats=threats)


# One computed coverage per live scan result (key: id), with the stamp of the inputs it was computed from.
_MEMO: dict[int, tuple[tuple[object, ...], Coverage]] = {}


def _inputs_stamp(result: ScanResult) -> tuple[object, ...]:
    """What `compute_coverage` reads from `result` (the objects, not their ids, which could be reused)."""
    return (tuple(result.findings), tuple(result.checks), result.coverage_plan, result.surface,
            tuple(result.surface.entry_points))


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Identity, element by element (equality of findings or plans would cost as much as recomputing)."""
    return len(a) == len(b) and all(
        x is y or (isinstance(x, tuple) and isinstance(y, tuple) and len(x) == len(y)
                   and all(p is q for p, q in zip(x, y, strict=True)))
        for x, y in zip(a, b, strict=True))


def coverage_of(result: ScanResult) -> Coverage:
    """`compute_coverage(result)`, computed once per scan result and shared by every report format.

    Callers must treat the returned Coverage as read-only (it is shared).
    """
    stamp = _inputs_stamp(result)
    known = _MEMO.get(id(result))
    if known is not None and _same(known[0], stamp):
        return known[1]
    if known is None:
        weakref.finalize(result, _MEMO.pop, id(result), None)
    coverage = compute_coverage(result)
    _MEMO[id(result)] = (stamp, coverage)
    return coverage


def _static_rules() -> dict[str, list[str]]:
    from bastion.static import static_checks_by_threat

    return static_checks_by_threat()


def _merge(cells: dict[Cell, CoverageRow], row: CoverageRow) -> None:
    key = (row.entry, row.role)
    cells[key] = best_row(cells[key], row) if key in cells else row


def _role(role: str | None) -> str:
    return role if role is not None else ANY_ROLE


def _check_rows(spec: CheckSpec, plan: RunPlanRecord | None, records: list[UnitRecord] | None,
                surface: Surface) -> list[CoverageRow]:
    """The cells one check covers: its units' outcomes, and why the other entry points were left out."""
    if plan is not None and spec.id in plan.not_run:
        reason = plan.not_run[spec.id]
        short = EXCLUDED if reason.startswith("excluded") else reason
        return [CoverageRow(ALL_ENTRIES, ANY_ROLE, NOT_TESTED, short, f"{spec.id}: {reason}", (spec.id,))]
    if records is None:
        if plan is None:  # a hand-built result: nothing is known about this check
            return []
        return [CoverageRow(ALL_ENTRIES, ANY_ROLE, NOT_TESTED, NOT_APPLICABLE,
                            f"{spec.id}: did not run in this scan", (spec.id,))]
    if spec.scope == "target":
        return [_unit_row(r.entry, _role(r.role), [r], spec) for r in records]
    by_cell: dict[Cell, list[UnitRecord]] = defaultdict(list)
    for r in records:
        by_cell[(r.entry, _role(r.role))].append(r)
    roles = sorted({role for _, role in by_cell} or ({*plan.roles} if plan and spec.roles else {ANY_ROLE}))
    excluded = set(plan.excluded_entries) if plan else set()
    rows: list[CoverageRow] = []
    for ep in surface.sorted():
        for role in roles:
            recs = by_cell.get((ep.key, role))
            if recs:
                rows.append(_unit_row(ep.key, role, recs, spec))
            elif ep.key in excluded:
                rows.append(CoverageRow(ep.key, role, NOT_TESTED, EXCLUDED,
                                        f"{spec.id}: path excluded by scope.exclude_paths", (spec.id,)))
            else:
                rows.append(CoverageRow(ep.key, role, NOT_TESTED, NOT_APPLICABLE,
                                        f"{spec.id}: {_why_not_planned(spec, ep)}", (spec.id,)))
    return rows


def _unit_row(entry: str, role: str, recs: Sequence[UnitRecord], spec: CheckSpec) -> CoverageRow:
    """One cell from the units a check ran there (an input-scope check has one unit per input)."""
    found = sum(r.findings for r in recs)
    sent = sum(r.requests for r in recs)
    inputs = [r.input for r in recs if r.input]
    where = f" on {len(inputs)} input(s)" if inputs else ""
    if found:  # counted before de-duplication: the findings themselves fill in the count where they sit
        return CoverageRow(entry, role, FINDING, None, f"{spec.id}: reported {found} finding(s)", (spec.id,))
    if sent:
        return CoverageRow(entry, role, TESTED, None, f"{spec.id}: {sent} request(s){where}", (spec.id,))
    skipped = next((r.skipped for r in recs if r.skipped), None)
    if skipped:
        return CoverageRow(entry, role, NOT_TESTED, skipped, f"{spec.id}: {skipped}", (spec.id,))
    error = next((r.error for r in recs if r.error), None)
    if error:
        return CoverageRow(entry, role, NOT_TESTED, CHECK_ERROR, f"{spec.id}: {error}", (spec.id,))
    return CoverageRow(entry, role, NOT_TESTED, NOT_APPLICABLE,
                       f"{spec.id}: ran but found nothing to probe here (no requests sent)", (spec.id,))


def _why_not_planned(spec: CheckSpec, ep: EntryPoint) -> str:
    """Why the engine planned no unit of this check for this entry point."""
    if spec.methods and ep.method not in spec.methods:
        return f"probes only {', '.join(spec.methods)} entry points"
    if spec.scope == "input":
        if spec.locations:
            return f"no {'/'.join(spec.locations)} inputs"
        return "no inputs"
    return "not planned for this entry point"


def _expired_check_row(plan: RunPlanRecord) -> CoverageRow:
    """The engine judges every `accepted:` entry of a threat model; nothing to judge without one."""
    if not plan.accepted:
        return CoverageRow("target", ANY_ROLE, NOT_TESTED, NOT_APPLICABLE,
                           "no accepted: entries in the threat model", (EXPIRED_CHECK,))
    return CoverageRow("target", ANY_ROLE, TESTED, None, f"{len(plan.accepted)} accepted: entries checked",
                       (EXPIRED_CHECK,))


def _no_check_row(static_rules: list[str]) -> CoverageRow:
    if static_rules:
        return CoverageRow(ALL_ENTRIES, ANY_ROLE, NOT_TESTED, STATIC_ONLY,
                           f"static rules {', '.join(static_rules)}: run `bastion scan --static`")
    return CoverageRow(ALL_ENTRIES, ANY_ROLE, NOT_TESTED, NO_CHECK, "no check or user test implements this threat")


def _finding_entry(loc: Location, entry_index: dict[tuple[str, str], str]) -> str:
    if loc.method or loc.path:
        key = ((loc.method or "").upper(), normalize_path(loc.path))
        return entry_index.get(key) or f"{loc.method or ''} {loc.path or ''}".strip()
    if loc.file:
        return f"{loc.file}:{loc.line}" if loc.line else loc.file
    return "target"


def _add_finding(cells: dict[Cell, CoverageRow], f: Finding, entry_index: dict[tuple[str, str], str]) -> None:
    """Mark the cell of a finding: its role's cell, else the check's "any role" cell, else a new one."""
    entry = _finding_entry(f.location, entry_index)
    candidates = [(entry, _role(f.role)), (entry, ANY_ROLE), *sorted(k for k in cells if k[0] == entry)]
    key = next((k for k in candidates if k in cells), (entry, _role(f.role)))
    detail = f"{f.check_id}: {f.title}" + (f" [role: {f.role}]" if f.role and key[1] != f.role else "")
    old = cells.get(key)
    if old is None:
        cells[key] = CoverageRow(key[0], key[1], FINDING, None, detail, (f.check_id,), 1)
        return
    # The unit's own summary ("finding(s) here") gives way to the de-duplicated findings themselves.
    kept = old.detail if old.status == FINDING and old.findings else ""
    cells[key] = replace(old, status=FINDING, reason=None, findings=old.findings + 1,
                         detail="; ".join(d for d in (kept, detail) if d),
                         checks=tuple(dict.fromkeys((*old.checks, f.check_id))))


def _apply_accepted(rows: list[CoverageRow], threat_id: str, specs: Sequence[CheckSpec],
                    plan: RunPlanRecord | None) -> list[CoverageRow]:
    """Rows an `accepted:` entry covers are excluded (reason, owner, expiry); expired entries leave a note."""
    if plan is None or not plan.accepted:
        return rows
    today = plan.today or date.today()
    out: list[CoverageRow] = []
    for row in rows:
        for risk in plan.accepted:
            if not _accepted_covers(risk, row, threat_id, specs):
                continue
            if is_expired(risk, today):
                row = replace(row, notes=(*row.notes, f"exclusion expired on {risk.until.isoformat()}"))
            elif row.entry != ALL_ENTRIES:
                owner = f", owner {risk.owner}" if risk.owner else ""
                row = replace(row, status=NOT_TESTED, reason=EXCLUDED,
                              detail=f"accepted until {risk.until.isoformat()}{owner}: {risk.reason}")
        out.append(row)
    return out


def _accepted_covers(risk: AcceptedRisk, row: CoverageRow, threat_id: str, specs: Iterable[CheckSpec]) -> bool:
    """Whether the entry would suppress a finding of this threat in this cell (the suppression rule)."""
    method, _, path = row.entry.partition(" ")
    is_route = path.startswith("/")
    probe_role = None if row.role == ANY_ROLE else row.role
    check_ids = [s.id for s in specs] or [threat_id]
    for cid in check_ids:
        probe = Finding(check_id=cid, threat_id=threat_id, title="", severity=Severity.info,
                        confidence=Confidence.tentative,
                        location=Location(method=method if is_route else None, path=path if is_route else None),
                        role=probe_role, fingerprint="-")
        if suppression_matches(risk, probe):
            return True
    return False
