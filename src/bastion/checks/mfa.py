"""MFA checks: the TOTP step skipped, codes not bound to the account, reused or guessable, forged remember-device.

They drive the configured roles with `mfa:` through fresh logins (the scan's own sessions stay as
they are): the primary login, the one-time-code step found by `identity.mfa`, and a members-only
page (reached by the role, denied to anonymous) as the judge of "fully logged in".
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.errors import ConfigError
from bastion.findings.evidence import exchange_evidence, note
from bastion.findings.model import Confidence, Finding, InputRef, Location
from bastion.identity.mfa import (
    MAX_STEPS_AHEAD,
    MfaStep,
    code_at_step,
    current_step,
    find_mfa_step,
    mark_accepted,
    mfa_completed,
    next_code,
    submit_code,
)
from bastion.identity.probe import MembersPage, authenticated, fresh_login, members_page
from bastion.identity.session import RoleSession
from bastion.target.exchange import Exchange

# Wrong codes sent before the right one (the guessing check stops at the first sign of a limit).
MAX_WRONG_CODES = 20
_LIMITED = re.compile(r"too many|locked|try again (later|in)|rate limit|captcha|slow down", re.IGNORECASE)
_USERNAME_FIELD = re.compile(r"user|login|email|name|account", re.IGNORECASE)
_REMEMBER_NAME = re.compile(r"remember|trust|device|mfa|2fa|otp", re.IGNORECASE)


@dataclass
class PendingLogin:
    """A fresh primary (password-only) login of an MFA role and its one-time-code step."""

    role: str
    session: RoleSession
    login_ex: Exchange
    step: MfaStep


def _mfa_roles(ctx: CheckContext) -> list[str]:
    return [name for name in ctx.roles
            if getattr(ctx.role_configs.get(name), "mfa", None) is not None
            and getattr(ctx.role_configs.get(name), "login", None) is not None]


def _secret(ctx: CheckContext, role: str) -> str:
    return str(ctx.role_configs[role].mfa.totp_secret)


def _login_response(ctx: CheckContext, role: str, exchanges: list[Exchange]) -> Exchange | None:
    login = ctx.role_configs[role].login
    for ex in reversed(exchanges):
        if ex.request.method == login.method and urlsplit(ex.request.url).path == login.path:
            return ex
    return None


async def _password_login(ctx: CheckContext, role: str,
                          cookies: dict[str, str] | None) -> tuple[RoleSession, Exchange] | None:
    """A fresh password-only login of `role` and the login's own answer; None when either is missing."""
    fresh = await fresh_login(ctx, role, cookies=cookies, second_factor=False)
    if fresh is None:
        return None
    session, exchanges = fresh
    login_ex = _login_response(ctx, role, exchanges)
    return None if login_ex is None else (session, login_ex)


async def _pending(ctx: CheckContext, role: str, cookies: dict[str, str] | None = None) -> PendingLogin | None:
    """A fresh password-only login of `role` and its MFA step; None when either cannot be found."""
    login = await _password_login(ctx, role, cookies)
    if login is None:
        return None
    session, login_ex = login
    try:
        step = await find_mfa_step(ctx.client, role, ctx.role_configs[role], session, login_ex)
    except ConfigError:  # this role's MFA step cannot be found from the login's answer
        return None
    return PendingLogin(role, session, login_ex, step)


async def _submit(ctx: CheckContext, pending: PendingLogin, code: str, *, options: bool = False) -> Exchange:
    pending.session.secrets.add(code)
    ex = await submit_code(ctx.client, pending.step, pending.session, code, options=options)
    ctx.stats.requests += 1
    ctx.roles[pending.role].secrets.update(pending.session.secret_values())
    return ex


def _step_location(step: MfaStep, field: str | None = None) -> Location:
    inp = InputRef.model_validate({"in": "json" if step.as_json else "form", "name": field or step.field})
    return Location(method=step.method, path=step.path, input=inp)


async def _fully_in(ctx: CheckContext, pending: PendingLogin, page: MembersPage) -> tuple[bool, Exchange]:
    return await authenticated(ctx, page, dict(pending.session.cookies), headers=dict(pending.session.headers))


