"""Recording a finished scan: one transaction per run, finding states maintained across runs."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, text, update

from bastion import __version__
from bastion.engine.runner import ScanResult
from bastion.findings.model import Finding
from bastion.history.coverage import check_threats, unit_rows, units_of_run
from bastion.history.schema import findings, run_checks, run_findings, run_units, runs
from bastion.history.store import display_url, open_store, resolve_db_url, write_transaction

# At most this many evidence summaries per finding per run: the history is for tracking, not proof.
EVIDENCE_SUMMARIES = 10
OPEN_STATES = ("new", "persisting", "reopened", "accepted")


@dataclass
class RunSummary:
    """What one recorded run changed: fingerprints by state (each list sorted)."""

    run_id: int
    target: str
    new: list[str] = field(default_factory=list)
    persisting: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {"new": len(self.new), "persisting": len(self.persisting), "fixed": len(self.fixed),
                "reopened": len(self.reopened), "accepted": len(self.accepted)}


def utc_iso(moment: datetime) -> str:
    """One timestamp format for the whole store, so string order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def run_started(result: ScanResult) -> datetime:
    """The run's start time; a naive or unparsable timestamp counts as UTC / now."""
    try:
        moment = datetime.fromisoformat(result.started_at)
    except (TypeError, ValueError):
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def git_commit() -> str | None:
    """`git rev-parse HEAD` of the working directory, or None outside a repository."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) in (40, 64) and commit.isalnum() else None


def run_status(result: ScanResult) -> str:
    """complete, partial (budget stopped the run) or errors (a check raised)."""
    if any(c.errors for c in result.checks):
        return "errors"
    return "partial" if result.events else "complete"


def target_key(result: ScanResult) -> str:
    return result.target.identity


def _finding_values(f: Finding, at: str) -> dict[str, Any]:
    return {"check_id": f.check_id, "threat_id": f.threat_id, "title": f.title, "severity": f.severity.value,
            "confidence": f.confidence.value, "last_seen": at,
            "location": json.dumps(f.location.model_dump(mode="json", by_alias=True, exclude_none=True),
                                   sort_keys=True)}


def _evidence(f: Finding) -> str:
    return json.dumps([{"kind": e.kind, "summary": e.summary} for e in f.evidence[:EVIDENCE_SUMMARIES]])


def target_lock_key(target: str) -> int:
    """A signed 64-bit advisory-lock key for one target (stable across processes and machines)."""
    return int.from_bytes(hashlib.sha256(target.encode()).digest()[:8], "big", signed=True)


def _write_run(conn: Connection, result: ScanResult, config_hash: str | None, commit: str | None,
               accepted: Collection[str], threats: dict[str, str]) -> RunSummary:
    target = target_key(result)
    if conn.dialect.name == "postgresql":
        # Runs of one target are serialized (their states build on each other); other targets write at once.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": target_lock_key(target)})
    started = run_started(result)
    at = utc_iso(started)
    inserted = conn.execute(insert(runs).values(
        started_at=at, finished_at=utc_iso(started + timedelta(seconds=result.duration_s)), target=target,
        config_hash=config_hash, git_commit=commit, seed=result.seed, tool_version=__version__,
        duration_s=result.duration_s, requests=result.requests, status=run_status(result),
    )).inserted_primary_key
    assert inserted is not None  # every dialect returns the new id of a single-row insert
    run_id = int(inserted[0])
    checks = {c.check_id: c for c in result.checks}
    if checks:
        conn.execute(insert(run_checks), [
            {"run_id": run_id, "check_id": c.check_id, "duration_s": c.duration_s, "requests": c.requests,
             "units": len(c.units), "errors": len(c.errors)} for c in checks.values()])
    units = unit_rows(run_id, units_of_run(result), threats)
    if units:
        conn.execute(insert(run_units), units)
    known = {row.fingerprint: row for row in conn.execute(
        select(findings.c.id, findings.c.fingerprint, findings.c.state, findings.c.check_id,
               findings.c.reopen_count).where(findings.c.target == target))}
    current = {f.fingerprint: f for f in result.findings}
    summary = RunSummary(run_id=run_id, target=target)
    states: dict[str, str] = {}
    fresh: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for fp, f in current.items():
        row = known.get(fp)
        if fp in accepted:
            state = "accepted"
        elif row is None:
            state = "new"
        elif row.state == "fixed":
            state = "reopened"
        else:
            state = "persisting"
        states[fp] = state
        getattr(summary, state).append(fp)
        values = _finding_values(f, at) | {"state": state}
        if row is None:
            fresh.append(values | {"target": target, "fingerprint": fp, "first_seen": at, "fixed_at": None})
        else:
            reopens = row.reopen_count + (1 if row.state == "fixed" else 0)
            changed.append(values | {"row_id": row.id, "fixed_at": None, "reopen_count": reopens})
    if fresh:
        conn.execute(insert(findings), fresh)
    if changed:
        conn.execute(update(findings).where(findings.c.id == bindparam("row_id")), changed)
    # Fixed: open before, absent now, and its check ran this time (a check that did not run proves nothing).
    gone = [row for fp, row in known.items()
            if fp not in current and row.state in OPEN_STATES and row.check_id in checks]
    if gone:
        conn.execute(update(findings).where(findings.c.id == bindparam("row_id")),
                     [{"row_id": row.id, "state": "fixed", "fixed_at": at} for row in gone])
        summary.fixed = [row.fingerprint for row in gone]
    if current:
        ids = {fp: fid for fid, fp in conn.execute(
            select(findings.c.id, findings.c.fingerprint).where(findings.c.target == target))}
        conn.execute(insert(run_findings), [
            {"run_id": run_id, "finding_id": ids[fp], "fingerprint": fp, "state": states[fp],
             "evidence": _evidence(f)} for fp, f in current.items()])
    for name in ("new", "persisting", "fixed", "reopened", "accepted"):
        getattr(summary, name).sort()
    return summary


def record_run(result: ScanResult, *, db_url: str | None = None, config_hash: str | None = None,
               accepted: Collection[str] = (), engine: Engine | None = None) -> RunSummary:
    """Write a finished run and its findings in one transaction; return what changed since before.

    `accepted` holds fingerprints suppressed or baselined for this run (state "accepted").
    `engine` reuses an engine from `open_store` (else the store at `db_url` is opened and closed).
    """
    own = engine is None
    store = engine if engine is not None else open_store(db_url)
    commit = git_commit()
    accepted_set = frozenset(accepted)
    threats = check_threats(result)
    try:
        return write_transaction(store, lambda conn: _write_run(conn, result, config_hash, commit, accepted_set,
                                                                threats),
                                 shown=display_url(resolve_db_url(db_url)) if own else str(store.url))
    finally:
        if own:
            store.dispose()
