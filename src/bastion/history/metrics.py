"""History metrics: pure functions over a snapshot read from the store (no clock, no I/O)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from bastion.findings.model import Severity
from bastion.history.schema import findings, run_checks, run_findings, runs

HISTORY_SCHEMA = "bastion-history/1"
SEVERITIES = [s.value for s in Severity]  # critical first
DAY_S = 86400.0


@dataclass(frozen=True)
class RunRow:
    id: int
    started_at: str
    target: str
    duration_s: float
    requests: int
    status: str


@dataclass(frozen=True)
class FindingRow:
    target: str
    fingerprint: str
    severity: str
    first_seen: str
    fixed_at: str | None
    state: str
    reopen_count: int


@dataclass(frozen=True)
class HistorySnapshot:
    """The rows metrics need: selected runs (oldest first) and what they saw."""

    runs: list[RunRow]
    seen: list[tuple[int, str, str]]  # (run id, severity, state in that run)
    findings: list[FindingRow]  # every finding of the selected targets
    checks: list[tuple[int, str, float, int]]  # (run id, check id, duration_s, requests)


def load_snapshot(engine: Engine, *, target: str | None = None, last: int | None = None) -> HistorySnapshot:
    """Read the runs (optionally of one target, optionally only the last N) and their rows."""
    query = select(runs.c.id, runs.c.started_at, runs.c.target, runs.c.duration_s, runs.c.requests,
                   runs.c.status).order_by(runs.c.started_at.desc(), runs.c.id.desc())
    if target is not None:
        query = query.where(runs.c.target == target)
    if last is not None:
        query = query.limit(last)
    with engine.connect() as conn:
        selected = [RunRow(*row) for row in conn.execute(query)][::-1]
        ids = [r.id for r in selected]
        targets = sorted({r.target for r in selected})
        seen = [tuple(row) for row in conn.execute(
            select(run_findings.c.run_id, findings.c.severity, run_findings.c.state)
            .join(findings, findings.c.id == run_findings.c.finding_id)
            .where(run_findings.c.run_id.in_(ids)))] if ids else []
        rows = [FindingRow(*row) for row in conn.execute(
            select(findings.c.target, findings.c.fingerprint, findings.c.severity, findings.c.first_seen,
                   findings.c.fixed_at, findings.c.state, findings.c.reopen_count)
            .where(findings.c.target.in_(targets)))] if targets else []
        checks = [tuple(row) for row in conn.execute(
            select(run_checks.c.run_id, run_checks.c.check_id, run_checks.c.duration_s, run_checks.c.requests)
            .where(run_checks.c.run_id.in_(ids)))] if ids else []
    return HistorySnapshot(runs=selected, seen=seen, findings=rows, checks=checks)  # type: ignore[arg-type]


def open_by_severity(snap: HistorySnapshot) -> list[dict[str, Any]]:
    """Per run (oldest first): findings present in that run, by severity."""
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for run_id, severity, _state in snap.seen:
        counts[run_id][severity] += 1
    out = []
    for run in snap.runs:
        by_sev = {sev: counts[run.id][sev] for sev in SEVERITIES}
        out.append({"run_id": run.id, "started_at": run.started_at, "target": run.target, **by_sev,
                    "total": sum(by_sev.values())})
    return out


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def time_to_fix(snap: HistorySnapshot) -> dict[str, dict[str, Any]]:
    """Mean and median days from first seen to fixed, by severity, over findings fixed now."""
    durations: dict[str, list[float]] = defaultdict(list)
    window_start = snap.runs[0].started_at if snap.runs else ""
    for f in snap.findings:
        if f.state == "fixed" and f.fixed_at and f.fixed_at >= window_start:
            durations[f.severity].append(_seconds_between(f.first_seen, f.fixed_at) / DAY_S)
    return {sev: {"fixed": len(durations[sev]),
                  "mean_days": round(statistics.fmean(durations[sev]), 3) if durations[sev] else None,
                  "median_days": round(statistics.median(durations[sev]), 3) if durations[sev] else None}
            for sev in SEVERITIES}


def iso_week(timestamp: str) -> str:
    """`2026-W48` for an ISO 8601 timestamp."""
    year, week, _ = datetime.fromisoformat(timestamp).isocalendar()
    return f"{year}-W{week:02d}"


def discovery_rate(snap: HistorySnapshot) -> dict[str, Any]:
    """New findings per run and per ISO week, and the mean per run."""
    new_per_run: Counter[int] = Counter(run_id for run_id, _sev, state in snap.seen if state == "new")
    per_run = [{"run_id": r.id, "started_at": r.started_at, "new": new_per_run[r.id]} for r in snap.runs]
    per_week: Counter[str] = Counter()
    for r in snap.runs:
        per_week[iso_week(r.started_at)] += new_per_run[r.id]
    mean = statistics.fmean(new_per_run[r.id] for r in snap.runs) if snap.runs else 0.0
    return {"per_run": per_run, "per_week": dict(sorted(per_week.items())), "mean_per_run": round(mean, 3)}


def reopen_rate(snap: HistorySnapshot) -> dict[str, Any]:
    """Share of fixes that did not last: reopen events / fix events (each reopen follows a fix)."""
    reopens = sum(f.reopen_count for f in snap.findings)
    fixes = reopens + sum(1 for f in snap.findings if f.state == "fixed")
    in_window = sum(1 for _run, _sev, state in snap.seen if state == "reopened")
    return {"reopened": reopens, "fixes": fixes, "rate": round(reopens / fixes, 3) if fixes else 0.0,
            "reopened_in_selected_runs": in_window}


def run_costs(snap: HistorySnapshot) -> list[dict[str, Any]]:
    """Duration and request count of every selected run."""
    return [{"run_id": r.id, "started_at": r.started_at, "target": r.target, "status": r.status,
             "duration_s": round(r.duration_s, 3), "requests": r.requests} for r in snap.runs]


def check_costs(snap: HistorySnapshot) -> dict[str, dict[str, Any]]:
    """Per check: how many runs it ran in, mean duration and mean requests."""
    grouped: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for _run, check_id, duration, requests in snap.checks:
        grouped[check_id].append((duration, requests))
    return {cid: {"runs": len(vals), "mean_duration_s": round(statistics.fmean(d for d, _ in vals), 3),
                  "mean_requests": round(statistics.fmean(r for _, r in vals), 3)}
            for cid, vals in sorted(grouped.items())}


def history_report(snap: HistorySnapshot) -> dict[str, Any]:
    """Every metric as one JSON-ready document (`bastion history --format json`)."""
    return {"schema": HISTORY_SCHEMA, "runs": run_costs(snap), "open_by_severity": open_by_severity(snap),
            "time_to_fix": time_to_fix(snap), "discovery": discovery_rate(snap), "reopen": reopen_rate(snap),
            "checks": check_costs(snap)}
