"""Coverage changelog: which threats, entry points and roles gained or lost coverage between two runs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from bastion.catalog import load_catalog
from bastion.errors import BastionError
from bastion.findings.model import Severity
from bastion.history.compliance import compliance_refs
from bastion.history.schema import run_checks, run_units, runs

CHANGELOG_SCHEMA = "bastion-changelog/1"
TARGET_ENTRY = "target"


class ChangelogError(BastionError):
    """The runs to compare cannot be found or carry no coverage."""


@dataclass
class RunCoverage:
    """What one run exercised: per threat, the entry points and roles it covered."""

    run_id: int
    started_at: str
    target: str
    checks: set[str] = field(default_factory=set)
    entries: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # threat -> entry points
    roles: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # threat -> roles

    @property
    def threats(self) -> set[str]:
        return set(self.entries)

    @property
    def all_entries(self) -> set[str]:
        return {e for entries in self.entries.values() for e in entries if e != TARGET_ENTRY}

    @property
    def all_roles(self) -> set[str]:
        return {r for roles in self.roles.values() for r in roles}


def _run_row(conn: Connection, run_id: int) -> Any:
    row = conn.execute(select(runs.c.id, runs.c.started_at, runs.c.target).where(runs.c.id == run_id)).first()
    if row is None:
        raise ChangelogError(f"no run {run_id} in the history (`bastion history` lists the runs)")
    return row


def load_coverage(conn: Connection, run_id: int) -> RunCoverage:
    """The coverage units a run recorded; a run recorded before units were stored is an error."""
    row = _run_row(conn, run_id)
    cov = RunCoverage(run_id=row.id, started_at=row.started_at, target=row.target)
    for check_id, threat_id, entry, role in conn.execute(
            select(run_units.c.check_id, run_units.c.threat_id, run_units.c.entry, run_units.c.role)
            .where(run_units.c.run_id == run_id)):
        threat = threat_id or check_id
        cov.checks.add(check_id)
        cov.entries[threat].add(entry)
        if role:
            cov.roles[threat].add(role)
    planned = conn.execute(select(func.coalesce(func.sum(run_checks.c.units), 0))
                           .where(run_checks.c.run_id == run_id)).scalar()
    if not cov.checks and planned:
        raise ChangelogError(f"run {run_id} was recorded before Bastion stored coverage units; "
                             "compare runs recorded by this version")
    return cov


def _parse_day(text: str) -> str:
    """The UTC ISO timestamp a --since DATE (or date-time) stands for."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise ChangelogError(f"--since {text!r}: give a run id or a date like 2026-03-01") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def resolve_runs(conn: Connection, since: str, *, until: int | None = None,
                 target: str | None = None) -> tuple[int, int]:
    """(base run, head run): --since a run id or a date (the last run before it), up to --until or the latest."""
    if since.strip().isdigit():
        base_row = _run_row(conn, int(since))
        if target is not None and base_row.target != target:
            raise ChangelogError(f"run {base_row.id} is of target {base_row.target}, not {target}")
        target = base_row.target
    if until is not None:
        head_row = _run_row(conn, until)
        if target is not None and head_row.target != target:
            raise ChangelogError(f"run {until} is of target {head_row.target}, not {target}")
        target = head_row.target
    latest = select(runs.c.id, runs.c.target).order_by(runs.c.started_at.desc(), runs.c.id.desc())
    if target is not None:
        latest = latest.where(runs.c.target == target)
    head = conn.execute(latest.limit(1)).first() if until is None else _run_row(conn, until)
    if head is None:
        raise ChangelogError("no runs recorded" + (f" for target {target}" if target else ""))
    target = head.target
    if since.strip().isdigit():
        return int(since), head.id
    moment = _parse_day(since.strip())
    of_target = select(runs.c.id).where(runs.c.target == target)
    before = conn.execute(of_target.where(runs.c.started_at < moment)
                          .order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(1)).scalar()
    if before is None:  # nothing before the date: compare from the first run on or after it
        before = conn.execute(of_target.where(runs.c.started_at >= moment)
                              .order_by(runs.c.started_at, runs.c.id).limit(1)).scalar()
    if before is None:
        raise ChangelogError(f"no runs of {target} since {since}")
    return int(before), head.id


