"""Backup and recovery drill checks for the model's `data_stores:` (see bastion.backup).

backup.stale (no backup / older than the RPO), backup.unencrypted (plaintext where the model requires
encryption) and backup.restore (restore, integrity, data match, RTO). Each runs only the drill steps it
needs, in a worker thread; the live store is read-only and scratch copies are removed. Findings are
located at `data_stores.<name>` and carry the measured numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bastion.backup.drill import DrillReport, run_drill
from bastion.backup.stores import StoreSpec, resolve_stores
from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.errors import BastionError
from bastion.findings.evidence import note
from bastion.findings.model import Confidence, Finding, Location


def _stores(ctx: CheckContext) -> list[StoreSpec]:
    if not getattr(ctx.config, "data_stores", None):
        ctx.skip("the model declares no data_stores")
        return []
    try:
        return resolve_stores(ctx.config, ctx.target.app if ctx.target.in_process else None)
    except BastionError as exc:
        ctx.skip(str(exc))
        return []


def _findings(ctx: CheckContext, report: DrillReport, threat: str) -> list[Finding]:
    problems = report.of(threat)
    if report.skipped:
        ctx.skip("; ".join(report.skipped))
    if not problems:
        return []
    timed = threat != "backup.unencrypted"  # durations are the point of the other two, noise in this one
    measured = "\n".join(f"{what}: {value}" for what, value in report.measurements(timed=timed))
    severity = next((p.severity for p in problems if p.severity), None)
    return [ctx.finding(title="; ".join(p.title for p in problems), confidence=Confidence.confirmed,
                        severity=severity, location=Location(file=f"data_stores.{report.store.name}"),
                        evidence=[*(note(p.title, p.detail) for p in problems), note("drill measurements", measured)])]


async def _drill(ctx: CheckContext, threat: str, steps: tuple[str, ...]) -> list[Finding]:
    out: list[Finding] = []
    for store in _stores(ctx):
        report = await asyncio.to_thread(run_drill, store, steps)
        out += _findings(ctx, report, threat)
    return out


@check(id="backup.stale", threat="backup.stale", scope="target")
async def backup_stale(ctx: CheckContext) -> AsyncIterator[Finding]:
    """No backup of a declared store, or the newest is older than its RPO. Bound: one glob per store."""
    for finding in await _drill(ctx, "backup.stale", ("freshness",)):
        yield finding


@check(id="backup.unencrypted", threat="backup.unencrypted", scope="target")
async def backup_unencrypted(ctx: CheckContext) -> AsyncIterator[Finding]:
    """The newest backup is plaintext although the model requires encryption. Bound: one file read per store."""
    for finding in await _drill(ctx, "backup.unencrypted", ("freshness", "encryption")):
        yield finding


@check(id="backup.restore", threat="backup.restore", scope="target")
async def backup_restore(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Restore into scratch, integrity check, compare with the live data, time it. Bound: one restore per store."""
    for finding in await _drill(ctx, "backup.restore", ("freshness", "encryption", "restore")):
        yield finding
