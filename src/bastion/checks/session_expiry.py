"""Idle and absolute session expiry, judged by moving the in-process app's clock forward.

For each kind of session the roles hold (cookie session, bearer token), a fresh login of one role is
made and a members page it reaches is found. Then, with `time-machine` shifting `time.time` and
`datetime.now` for the whole process (the in-process app runs in it):

- `session.no-idle-timeout`: the clock jumps IDLE_TIMEOUT_S (+ a margin) ahead with no activity; the
  session still opening the page is a finding;
- `session.no-absolute-timeout`: a second fresh session is used every ACTIVITY_INTERVAL_S until
  ABSOLUTE_TIMEOUT_S (+ a margin) has passed; still open is a finding.

A JWT whose `exp` the app enforces expires by itself, so it passes both. Thresholds follow OWASP ASVS 3.3
loosely (ASVS L2 asks for much shorter idle timeouts; these defaults flag only sessions that never end).
URL targets are skipped: their clock cannot be moved. Requests during the jump are sent with the fresh
session's credentials as an anonymous client, so the scan's own expiry/refresh logic never runs on a
shifted clock, and the check runs as one unit (`scope="target"`), alone in the process.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import time_machine

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, note
from bastion.findings.model import Confidence, Finding, InputRef, Location
from bastion.identity.probe import MembersPage, authenticated, fresh_login, members_page, session_cookie
from bastion.target.exchange import Exchange

# A session unused for this long must be refused (OWASP ASVS 3.3.2 asks for far less on sensitive apps).
IDLE_TIMEOUT_S = 24 * 3600
# A session kept busy must still end after this long (re-authentication).
ABSOLUTE_TIMEOUT_S = 30 * 86_400
# How often the busy session is used while its absolute lifetime is tested (well below any idle timeout
# this check accepts, so an idle timeout alone never passes for an absolute one).
ACTIVITY_INTERVAL_S = 12 * 3600
# Past the threshold by this much: a timeout set exactly at the threshold must pass.
MARGIN_S = 3600


@dataclass
class Subject:
    """A role whose fresh sessions are tested, the kind of session it holds, and a page it opens."""

    role: str
    kind: str  # "cookie session" | "bearer token"
    page: MembersPage
    carrier: InputRef  # the cookie or header that carries the session (part of the finding's identity)


async def _subjects(ctx: CheckContext) -> list[Subject]:
    """One role per session kind (roles without a second factor first: fresh logins spend no codes)."""
    out: dict[str, Subject] = {}
    order = sorted(ctx.roles, key=lambda r: (getattr(ctx.role_configs.get(r), "mfa", None) is not None, r))
    for role in order:
        config = ctx.role_configs.get(role)
        if getattr(config, "login", None) is None and getattr(config, "oidc", None) is None:
            continue  # fixed cookies or headers: nothing to log in again with
        session = ctx.roles[role]
        kind = "bearer token" if session.headers else "cookie session" if session.cookies else ""
        if not kind or kind in out:
            continue
        page = await members_page(ctx, role)
        if page is None:
            continue
        if session.headers:
            carrier = InputRef.model_validate({"in": "header", "name": sorted(session.headers)[0]})
        else:
            cookie = await session_cookie(ctx, role, page)
            if cookie is None:
                continue
            carrier = InputRef.model_validate({"in": "cookie", "name": cookie})
        out[kind] = Subject(role, kind, page, carrier)
    return list(out.values())


async def _fresh_credentials(ctx: CheckContext, subject: Subject) -> tuple[dict[str, str], dict[str, str]] | None:
    """Cookies and headers of a new login of the subject's role that opens its page now, else None."""
    fresh = await fresh_login(ctx, subject.role)
    if fresh is None:
        return None
    cookies, headers = dict(fresh[0].cookies), dict(fresh[0].headers)
    ok, _ = await authenticated(ctx, subject.page, cookies, headers)
    return (cookies, headers) if ok else None


async def _at(ctx: CheckContext, when: float, subject: Subject, cookies: dict[str, str],
              headers: dict[str, str]) -> tuple[bool, Exchange]:
    """Whether the credentials open the subject's page with the process clock at `when`."""
    with time_machine.travel(when, tick=True):
        return await authenticated(ctx, subject.page, cookies, headers)


def _finding(ctx: CheckContext, subject: Subject, ex: Exchange, title: str, summary: str) -> Finding:
    f = ctx.finding(title=title, confidence=Confidence.confirmed,
                    evidence=[note("clock moved", summary),
                              *exchange_evidence(ex, f"a fresh {subject.kind} of {subject.role} still opens "
                                                     f"{subject.page.path}")],
                    location=Location(method="GET", path=subject.page.path, input=subject.carrier))
    return f.model_copy(update={"role": subject.role})


async def _idle(ctx: CheckContext, subject: Subject) -> Finding | None:
    creds = await _fresh_credentials(ctx, subject)
    if creds is None:
        return None
    hours = (IDLE_TIMEOUT_S + MARGIN_S) // 3600
    ok, ex = await _at(ctx, time.time() + IDLE_TIMEOUT_S + MARGIN_S, subject, *creds)
    if not ok:
        return None
    return _finding(ctx, subject, ex, f"{subject.kind.capitalize()} still valid after {hours} h without "
                                      f"activity ({subject.page.path})",
                    f"the app's clock was moved {hours} hours ahead with no request in between (time-machine, "
                    f"in-process); idle threshold {IDLE_TIMEOUT_S // 3600} h")


async def _absolute(ctx: CheckContext, subject: Subject) -> Finding | None:
    creds = await _fresh_credentials(ctx, subject)
    if creds is None:
        return None
    start = time.time()
    steps = -(-(ABSOLUTE_TIMEOUT_S + MARGIN_S) // ACTIVITY_INTERVAL_S)
    ex: Exchange | None = None
    for step in range(1, steps + 1):
        ok, ex = await _at(ctx, start + step * ACTIVITY_INTERVAL_S, subject, *creds)
        if not ok:
            return None  # it ended: idle or absolute, either way not a session that lives for ever
    assert ex is not None
    days = steps * ACTIVITY_INTERVAL_S // 86_400
    return _finding(ctx, subject, ex, f"{subject.kind.capitalize()} still valid after {days} days of "
                                      f"activity ({subject.page.path})",
                    f"the session was used every {ACTIVITY_INTERVAL_S // 3600} hours of app clock time for "
                    f"{days} days (time-machine, in-process); absolute threshold {ABSOLUTE_TIMEOUT_S // 86_400} days")


@check(id="session.no-idle-timeout", threat="session.no-idle-timeout", scope="target", shard="check")
async def no_idle_timeout(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A fresh session left unused past the idle threshold (app clock moved ahead) still opens a members page."""
    if not ctx.target.in_process:
        ctx.skip("URL target: its clock cannot be moved (idle expiry is judged in-process only)")
        return
    for subject in await _subjects(ctx):
        finding = await _idle(ctx, subject)
        if finding is not None:
            yield finding


@check(id="session.no-absolute-timeout", threat="session.no-absolute-timeout", scope="target", shard="check")
async def no_absolute_timeout(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A fresh session used every few hours past the absolute threshold (app clock moved ahead) still works."""
    if not ctx.target.in_process:
        ctx.skip("URL target: its clock cannot be moved (absolute expiry is judged in-process only)")
        return
    for subject in await _subjects(ctx):
        finding = await _absolute(ctx, subject)
        if finding is not None:
            yield finding
