"""Run narratives step by step: each step inside a window where alerts and new audit records are collected.

`run_narrative(ctx, narrative, watch)` works on a check context (the scan's check uses it);
`run_breach_drills(plan, narratives)` builds that context itself for `bastion drill breach`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bastion.drills.actions import ACTIONS, CLIENT_MARKERS, AuditTrail, DrillState, names_actor, revoke_stolen
from bastion.drills.alerts import AlertWatch
from bastion.drills.narratives import Narrative
from bastion.drills.playbook import answer_playbook
from bastion.drills.timeline import DrillRun, StepRecord
from bastion.engine.context import CheckContext
from bastion.errors import BastionError
from bastion.findings.redact import Redactor

CHECK_ID = "drills.credential-stuffing-undetected"
# Audit records kept per step in the timeline.
MAX_RECORDS = 5


def drills_allowed(target: Any, config: Any) -> bool:
    """Breach drills only against in-process targets or URL targets marked `allow_destructive: true`."""
    return bool(target.in_process or (config is not None and config.target.allow_destructive))


async def _run_step(ctx: CheckContext, st: DrillState, trail: AuditTrail | None, rec: StepRecord) -> None:
    before = set(await trail.records() or []) if trail is not None else set()
    mark = st.watch.mark()
    requests = ctx.stats.requests
    await ACTIONS[rec.action](ctx, st, rec)
    rec.requests = ctx.stats.requests - requests
    if rec.outcome == "skipped":
        return
    rec.alerts = st.watch.since(mark)
    rec.alerted = bool(rec.alerts) if st.watch.observable else None
    if trail is not None:
        after = await trail.records()
        if after is not None:
            new = [r for r in after if r not in before]
            naming = [r for r in new if names_actor(r, st.actors)]
            rec.audited, rec.actor_named = bool(new), bool(naming)
            rec.audit_records = (naming or new)[:MAX_RECORDS]
    seen = [*rec.alerts, *rec.audit_records]
    marker = next((m for m in CLIENT_MARKERS if any(m in text for text in seen)), None)
    rec.facts["client_identified"] = marker


async def run_narrative(ctx: CheckContext, narrative: Narrative, watch: AlertWatch, *,
                        secrets: set[str] | None = None) -> DrillRun:
    """Run every step of `narrative` in order; the target is reset after state-changing steps."""
    audit = getattr(ctx.config, "audit", None)
    trail = AuditTrail(ctx, audit) if audit is not None else None
    st = DrillState(watch=watch)
    run = DrillRun(narrative.id, narrative.title, ctx.target.spec or ctx.target.base_url, channels=watch.channels())
    t0 = time.perf_counter()
    try:
        for step in narrative.steps:
            rec = StepRecord(step=step.id, action=step.action, says=step.says, expect=list(step.expect))
            started = time.perf_counter()
            rec.start_ms = int((started - t0) * 1000)
            await _run_step(ctx, st, trail, rec)
            rec.duration_ms = int((time.perf_counter() - started) * 1000)
            run.steps.append(rec)
        if "session-revocable" in narrative.playbook:
            st.facts["revoked"] = await revoke_stolen(ctx, st)
    finally:
        if st.wrote or st.relogin:
            await ctx.reset(relogin=sorted(st.relogin))
    run.playbook = answer_playbook(list(narrative.playbook), run.steps, st.facts)
    role_secrets = {v for s in ctx.roles.values() for v in s.secret_values()}
    config_secrets = ctx.config.secret_values() if ctx.config is not None else set()
    return run.redacted(Redactor([*st.secrets, *role_secrets, *config_secrets, *(secrets or ())]))


@asynccontextmanager
async def _sensing(target: Any, scope_hosts: list[str]) -> AsyncIterator[Any]:
    """The grey-box sensors around an in-process target (None for URL targets)."""
    if not target.in_process:
        yield None
        return
    import httpx

    from bastion.sensors import SensorSession, app_roots, egress_allowlist, sensor_session

    host = httpx.URL(target.base_url).host
    session = SensorSession(app_roots(target.app, target.spec), allowed_hosts=egress_allowlist([host, *scope_hosts]))
    with sensor_session(session):
        yield session


async def _run_plan(plan: Any, narratives: list[Narrative]) -> list[DrillRun]:
    from bastion.checks.registry import load_checks
    from bastion.engine.context import CheckStats
    from bastion.engine.writes import WritePolicy
    from bastion.payloads import load_payloads
    from bastion.payloads.canary import seeded_rng
    from bastion.target.budget import Budget
    from bastion.target.client import ProbeClient
    from bastion.target.scope import Scope

    target, options = plan.target, plan.options
    hosts = [*target.scope_hosts, *options.scope_hosts]
    scope = Scope.for_base_url(target.base_url, hosts, options.exclude_paths)
    runs = []
    async with _sensing(target, hosts) as sensors, target.running():
        async with ProbeClient(target, scope, options.limits, Budget(options.limits)) as client:
            ctx = CheckContext(spec=load_checks()[CHECK_ID], client=client, surface=plan.surface,
                               payloads=load_payloads(), rng=seeded_rng(options.seed, "drill", "breach"),
                               stats=CheckStats("drill.breach"), roles=options.roles, access=options.access,
                               sensors=sensors, role_configs=options.role_configs, config=options.config,
                               writes=options.writes or WritePolicy.resolve("auto", in_process=target.in_process))
            alerts = getattr(options.config, "alerts", None)
            with AlertWatch(alerts, target) as watch:
                for narrative in narratives:
                    runs.append(await run_narrative(ctx, narrative, watch, secrets=set(options.secrets)))
    return runs


def run_breach_drills(plan: Any, narratives: list[Narrative]) -> list[DrillRun]:
    """Run the narratives against a planned target (blocking); BastionError when drills are not allowed."""
    if not drills_allowed(plan.target, plan.config):
        raise BastionError("breach drills run only against in-process targets or URL targets marked "
                           "`target.allow_destructive: true` in the model")
    return asyncio.run(_run_plan(plan, narratives))
