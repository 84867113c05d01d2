"""privacy.pii-in-mail: what the app mails must not carry passwords, full card numbers or other users' data.

Runs when the target is wired to Bastion's SMTP outbox double (a dependency `kind: smtp, double: true`).
The shared exercise pass (bastion.sensors.exercise: a sign-up with a made-up identity, then every form
once, e.g. a password reset for the same address) makes the app send its mail; every message the
outbox captured during the scan so far is then read. The oracle is kept crisp: a reset mail with a
reset link is fine; a message holding a password (a configured role's, or the one the sign-up chose),
a Luhn-valid card number, or the e-mail address of another configured account or of the sign-up
identity, sent to someone else, is a finding. Values are never shown unmasked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from bastion.checks.audit_trail import _configured_passwords
from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import note
from bastion.findings.model import Confidence, Finding, Location
from bastion.findings.redact import Redactor
from bastion.privacy.detectors import find_pii, mask_value
from bastion.privacy.records import mentions, role_identity
from bastion.resilience.wiring import doubles_for
from bastion.sensors.exercise import Exercise, exercise

MAX_MESSAGES = 200


@dataclass(frozen=True)
class Leak:
    """One problem in one message: what leaked (a label) and the value (never shown)."""

    what: str
    value: str
    kind: str


def _outboxes(ctx: CheckContext) -> list[object]:
    wired = doubles_for(ctx.target)
    return [w.double for w in wired.deps.values() if w.kind == "smtp"] if wired is not None else []


def _passwords(ctx: CheckContext, run: Exercise) -> set[str]:
    """Configured role passwords and the one the exercise pass signed up with."""
    return _configured_passwords(ctx) | {run.identity.password}


def _accounts(ctx: CheckContext, run: Exercise) -> set[str]:
    """E-mail addresses of the configured accounts and of the sign-up identity."""
    names = {n for c in ctx.role_configs.values() for n in role_identity(c)} | {run.identity.email}
    return {n for n in names if "@" in n}


def _leaks(body: str, recipients: set[str], passwords: set[str], accounts: set[str]) -> list[Leak]:
    leaks = [Leak("a password", p, "password") for p in sorted(passwords) if p in body]
    leaks += [Leak("a full card number", m.value, m.kind) for m in find_pii(body, {"card_number"})]
    leaks += [Leak("another user's e-mail address", a, "email") for a in sorted(accounts)
              if a.lower() not in recipients and mentions(body, a)]
    return leaks


@check(id="privacy.pii-in-mail", threat="privacy.pii-in-mail", scope="target", needs=("smtp",))
async def pii_in_mail(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Read every message the app sent to the SMTP outbox double: passwords, cards, other users' addresses."""
    outboxes = _outboxes(ctx)
    if not outboxes:
        ctx.skip("the target is not wired to Bastion's SMTP outbox (dependency kind: smtp, double: true)")
        return
    run = await exercise(ctx)
    passwords, accounts = _passwords(ctx, run), _accounts(ctx, run)
    redact = Redactor(passwords)
    seen: set[tuple[str, str]] = set()
    for outbox in outboxes:
        for message in outbox.messages[:MAX_MESSAGES]:  # type: ignore[attr-defined]
            body = "\n".join((message.subject, message.text, message.html))
            recipients = {r.lower() for r in message.recipients}
            for leak in _leaks(body, recipients, passwords, accounts):
                key = (leak.what, message.subject)
                if key not in seen:
                    seen.add(key)
                    yield _finding(ctx, run, message, leak, redact)


def _location(run: Exercise, recipients: tuple[str, ...]) -> Location:
    """The entry point whose request carried a recipient's address (the pass's sign-ups), else the outbox."""
    for sent in run.sent:
        request = str(sent.spec.kwargs()).lower()
        if any("@" in r and r.lower() in request for r in recipients):
            return Location(method=sent.ep.method, path=sent.ep.path)
    return Location(file="mail (SMTP outbox)")


def _finding(ctx: CheckContext, run: Exercise, message: object, leak: Leak, redact: Redactor) -> Finding:
    subject = str(getattr(message, "subject", ""))
    recipients: tuple[str, ...] = getattr(message, "recipients", ())
    shown = "***" if leak.kind == "password" else mask_value(leak.kind, leak.value)
    body = Redactor([leak.value]).text(redact.text(str(getattr(message, "body", ""))[:600]))
    return ctx.finding(title=f"Mail '{subject[:60]}' carries {leak.what}", confidence=Confidence.confirmed,
                       location=_location(run, recipients),
                       evidence=[note("value found in the mail (masked)", f"{leak.kind}: {shown}"),
                                 note("message body (masked)", body)])