def _severity(threat_id: str) -> Severity:
    threat = load_catalog().get(threat_id)
    if threat is not None:
        return threat.severity
    from bastion.checks.registry import load_checks

    spec = load_checks().get(threat_id)  # a check without a catalog threat is keyed by its id
    return spec.severity if spec else Severity.info


def _threat_change(threat: str, base: RunCoverage, head: RunCoverage) -> dict[str, Any] | None:
    old_e, new_e = base.entries.get(threat, set()), head.entries.get(threat, set())
    old_r, new_r = base.roles.get(threat, set()), head.roles.get(threat, set())
    if old_e == new_e and old_r == new_r:
        return None
    change = "gained" if not old_e else "lost" if not new_e else "changed"
    catalog = load_catalog().get(threat)
    severity = _severity(threat)
    return {"threat": threat, "title": catalog.title if catalog else threat, "severity": severity.value,
            "change": change,
            "entry_points_gained": sorted(new_e - old_e), "entry_points_lost": sorted(old_e - new_e),
            "roles_gained": sorted(new_r - old_r), "roles_lost": sorted(old_r - new_r),
            **compliance_refs(threat, catalog.cwe if catalog else None)}


def changelog(base: RunCoverage, head: RunCoverage) -> dict[str, Any]:
    """The changelog document (`bastion changelog --format json`), threats by severity, most severe first."""
    threats = [c for t in sorted(base.threats | head.threats) if (c := _threat_change(t, base, head))]
    threats.sort(key=lambda c: (-Severity(c["severity"]).rank, c["threat"]))
    return {
        "schema": CHANGELOG_SCHEMA, "target": head.target,
        "from": {"run_id": base.run_id, "started_at": base.started_at},
        "to": {"run_id": head.run_id, "started_at": head.started_at},
        "threats": threats,
        "entry_points": {"gained": sorted(head.all_entries - base.all_entries),
                         "lost": sorted(base.all_entries - head.all_entries)},
        "roles": {"gained": sorted(head.all_roles - base.all_roles),
                  "lost": sorted(base.all_roles - head.all_roles)},
        "checks": {"gained": sorted(head.checks - base.checks), "lost": sorted(base.checks - head.checks)},
    }


def build_changelog(engine: Engine, since: str, *, until: int | None = None,
                    target: str | None = None) -> dict[str, Any]:
    """Resolve the two runs and compare their coverage."""
    with engine.connect() as conn:
        base_id, head_id = resolve_runs(conn, since, until=until, target=target)
        return changelog(load_coverage(conn, base_id), load_coverage(conn, head_id))


def render_changelog(doc: dict[str, Any]) -> str:
    """The changelog as plain text for a terminal."""
    lines = [f"Coverage changes for {doc['target']}: run {doc['from']['run_id']} ({doc['from']['started_at']}) "
             f"-> run {doc['to']['run_id']} ({doc['to']['started_at']})"]
    if not doc["threats"] and not any(doc[k]["gained"] or doc[k]["lost"] for k in ("entry_points", "roles")):
        return "\n".join([*lines, "no coverage changes"])
    lines.append("")
    for c in doc["threats"]:
        refs = "; ".join(f"{label} {', '.join(c[key])}" for key, label in
                         (("asvs", "ASVS"), ("pci_dss", "PCI DSS 4.0"), ("gdpr", "GDPR")) if c[key])
        lines.append(f"[{c['severity']}] {c['threat']} {c['change']}: {c['title']}" + (f"  ({refs})" if refs else ""))
        for key, sign in (("entry_points_gained", "+"), ("entry_points_lost", "-"), ("roles_gained", "+ role"),
                          ("roles_lost", "- role")):
            lines += [f"    {sign} {item}" for item in c[key]]
    for key, label in (("entry_points", "Entry points"), ("roles", "Roles"), ("checks", "Checks")):
        gained, lost = doc[key]["gained"], doc[key]["lost"]
        if gained or lost:
            lines += ["", f"{label}: +{len(gained)} -{len(lost)}", *(f"  + {x}" for x in gained),
                      *(f"  - {x}" for x in lost)]
    return "\n".join(lines)
