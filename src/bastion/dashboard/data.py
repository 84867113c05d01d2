"""What the risk dashboard shows, read from the history store as plain data (no HTML here).

The trend, time-to-fix, discovery and cost numbers are `bastion history --format json`'s own
(`history_report`), so the page and the JSON cannot disagree. "Open now" means the findings of each
target's latest selected run: the same set as the last point of the trend.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine, select

from bastion.findings.model import Severity, normalize_path
from bastion.history.metrics import HistorySnapshot, history_report, load_snapshot
from bastion.history.schema import findings, run_findings, run_units

SEVERITIES = [s.value for s in Severity]
NO_ASSET = "(no asset)"
# The heat map shows at most this many threats and entry points (most exercised first): a readable page.
MAX_HEAT_THREATS = 60
MAX_HEAT_ENTRIES = 40
# Open findings listed by name on the page (most severe first); the counts always cover all of them.
MAX_LISTED_FINDINGS = 200


@dataclass(frozen=True)
class OpenFinding:
    """A finding present in its target's latest run."""

    target: str
    fingerprint: str
    check_id: str
    threat_id: str
    title: str
    severity: str
    state: str  # its state in that run: new, persisting, reopened, accepted
    method: str
    path: str
    first_seen: str


@dataclass
class DashboardData:
    """Everything the dashboard page renders."""

    history: dict[str, Any]  # history_report(): the `bastion history --format json` document
    open_findings: list[OpenFinding]
    by_asset: list[dict[str, Any]]  # [{"asset", "path", severity counts..., "total"}]
    by_threat: list[dict[str, Any]]  # [{"threat", severity counts..., "total"}]
    heat_threats: list[str] = field(default_factory=list)
    heat_entries: list[str] = field(default_factory=list)
    heat: dict[tuple[str, str], int] = field(default_factory=dict)  # (threat, entry) -> units run
    heat_findings: dict[tuple[str, str], int] = field(default_factory=dict)  # (threat, entry) -> open findings
    audit: dict[str, Any] | None = None
    targets: list[str] = field(default_factory=list)

    @property
    def open_total(self) -> int:
        return len(self.open_findings)


def latest_runs(snap: HistorySnapshot) -> dict[str, int]:
    """Target -> id of its latest selected run."""
    latest: dict[str, int] = {}
    for run in snap.runs:  # oldest first: the last one seen per target wins
        latest[run.target] = run.id
    return latest


def _open_findings(engine: Engine, run_ids: Sequence[int]) -> list[OpenFinding]:
    if not run_ids:
        return []
    query = (select(findings.c.target, findings.c.fingerprint, findings.c.check_id, findings.c.threat_id,
                    findings.c.title, findings.c.severity, run_findings.c.state, findings.c.location,
                    findings.c.first_seen)
             .join(run_findings, run_findings.c.finding_id == findings.c.id)
             .where(run_findings.c.run_id.in_(list(run_ids))))
    out = []
    with engine.connect() as conn:
        for row in conn.execute(query):
            loc = _location(row.location)
            out.append(OpenFinding(row.target, row.fingerprint, row.check_id, row.threat_id, row.title, row.severity,
                                   row.state, str(loc.get("method") or ""), str(loc.get("path") or ""),
                                   row.first_seen))
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(out, key=lambda f: (rank.get(f.severity, len(rank)), f.threat_id, f.path, f.fingerprint))


def _location(text: str) -> dict[str, Any]:
    try:
        loc = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return loc if isinstance(loc, dict) else {}


def _template_matches(template: str, path: str) -> bool:
    """`/api/invoices/{id}` matches `/api/invoices/{invoice_id}`, `/api/invoices/7` and paths below them."""
    want = [seg for seg in normalize_path(template).split("/") if seg]
    have = [seg for seg in normalize_path(path).split("/") if seg]
    return len(have) >= len(want) and all(w in ("{}", h) for w, h in zip(want, have, strict=False))


def asset_of(path: str, assets: Mapping[str, str]) -> str:
    """The asset whose path template matches `path` (the template, or a prefix of it), most specific first."""
    if not path:
        return NO_ASSET
    for name, template in sorted(assets.items(), key=lambda kv: (-len(normalize_path(kv[1])), kv[0])):
        if _template_matches(template, path):
            return name
    return NO_ASSET


