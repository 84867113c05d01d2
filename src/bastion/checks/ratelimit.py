"""Rate limits on authentication: password guessing on login, reset-mail floods.

Both probes are bounded (constants below), stop at the first sign of a limit, prefer a throw-away
account Bastion signs up itself, need `ctx.may_write` and restore the target with `ctx.reset()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, note
from bastion.findings.model import Confidence, Finding
from bastion.identity.endpoints import (
    AuthEndpoint,
    AuthSurface,
    FormSession,
    credentials,
    discover_auth,
    limit_sign,
    login_accepted,
    login_identity,
    role_emails,
    sign_up_throwaway,
    strong_password,
)
from bastion.target.exchange import Exchange

# Wrong passwords sent before the right one: more than any sane lockout threshold (3-10).
LOGIN_ATTEMPTS = 25
# Reset requests for one address: well above a sane per-address limit (3-5 an hour).
RESET_ATTEMPTS = 12
# A throttle that slows answers down by this much (seconds) counts as a limit.
SLOWDOWN = 1.0


def _auth(ctx: CheckContext) -> AuthSurface:
    auth = ctx.memo.get("auth")
    if auth is None:
        auth = ctx.memo["auth"] = discover_auth(ctx.surface, ctx.role_configs)
    return auth  # type: ignore[no-any-return]


def _slowed(attempts: list[Exchange]) -> bool:
    """Answers got markedly slower towards the end (a growing delay is a limit too)."""
    if len(attempts) < 6:
        return False
    first = min(a.elapsed for a in attempts[:3])
    return min(a.elapsed for a in attempts[-3:]) >= first + SLOWDOWN


async def _login_subject(ctx: CheckContext, auth: AuthSurface, login: AuthEndpoint) -> tuple[str, str, str] | None:
    """(identity, password, label) to guess against: a fresh sign-up when possible, else a role's account."""
    for signup in auth.signups:
        if ctx.may_write(signup.method, signup.path):
            fresh = await sign_up_throwaway(ctx.send, signup, login, ctx.canary())
            if fresh is not None:
                return login_identity(login, fresh.username, fresh.email), fresh.password, \
                    "a throw-away account Bastion signed up"
    # A real account would stay locked without a reset hook to restore it: then leave it alone.
    for account in auth.accounts if ctx.target.reset_hook is not None else []:
        if account.login.key == login.key:
            identity = login_identity(login, account.username, account.email or account.username)
            return identity, account.password, f"role {account.role}"
    return None


async def _guess(ctx: CheckContext, login: AuthEndpoint, identity: str, password: str,
                 label: str) -> Finding | None:
    attempts: list[Exchange] = []
    first: Exchange | None = None
    for _ in range(LOGIN_ATTEMPTS):
        ex = await FormSession(ctx.send).submit(login, credentials(login, identity, strong_password(ctx.canary())))
        first = first or ex
        attempts.append(ex)
        if limit_sign(ex, first if ex is not first else None) or _slowed(attempts):
            return None
    right = await FormSession(ctx.send).submit(login, credentials(login, identity, password))
    assert first is not None
    if limit_sign(right, first) or not login_accepted(right, attempts[-1], login.path):
        return None
    evidence = [*exchange_evidence(attempts[-1], f"wrong password #{LOGIN_ATTEMPTS} for {label}: answered normally"),
                *exchange_evidence(right, "then the right password: logged in"),
                note("attempts", f"{LOGIN_ATTEMPTS} wrong passwords in a row, none answered with 423/429/503, "
                                 "Retry-After, a lock or CAPTCHA message, or a growing delay")]
    return ctx.finding(title=f"No lockout or rate limit on login ({login.key})", confidence=Confidence.confirmed,
                       evidence=evidence, location=ctx.location(method=login.method, path=login.path))


async def _probe_writable(ctx: CheckContext, endpoints: list[AuthEndpoint],
                          probe: Callable[[AuthEndpoint], Awaitable[Finding | None]]) -> AsyncIterator[Finding]:
    """`probe` every endpoint Bastion may write to; restore the target once afterwards if anything was sent."""
    wrote = False
    try:
        for endpoint in endpoints:
            if not ctx.may_write(endpoint.method, endpoint.path):
                continue
            wrote = True
            finding = await probe(endpoint)
            if finding is not None:
                yield finding
    finally:
        if wrote:
            await ctx.reset()


async def _probe_login(ctx: CheckContext, auth: AuthSurface, login: AuthEndpoint) -> Finding | None:
    subject = await _login_subject(ctx, auth, login)
    return None if subject is None else await _guess(ctx, login, *subject)


@check(id="ratelimit.login", threat="ratelimit.login", scope="target", cost=90.0)
async def login_rate_limit(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Many wrong passwords, then the right one: still accepted with no sign of a limit = finding."""
    auth = _auth(ctx)
    logins = [login for login in auth.logins if login.password_field]
    async for finding in _probe_writable(ctx, logins, lambda login: _probe_login(ctx, auth, login)):
        yield finding


async def _reset_subject(ctx: CheckContext, auth: AuthSurface, reset: AuthEndpoint) -> tuple[str, str] | None:
    by_email = bool(reset.email_field) and reset.identity_field == reset.email_field
    login = auth.logins[0] if auth.logins else None
    for signup in auth.signups:
        if ctx.may_write(signup.method, signup.path):
            fresh = await sign_up_throwaway(ctx.send, signup, login, ctx.canary())
            if fresh is not None:
                return (fresh.email if by_email else fresh.username), "a throw-away account"
    if not by_email:
        return (auth.accounts[0].username, f"role {auth.accounts[0].role}") if auth.accounts else None
    for account in auth.accounts:
        if account.email:
            return account.email, f"role {account.role}"
    emails = await role_emails(ctx.send, ctx.surface, list(ctx.roles))
    return next(((email, f"role {role}") for role, email in emails.items()), None)


async def _flood_reset(ctx: CheckContext, auth: AuthSurface, reset: AuthEndpoint) -> Finding | None:
    """Many reset requests for one account; a finding when none of them shows a limit."""
    subject = await _reset_subject(ctx, auth, reset)
    if subject is None or not reset.identity_field:
        return None
    identity, label = subject
    attempts: list[Exchange] = []
    for _ in range(RESET_ATTEMPTS):
        ex = await FormSession(ctx.send).submit(reset, {reset.identity_field: identity})
        attempts.append(ex)
        if limit_sign(ex, attempts[0] if len(attempts) > 1 else None) or _slowed(attempts) or ex.status >= 400:
            return None
    evidence = [*exchange_evidence(attempts[-1], f"reset request #{RESET_ATTEMPTS} for {label}"),
                note("attempts", f"{RESET_ATTEMPTS} reset requests for one address, each answered "
                                 f"{attempts[-1].status} with no 423/429/503, Retry-After or limit "
                                 "message; a silent server-side throttle cannot be seen from here")]
    return ctx.finding(title=f"No rate limit on password-reset requests ({reset.key})",
                       confidence=Confidence.tentative, evidence=evidence,
                       location=ctx.location(method=reset.method, path=reset.path))


@check(id="ratelimit.password-reset", threat="ratelimit.password-reset", scope="target")
async def reset_rate_limit(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Request many resets for one account: no visible limit = finding (tentative: throttling may be silent)."""
    auth = _auth(ctx)
    resets = [reset for reset in auth.resets if reset.identity_field]
    async for finding in _probe_writable(ctx, resets, lambda reset: _flood_reset(ctx, auth, reset)):
        yield finding