async def _complete(ctx: CheckContext, pending: PendingLogin, secret: str, at_step: int, *,
                    refuse_limited: bool = False) -> Exchange | None:
    """Submit `secret`'s code of `at_step`: the answer when it completes the MFA step, else None."""
    ex = await _submit(ctx, pending, code_at_step(secret, at_step))
    if (refuse_limited and _limited(ex)) or not mfa_completed(ex, pending.step, pending.session.login_path):
        return None
    mark_accepted(ctx.client, secret, at_step)
    return ex


async def _enter(ctx: CheckContext, pending: PendingLogin, page: MembersPage, secret: str, at_step: int, *,
                 refuse_limited: bool = False) -> tuple[Exchange, Exchange] | None:
    """Complete the MFA step as `_complete` does, then reach `page`: (code answer, page answer), or None."""
    ex = await _complete(ctx, pending, secret, at_step, refuse_limited=refuse_limited)
    if ex is None:
        return None
    ok, page_ex = await _fully_in(ctx, pending, page)
    return (ex, page_ex) if ok else None


def _codes_near(secret: str, spread: int = MAX_STEPS_AHEAD + 2) -> set[str]:
    """Every code of `secret` a server with a generous drift window might accept right now."""
    base = current_step()
    return {code_at_step(secret, s) for s in range(base - spread, base + spread + 1)}


# --- skip ---------------------------------------------------------------------------------------------