def _severity_rows(groups: Mapping[str, list[OpenFinding]], key: str) -> list[dict[str, Any]]:
    rows = []
    for name, items in groups.items():
        counts = Counter(f.severity for f in items)
        rows.append({key: name, **{s: counts[s] for s in SEVERITIES}, "total": len(items)})
    # Most severe first: by count of critical, then high, ... then name.
    return sorted(rows, key=lambda r: (*(-r[s] for s in SEVERITIES), r[key]))


def group_by_asset(items: Sequence[OpenFinding], assets: Mapping[str, str]) -> list[dict[str, Any]]:
    groups: dict[str, list[OpenFinding]] = defaultdict(list)
    for f in items:
        groups[asset_of(f.path, assets)].append(f)
    rows = _severity_rows(groups, "asset")
    for row in rows:
        row["path"] = assets.get(row["asset"], "")
    return rows


def group_by_threat(items: Sequence[OpenFinding]) -> list[dict[str, Any]]:
    groups: dict[str, list[OpenFinding]] = defaultdict(list)
    for f in items:
        groups[f.threat_id].append(f)
    return _severity_rows(groups, "threat")


def _entry(method: str, path: str) -> str:
    return f"{method} {path}".strip() if (method or path) else "target"


def _heat(engine: Engine, run_ids: Sequence[int], items: Sequence[OpenFinding],
          data: DashboardData) -> None:
    """Units run per threat × entry point in the latest runs, and where the open findings sit."""
    counts: Counter[tuple[str, str]] = Counter()
    if run_ids:
        with engine.connect() as conn:
            for threat, entry in conn.execute(select(run_units.c.threat_id, run_units.c.entry)
                                              .where(run_units.c.run_id.in_(list(run_ids)))):
                counts[(threat or "(unknown)", entry)] += 1
    found: Counter[tuple[str, str]] = Counter((f.threat_id, _entry(f.method, f.path)) for f in items)
    threat_weight: Counter[str] = Counter()
    entry_weight: Counter[str] = Counter()
    for (threat, entry), n in (counts + found).items():
        threat_weight[threat] += n
        entry_weight[entry] += n
    data.heat_threats = sorted(threat_weight, key=lambda t: (-threat_weight[t], t))[:MAX_HEAT_THREATS]
    data.heat_entries = sorted(entry_weight, key=lambda e: (-entry_weight[e], e))[:MAX_HEAT_ENTRIES]
    data.heat, data.heat_findings = dict(counts), dict(found)


def _audit(engine: Engine, target: str | None, last: int, accepted: Sequence[Any],
           today: date | None) -> dict[str, Any]:
    from bastion.catalog import load_catalog
    from bastion.checks.registry import load_checks
    from bastion.history.audit import AuditInput, audit_report, load_audit_runs
    from bastion.static import static_checks_by_threat

    window, check_runs, seen = load_audit_runs(engine, last=last, target=target)
    data = AuditInput(runs=window, check_runs=check_runs, run_findings=seen,
                      checks={cid: spec.threat for cid, spec in load_checks().items()},
                      static_threats=frozenset(static_checks_by_threat()), catalog=dict(load_catalog()),
                      accepted=list(accepted))
    return audit_report(data, today or date.today())


def build_dashboard_data(engine: Engine, *, target: str | None = None, last: int | None = None,
                         assets: Mapping[str, str] | None = None, accepted: Sequence[Any] = (),
                         audit_last: int = 10, today: date | None = None) -> DashboardData:
    """Read the history (optionally one target, the last N runs) into what the dashboard shows."""
    snap = load_snapshot(engine, target=target, last=last)
    latest = latest_runs(snap)
    run_ids = sorted(latest.values())
    items = _open_findings(engine, run_ids)
    data = DashboardData(history=history_report(snap), open_findings=items,
                         by_asset=group_by_asset(items, assets or {}), by_threat=group_by_threat(items),
                         targets=sorted(latest))
    _heat(engine, run_ids, items, data)
    data.audit = _audit(engine, target, audit_last, accepted, today)
    return data
