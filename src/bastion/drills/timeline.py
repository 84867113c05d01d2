"""What a drill records: one StepRecord per step (action, outcome, detections) and the playbook answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bastion.findings.redact import Redactor

Outcome = Literal["blocked", "rate-limited", "succeeded", "skipped"]
Answer = Literal["yes", "no", "unknown"]
SYMBOLS = {"yes": "✔", "no": "✘", "unknown": "–"}
# Text kept per alert or audit record in a timeline (enough to recognise it, never a whole page).
MAX_TEXT = 240


@dataclass
class StepRecord:
    """One step as it happened; `alerted`/`audited` are None when Bastion could not observe the channel."""

    step: str
    action: str
    says: str
    expect: list[str]
    did: str = ""
    outcome: Outcome = "skipped"
    reason: str = ""
    alerts: list[str] = field(default_factory=list)
    alerted: bool | None = None
    audit_records: list[str] = field(default_factory=list)
    audited: bool | None = None
    actor_named: bool | None = None
    start_ms: int = 0
    duration_ms: int = 0
    requests: int = 0
    # Facts the playbook reads (e.g. "client_identified"); never secrets.
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def stopped(self) -> bool:
        return self.outcome in ("blocked", "rate-limited")

    def unmet(self) -> list[str]:
        """The expectations this step failed, each with why (skipped steps are not judged)."""
        if self.outcome == "skipped":
            return []
        out = []
        for expect in self.expect:
            if expect == "blocked" and not self.stopped:
                out.append(f"blocked: the step {self.outcome}")
            elif expect == "detected" and not self.stopped and not self.alerted:
                why = "no alert in the step" if self.alerted is False else "no alert channel Bastion can watch"
                out.append(f"detected: the step {self.outcome} and {why}")
            elif expect == "audited" and self.audited is not None and not self.actor_named:
                out.append("audited: " + ("new audit records, none naming the actor" if self.audited
                                          else "no new audit record"))
        return out

    def detected_by(self) -> str:
        """Short text: what noticed the step (rate limit, block, alert, audit), or 'nothing'."""
        parts: list[str] = []
        if self.stopped:
            parts.append(self.outcome)
        if self.alerted:
            parts.append("alert")
        if self.audited:
            parts.append("audit" + ("" if self.actor_named else " (actor not named)"))
        return ", ".join(parts) or ("–" if self.outcome == "skipped" else "nothing")


@dataclass(frozen=True)
class PlaybookAnswer:
    item: str
    question: str
    answer: Answer
    reason: str

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.answer]


@dataclass
class DrillRun:
    """One narrative's run: its timeline and playbook."""

    narrative: str
    title: str
    target: str
    steps: list[StepRecord] = field(default_factory=list)
    playbook: list[PlaybookAnswer] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[tuple[str, str]]:
        """(step, unmet expectation) pairs."""
        return [(s.step, u) for s in self.steps for u in s.unmet()]

    def redacted(self, redactor: Redactor) -> DrillRun:
        """A copy with every text passed through `redactor` (passwords, tokens, cookies masked)."""
        def clean(text: str) -> str:
            return redactor.text(text)[:MAX_TEXT * 4]

        steps = []
        for s in self.steps:
            steps.append(StepRecord(
                step=s.step, action=s.action, says=s.says, expect=list(s.expect), did=clean(s.did),
                outcome=s.outcome, reason=clean(s.reason), alerts=[clean(a)[:MAX_TEXT] for a in s.alerts],
                alerted=s.alerted, audit_records=[clean(a)[:MAX_TEXT] for a in s.audit_records],
                audited=s.audited, actor_named=s.actor_named, start_ms=s.start_ms, duration_ms=s.duration_ms,
                requests=s.requests, facts=dict(s.facts)))
        playbook = [PlaybookAnswer(p.item, p.question, p.answer, clean(p.reason)) for p in self.playbook]
        return DrillRun(self.narrative, self.title, self.target, steps, playbook, list(self.channels))

    def as_dict(self, timed: bool = True) -> dict[str, Any]:
        """JSON shape (bastion-drill-breach/1); `timed=False` leaves out the measured times."""
        steps = []
        for s in self.steps:
            row: dict[str, Any] = {"step": s.step, "action": s.action, "says": s.says, "did": s.did,
                                   "outcome": s.outcome, "reason": s.reason, "alerted": s.alerted,
                                   "alerts": s.alerts, "audited": s.audited, "actor_named": s.actor_named,
                                   "audit_records": s.audit_records, "detected_by": s.detected_by(),
                                   "expect": s.expect, "unmet": s.unmet(), "requests": s.requests}
            if timed:
                row |= {"start_ms": s.start_ms, "duration_ms": s.duration_ms}
            steps.append(row)
        return {"narrative": self.narrative, "title": self.title, "target": self.target,
                "alert_channels": self.channels, "passed": not self.failed, "steps": steps,
                "playbook": [{"item": p.item, "question": p.question, "answer": p.answer, "reason": p.reason}
                             for p in self.playbook]}