@check(id="mfa.skip", threat="mfa.skip", scope="target")
async def mfa_skip(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A password-only session of an MFA role reaches a page only logged-in users reach."""
    for role in _mfa_roles(ctx):
        page = await members_page(ctx, role)
        if page is None:
            continue
        pending = await _pending(ctx, role)
        if pending is None:
            continue
        ok, ex = await _fully_in(ctx, pending, page)
        if not ok:
            continue
        yield ctx.finding(
            title=f"MFA step skipped: {role}'s password-only session reaches {page.path}",
            confidence=Confidence.confirmed, location=Location(method="GET", path=page.path),
            evidence=[note("primary login only", f"{role} logged in with the password; the one-time code "
                                                 f"step at {pending.step.method} {pending.step.path} was never sent"),
                      *exchange_evidence(ex, f"{page.path} with the pending session")])
        return


# --- code bound to the account ------------------------------------------------------------------------


@check(id="mfa.otp-not-bound", threat="mfa.otp-not-bound", scope="target")
async def otp_not_bound(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Complete role A's MFA step with role B's current code (needs two MFA roles with different seeds)."""
    roles = _mfa_roles(ctx)
    for victim in roles:
        other = next((r for r in roles if _secret(ctx, r) != _secret(ctx, victim)), None)
        page = await members_page(ctx, victim)
        if other is None or page is None:
            continue
        code, at_step = next_code(ctx.client, _secret(ctx, other))
        if code in _codes_near(_secret(ctx, victim)):
            continue  # the two seeds agree on this code by chance: no evidence either way
        pending = await _pending(ctx, victim)
        entered = None if pending is None else await _enter(ctx, pending, page, _secret(ctx, other), at_step)
        if pending is None or entered is None:
            continue
        ex, page_ex = entered
        yield ctx.finding(
            title=f"{victim}'s MFA step accepts {other}'s one-time code",
            confidence=Confidence.confirmed, location=_step_location(pending.step),
            evidence=[*exchange_evidence(ex, f"{victim}'s MFA step with {other}'s current code"),
                      *exchange_evidence(page_ex, f"{page.path}: logged in as {victim}")])
        return


# --- reuse --------------------------------------------------------------------------------------------


@check(id="mfa.otp-reuse", threat="mfa.otp-reuse", scope="target")
async def otp_reuse(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Two fresh logins of one MFA role completed with the same code: the second must be refused."""
    for role in _mfa_roles(ctx):
        page = await members_page(ctx, role)
        first = await _pending(ctx, role)
        if page is None or first is None:
            continue
        _, at_step = next_code(ctx.client, _secret(ctx, role))
        ex = await _complete(ctx, first, _secret(ctx, role), at_step)
        second = None if ex is None else await _pending(ctx, role)
        # The same code again (marking it accepted twice changes nothing).
        entered = None if second is None else await _enter(ctx, second, page, _secret(ctx, role), at_step)
        if ex is None or second is None or entered is None:
            continue
        again, page_ex = entered
        yield ctx.finding(
            title=f"One-time code accepted twice ({role})", confidence=Confidence.confirmed,
            location=_step_location(second.step),
            evidence=[*exchange_evidence(ex, "first login with the code"),
                      *exchange_evidence(again, "second login with the same code"),
                      *exchange_evidence(page_ex, f"{page.path} after the second login")])
        return


# --- guessing -----------------------------------------------------------------------------------------


def _limited(ex: Exchange) -> bool:
    """A throttle, lockout or challenge answer (or the login being thrown away)."""
    if ex.status in (423, 429, 503) or ex.header("retry-after"):
        return True
    if ex.status in (301, 302, 303, 307, 308):
        return False  # judged by the final code
    return bool(_LIMITED.search(ex.text[:20_000]))


def _wrong_codes(ctx: CheckContext, secret: str) -> list[str]:
    valid = _codes_near(secret)
    out: list[str] = []
    while len(out) < MAX_WRONG_CODES:
        code = f"{ctx.rng.randrange(1_000_000):06d}"
        if code not in valid and code not in out:
            out.append(code)
    return out


@check(id="mfa.otp-guessing", threat="mfa.otp-guessing", scope="target")
async def otp_guessing(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Up to 20 wrong codes, then the right one: no limit seen and the login completes = unlimited guesses."""
    sent = False
    try:
        for role in _mfa_roles(ctx):
            page = await members_page(ctx, role)
            pending = await _pending(ctx, role)
            if page is None or pending is None or not ctx.may_write(pending.step.method, pending.step.path):
                continue
            sent = True
            wrong = _wrong_codes(ctx, _secret(ctx, role))
            answers = []
            for code in wrong:
                ex = await _submit(ctx, pending, code)
                answers.append(ex)
                if _limited(ex) or mfa_completed(ex, pending.step, pending.session.login_path):
                    break
            if len(answers) < len(wrong):
                continue  # limited (or a wrong code passed, which is not this check's proof)
            _, at_step = next_code(ctx.client, _secret(ctx, role))
            entered = await _enter(ctx, pending, page, _secret(ctx, role), at_step, refuse_limited=True)
            if entered is None:
                continue
            right, page_ex = entered
            yield ctx.finding(
                title=f"Unlimited one-time-code guesses ({role}: {len(wrong)} wrong codes, then logged in)",
                confidence=Confidence.confirmed, location=_step_location(pending.step),
                evidence=[*exchange_evidence(answers[-1], f"wrong code {len(wrong)} of {len(wrong)}: no limit"),
                          *exchange_evidence(right, "the right code still completes the login"),
                          *exchange_evidence(page_ex, f"{page.path} afterwards")])
            return
    finally:
        if sent:
            # Restore the target's data (the lockout counter); the roles' own sessions were never used.
            await ctx.target.reset()


# --- remember device ----------------------------------------------------------------------------------


def _username(ctx: CheckContext, role: str) -> str | None:
    login = ctx.role_configs[role].login
    fields: dict[str, Any] = dict(login.form or login.json_body or {})
    for key, value in fields.items():
        if _USERNAME_FIELD.search(str(key)) and not re.search(r"pass|pw|secret", str(key), re.IGNORECASE):
            return str(value) if isinstance(value, str | int) and str(value) else None
    return None


def _b64decode(value: str) -> tuple[str, bool] | None:
    """(decoded text, url-safe alphabet) of a base64 value that decodes to printable UTF-8."""
    padded = value + "=" * (-len(value) % 4)
    for urlsafe in (True, False):
        try:
            raw = base64.b64decode(padded, altchars=b"-_" if urlsafe else None, validate=True)
            text = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if text.isprintable():
            return text, urlsafe
    return None


def forge_for(value: str, username: str, other: str) -> str | None:
    """`value` rewritten to name `other` instead of `username` (plain or base64 text); None if it does not name them."""
    pattern = re.compile(rf"(?<![\w@.]){re.escape(username)}(?![\w@.])")
    if pattern.search(value):
        return pattern.sub(other, value)
    decoded = _b64decode(value)
    if decoded is None or not pattern.search(decoded[0]):
        return None
    text, urlsafe = decoded
    raw = pattern.sub(other, text).encode()
    encoded = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
    return encoded if value.endswith("=") else encoded.rstrip("=")


def _challenged(ex: Exchange, step: MfaStep) -> bool:
    """Whether a primary login answer asks for the second factor (redirect to the step, or a JSON hint)."""
    location = urlsplit(ex.header("location") or "").path
    if location and location.rstrip("/") in {p.rstrip("/") for p in (step.path, step.page) if p}:
        return True
    if "json" in ex.content_type:
        try:
            body = json.loads(ex.text)
        except ValueError:
            return False
        return isinstance(body, dict) and any(re.search(r"mfa|otp|2fa|totp", str(k), re.IGNORECASE)
                                              and v not in (None, False, "") for k, v in body.items())
    return False


async def _remember_cookie(ctx: CheckContext, role: str) -> tuple[str, str, Exchange] | None:
    """(cookie name, value, MFA response) of the remember-device cookie `role` gets by ticking the option."""
    pending = await _pending(ctx, role)
    if pending is None or not pending.step.options:
        return None
    before = dict(pending.session.cookies)
    code, at_step = next_code(ctx.client, _secret(ctx, role))
    ex = await _submit(ctx, pending, code, options=True)
    if not mfa_completed(ex, pending.step, pending.session.login_path):
        return None
    mark_accepted(ctx.client, _secret(ctx, role), at_step)
    for name, value in sorted(pending.session.cookies.items()):
        if name not in before and _REMEMBER_NAME.search(name):
            return name, value, ex
    return None


@check(id="mfa.remember-device", threat="mfa.remember-device", scope="target")
async def remember_device(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A remember-device cookie that names its user, rewritten for another MFA role, skips that role's MFA step."""
    roles = _mfa_roles(ctx)
    for role in roles:
        username = _username(ctx, role)
        remembered = await _remember_cookie(ctx, role) if username else None
        if remembered is None or username is None:
            continue
        name, value, _ = remembered
        for other in roles:
            other_name = _username(ctx, other)
            forged = forge_for(value, username, other_name) if other != role and other_name else None
            if forged is None:
                continue
            control = await _pending(ctx, other)
            if control is None or not _challenged(control.login_ex, control.step):
                continue
            attempt = await _unchallenged_login(ctx, other, {name: forged}, control.step)
            if attempt is None:
                continue
            skipped, login_ex = attempt
            page = await members_page(ctx, other)
            if page is None:
                continue
            ok, page_ex = await authenticated(ctx, page, dict(skipped.cookies), headers=dict(skipped.headers))
            if not ok:
                continue
            yield ctx.finding(
                title=f"Forged remember-device cookie {name!r} skips {other}'s MFA step",
                confidence=Confidence.confirmed,
                location=Location(method=login_ex.request.method, path=urlsplit(login_ex.request.url).path,
                                  input=InputRef.model_validate({"in": "cookie", "name": name})),
                evidence=[note("remember-device cookie names its user",
                               f"{role}'s {name} decodes to text naming {role}; rewritten to name {other}"),
                          *exchange_evidence(login_ex, f"{other}'s password login with the forged {name}: "
                                                       "no MFA prompt"),
                          *exchange_evidence(page_ex, f"{page.path}: logged in as {other}")])
            return


async def _unchallenged_login(ctx: CheckContext, role: str, cookies: dict[str, str],
                              step: MfaStep) -> tuple[RoleSession, Exchange] | None:
    """A password-only login carrying `cookies` that was *not* asked for the second factor; else None."""
    login = await _password_login(ctx, role, cookies)
    return None if login is None or _challenged(login[1], step) else login
