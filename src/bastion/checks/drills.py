"""Breach drills in the scan: the catalog's narratives run against the target, judged by detection.

drills.credential-stuffing-undetected: leaked pairs (19 matching no account, then a role's real pair)
against the role's login; when the real pair logs in with no rate limit, no block and no alert on the
model's `alerts:` channels, the finding carries the drill's timeline and playbook as evidence.
drills.privilege-escalation-undetected ("leaked API key"): a low-privilege role's credential calls the
entry points the access policy keeps from it and sends role-changing updates; drills.poisoned-message-
undetected: a pickle canary published to the consumer's queue. Either is a finding when a step succeeded
and was neither blocked, nor alerted on, nor audited with its actor. These findings are about detection:
the hole itself is also reported by the authz/queues checks under their own ids.
All drills run only against in-process targets or URL targets marked `allow_destructive: true`, are
bounded (constants in bastion/drills/actions.py) and reset the target after their writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.drills.alerts import AlertWatch
from bastion.drills.narratives import load_narratives
from bastion.drills.runner import CHECK_ID, drills_allowed, run_narrative
from bastion.drills.timeline import SYMBOLS, DrillRun, StepRecord
from bastion.engine.context import CheckContext
from bastion.findings.evidence import note
from bastion.findings.model import Confidence, Evidence, Finding

NARRATIVE = "credential-stuffing"
ESCALATION_ID = "drills.privilege-escalation-undetected"
POISON_ID = "drills.poisoned-message-undetected"


def _timeline_evidence(run: DrillRun) -> list[Evidence]:
    """The timeline and playbook as evidence (step order, not times: findings stay byte-identical per seed)."""
    rows = [f"{i}. {s.step}: {s.did or s.says} -> {s.outcome}" + (f" ({s.reason})" if s.reason else "")
            + f"; detected by: {s.detected_by()}" for i, s in enumerate(run.steps, 1)]
    # Answers without their reasons: those quote audit records, whose ids follow earlier checks' traffic.
    checklist = [f"{SYMBOLS[p.answer]} {p.question}" for p in run.playbook]
    return [note("breach-drill timeline", "\n".join(rows)),
            note("incident-playbook checklist", "\n".join(checklist)),
            note("alert channels watched", ", ".join(run.channels))]


@check(id=CHECK_ID, threat=CHECK_ID, scope="target", shard="check", cost=60.0, needs=("alerts",))
async def credential_stuffing_undetected(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Run the credential-stuffing narrative; a successful, unblocked, unalerted stuffing step is a finding."""
    alerts = getattr(ctx.config, "alerts", None)
    if alerts is None:
        ctx.skip("the model declares no alert channel (alerts:): detection cannot be judged")
        return
    if not drills_allowed(ctx.target, ctx.config):
        ctx.skip("breach drills need an in-process target or `target.allow_destructive: true`")
        return
    with AlertWatch(alerts, ctx.target) as watch:
        if not watch.observable:
            ctx.skip("no alert channel Bastion can watch on this target (log alerts need an in-process target)")
            return
        run = await run_narrative(ctx, load_narratives()[NARRATIVE], watch)
    stuffing = next((s for s in run.steps if s.action == "credential-stuffing"), None)
    if stuffing is None or stuffing.outcome == "skipped":
        ctx.skip(f"credential stuffing not run: {stuffing.reason if stuffing else 'no such step'}")
        return
    if stuffing.outcome != "succeeded" or stuffing.alerted:
        return
    method, _, path = stuffing.did.partition(" ")
    yield ctx.finding(title="Credential stuffing logged in with no rate limit, block or alert",
                      confidence=Confidence.confirmed, evidence=_timeline_evidence(run),
                      location=ctx.location(method=method, path=path.split(" ", 1)[0]))


def _undetected(step: StepRecord) -> bool:
    """A step that got through with no block, no alert and no audit record naming the attacker."""
    return step.outcome == "succeeded" and not step.alerted and not step.actor_named


def _detection_unjudgeable(ctx: CheckContext) -> str | None:
    """Why detection cannot be judged here (no channel, or drills not allowed); None when it can."""
    if getattr(ctx.config, "alerts", None) is None and getattr(ctx.config, "audit", None) is None:
        return "the model declares neither alert channels (alerts:) nor an audit trail (audit:)"
    if not drills_allowed(ctx.target, ctx.config):
        return "breach drills need an in-process target or `target.allow_destructive: true`"
    return None


async def _run_detection_drill(ctx: CheckContext, narrative: str) -> DrillRun | None:
    """Run `narrative` with the alert channels watched; None (with a skip reason) when it cannot be judged."""
    reason = _detection_unjudgeable(ctx)
    if reason is not None:
        ctx.skip(reason)
        return None
    with AlertWatch(getattr(ctx.config, "alerts", None), ctx.target) as watch:
        if not watch.observable and getattr(ctx.config, "audit", None) is None:
            ctx.skip("no alert channel Bastion can watch on this target, and no audit trail")
            return None
        return await run_narrative(ctx, load_narratives()[narrative], watch)


def _drill_finding(ctx: CheckContext, run: DrillRun, step: StepRecord, title: str) -> Finding:
    where: list[Any] = step.facts.get("entry_points") or []
    method, _, path = (where[0] if where else " ").partition(" ")
    finding = ctx.finding(title=title, confidence=Confidence.confirmed, evidence=_timeline_evidence(run),
                          location=ctx.location(method=method or None, path=path or None))
    role = step.facts.get("role")
    return finding.model_copy(update={"role": role}) if isinstance(role, str) else finding


@check(id=ESCALATION_ID, threat=ESCALATION_ID, scope="target", shard="check", cost=40.0, needs=("alerts",))
async def privilege_escalation_undetected(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Run the leaked-key narrative; an escalation step that got through unblocked, unalerted, unaudited."""
    run = await _run_detection_drill(ctx, "leaked-key")
    if run is None:
        return
    ran = [s for s in run.steps if s.outcome != "skipped"]
    if not ran:
        ctx.skip("no escalation step ran: " + "; ".join(f"{s.step}: {s.reason}" for s in run.steps))
        return
    step = next((s for s in ran if _undetected(s)), None)
    if step is not None:
        what = "role change accepted" if step.action == "role-change" else "privileged entry point reached"
        yield _drill_finding(ctx, run, step, f"Privilege escalation with a leaked credential went undetected "
                                             f"({what}; no block, alert or audit record)")


@check(id=POISON_ID, threat=POISON_ID, scope="target", shard="check", cost=40.0,
       needs=("queue", "alerts"))
async def poisoned_message_undetected(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Run the poisoned-message narrative; a deserialized canary with no alert or audit record is a finding."""
    run = await _run_detection_drill(ctx, "poisoned-message")
    if run is None:
        return
    step = next((s for s in run.steps if s.action == "poison-message"), None)
    if step is None or step.outcome == "skipped":
        ctx.skip(f"poisoned message not run: {step.reason if step else 'no such step'}")
        return
    if _undetected(step):
        yield _drill_finding(ctx, run, step, "Poisoned queue message executed code undetected "
                                             "(no block, alert or audit record)")
