"""The incident-playbook checklist: what responders need after the attack, answered from what the steps saw."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.drills.timeline import Answer, PlaybookAnswer, StepRecord

QUESTIONS = {
    "alert-fired": "Did an alert fire within the credential-stuffing step?",
    "attacker-identifiable": "Was the attacker's client (IP address or session) identifiable?",
    "session-bound": "Was the stolen session refused from another client?",
    "session-revocable": "Can the stolen session be revoked?",
    "export-audited": "Is there an audit record of the export naming the actor?",
    "escalation-blocked": "Was every privilege-escalation attempt blocked?",
    "escalation-alerted": "Did an alert fire on the privilege-escalation attempts?",
    "escalation-audited": "Is there an audit record of the privilege-escalation attempts?",
    "poison-contained": "Was the poisoned message kept from being deserialized?",
    "poison-alerted": "Did an alert fire on the poisoned message?",
}
Judge = Callable[[dict[str, StepRecord], dict[str, Any]], tuple[Answer, str]]


def _ran(steps: dict[str, StepRecord], action: str) -> StepRecord | None:
    step = steps.get(action)
    return step if step is not None and step.outcome != "skipped" else None


def _skipped(steps: dict[str, StepRecord], action: str) -> tuple[Answer, str]:
    step = steps.get(action)
    return "unknown", f"the {action} step did not run" + (f": {step.reason}" if step is not None else "")


def _alert(step: StepRecord | None, steps: dict[str, StepRecord], action: str) -> tuple[Answer, str]:
    if step is None:
        return _skipped(steps, action)
    if step.alerted is None:
        return "unknown", "no alert channel Bastion can watch (declare `alerts:` in the model)"
    if step.alerted:
        return "yes", step.alerts[0]
    return "no", f"no alert while the step ran ({step.did})"


def _audit(records: list[StepRecord]) -> tuple[Answer, str]:
    if not records:
        return "unknown", "the steps did not run"
    if all(r.audited is None for r in records):
        return "unknown", "no audit trail Bastion can read (declare `audit:` in the model)"
    named = [a for r in records if r.actor_named for a in r.audit_records]
    if named:
        return "yes", named[0]
    if any(r.audited for r in records):
        return "no", "new records, but none names the actor: " + next(a for r in records for a in r.audit_records)
    return "no", "no new audit record while the steps ran"


def alert_fired(steps: dict[str, StepRecord], facts: dict[str, Any]) -> tuple[Answer, str]:
    return _alert(_ran(steps, "credential-stuffing"), steps, "credential-stuffing")


def attacker_identifiable(steps: dict[str, StepRecord], facts: dict[str, Any]) -> tuple[Answer, str]:
    step = _ran(steps, "credential-stuffing")
    if step is None:
        return _skipped(steps, "credential-stuffing")
    if step.alerted is None and step.audited is None:
        return "unknown", "neither alerts nor an audit trail Bastion can read"
    if step.facts.get("client_identified"):
        return "yes", f"an alert or audit record names the client: {step.facts['client_identified']}"
    return "no", "no alert or new audit record names the client's address or session"


def session_bound(steps: dict[str, StepRecord], facts: dict[str, Any]) -> tuple[Answer, str]:
    step = _ran(steps, "session-reuse")
    if step is None:
        return _skipped(steps, "session-reuse")
    return ("yes", step.reason) if step.stopped else ("no", f"{step.did}: {step.reason}")


def session_revocable(steps: dict[str, StepRecord], facts: dict[str, Any]) -> tuple[Answer, str]:
    revoked = facts.get("revoked")
    if revoked is None:
        return "unknown", "no logout entry point to end the stolen session with, or no session was stolen"
    if revoked:
        return "yes", f"after {facts.get('logout')} the stolen session is refused"
    return "no", f"after {facts.get('logout')} the stolen session still works"


def export_audited(steps: dict[str, StepRecord], facts: dict[str, Any]) -> tuple[Answer, str]:
    step = _ran(steps, "data-export")
    return _audit([step]) if step is not None else _skipped(steps, "data-export")


def _escalations(steps: dict[str, StepRecord]) -> list[StepRecord]:
    return [s for s in (_ran(steps, "admin-calls"), _ran(steps, "role-change")) if s is not None]


def escalation_blocked(steps: dict[str, StepRecord], facts: dict[str, Any]) -> tuple[Answer, str]:
    ran = _escalations(steps)
    if not ran:
        return _skipped(steps, "admin-calls")
    through = [s for s in ran if not s.stopped]
    return ("no", "; ".join(s.reason for s in through)) if through else ("yes", "; ".join(s.reason for s in ran))


def escalation_alerted(steps: dict[str, StepRecord], facts: dict[str, Any]) -> tuple[Answer, str]:
    ran = _escalations(steps)
    if not ran:
        return _skipped(steps, "admin-calls")
    alerted = next((s for s in ran if s.alerted), None)
    return _alert(alerted or ran[0], steps, ran[0].action)


def escalation_audited(steps: dict[str, StepRecord], facts: dict[str, Any]) -> tuple[Answer, str]:
    return _audit(_escalations(steps))


def poison_contained(steps: dict[str, StepRecord], facts: dict[str, Any]) -> tuple[Answer, str]:
    step = _ran(steps, "poison-message")
    if step is None:
        return _skipped(steps, "poison-message")
    return ("yes", step.reason) if step.stopped else ("no", step.reason)


def poison_alerted(steps: dict[str, StepRecord], facts: dict[str, Any]) -> tuple[Answer, str]:
    return _alert(_ran(steps, "poison-message"), steps, "poison-message")


JUDGES: dict[str, Judge] = {
    "alert-fired": alert_fired, "attacker-identifiable": attacker_identifiable, "session-bound": session_bound,
    "session-revocable": session_revocable, "export-audited": export_audited,
    "escalation-blocked": escalation_blocked, "escalation-alerted": escalation_alerted,
    "escalation-audited": escalation_audited, "poison-contained": poison_contained, "poison-alerted": poison_alerted,
}


def answer_playbook(items: list[str], steps: list[StepRecord], facts: dict[str, Any]) -> list[PlaybookAnswer]:
    """One answer per playbook item of the narrative."""
    by_action = {s.action: s for s in steps}
    out = []
    for item in items:
        answer, reason = JUDGES[item](by_action, facts)
        out.append(PlaybookAnswer(item, QUESTIONS[item], answer, reason))
    return out
