"""BOLA on credentials named by the path: another user's password changed at `PUT /users/{username}/password`.

The object is an account and its identifier a username (or e-mail) in the path, not an id in a page: the
usernames come from the roles' own login configs (identity/endpoints.py accounts; zero-config roles too).
Role B sends the password change with role A's username; confirmed when A's login then accepts the
password B chose (a wrong password still refused). A's password is set back through the same route, and the
target reset. Runs only where `writes:` allows the route. Plain reads by username are covered by
authz.bola (a role's own page shows its username under the path parameter's name).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, note
from bastion.findings.model import Confidence, Finding
from bastion.findings.redact import Redactor
from bastion.identity.endpoints import (
    Account,
    AuthEndpoint,
    FormSession,
    _surface_endpoint,
    credentials,
    discover_auth,
    login_accepted,
    login_identity,
    strong_password,
)
from bastion.identity.ownership import admin_roles, allowed_roles, is_2xx, path_param, relogin
from bastion.surface.model import EntryPoint
from bastion.surface.requests import build_request
from bastion.target.exchange import Exchange

WRITE_METHODS = ("PUT", "PATCH", "POST")
USERNAME_PARAM = re.compile(r"^(user(_?name)?|login|handle|account|name|e-?mail)$", re.IGNORECASE)
_EMAIL_PARAM = re.compile(r"e-?mail", re.IGNORECASE)
# Routes tried (each costs a change, a login pair and a restore).
MAX_ROUTES = 3


def _password_routes(ctx: CheckContext, signups: set[str]) -> list[tuple[EntryPoint, AuthEndpoint]]:
    """Writes naming one account by path whose body sets a new password without asking for the current one."""
    auth = discover_auth(ctx.surface, {})
    out: list[tuple[EntryPoint, AuthEndpoint]] = []
    for ep in ctx.surface.sorted():
        inp = path_param(ep)
        if ep.method not in WRITE_METHODS or inp is None or not USERNAME_PARAM.match(inp.name) \
                or ep.path in signups or not ctx.may_write(ep.method, ep.path):
            continue
        found = next((a for a in [*auth.signups, *auth.password_changes] if a.path == ep.path), None)
        if found is None:  # classified like every credential endpoint (password, confirm, current fields)
            found = _surface_endpoint("password_change", ep, ctx.surface)
        if found is not None and found.password_field and not found.current_password_field:
            out.append((ep, found))
    return out[:MAX_ROUTES]


@check(id="authz.bola-credentials", threat="authz.bola-credentials", scope="target", cost=30.0)
async def bola_credentials(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Change another role's password through a username in the path; confirmed by that role's login."""
    accounts = [a for a in discover_auth(ctx.surface, ctx.role_configs).accounts if a.role in ctx.roles]
    if len(accounts) < 2:
        ctx.skip("fewer than two roles with known credentials")
        return
    signups = {a.path for a in discover_auth(ctx.surface, {}).signups}
    for ep, route in _password_routes(ctx, signups):
        finding = await _route(ctx, ep, route, accounts)
        if finding is not None:
            yield finding


async def _route(ctx: CheckContext, ep: EntryPoint, route: AuthEndpoint, accounts: list[Account]) -> Finding | None:
    """The first victim/attacker pair whose password change goes through and opens the victim's login."""
    policy = allowed_roles(ctx, ep)
    privileged = set(policy) if policy is not None else admin_roles(ctx)
    attackers = [a for a in accounts if a.role not in privileged]
    # A victim without a second factor first: its login proves the change without a one-time code.
    victims = sorted(accounts, key=lambda a: getattr(ctx.role_configs.get(a.role), "mfa", None) is not None)
    for victim in victims:
        attacker = next((a for a in attackers if a.role != victim.role), None)
        if attacker is None:
            continue
        return await _take_over(ctx, ep, route, victim, attacker)
    return None


async def _change(ctx: CheckContext, ep: EntryPoint, route: AuthEndpoint, victim: Account, attacker: Account,
                  password: str) -> tuple[Exchange, bool]:
    """Send the change for `victim` as `attacker`; (exchange, accepted)."""
    inp = path_param(ep)
    assert inp is not None
    name = victim.email if _EMAIL_PARAM.search(inp.name) and victim.email else victim.username
    spec = build_request(ep, inp, name)
    values = credentials(route, "", password)
    values.pop("", None)
    if isinstance(spec.json, dict):
        spec.json.update(values)
    elif spec.form is not None:
        spec.form.update(values)
    ex = await ctx.send_spec(spec, as_role=attacker.role)
    return ex, is_2xx(ex)


async def _take_over(ctx: CheckContext, ep: EntryPoint, route: AuthEndpoint, victim: Account,
                     attacker: Account) -> Finding | None:
    chosen = strong_password(ctx.canary())
    ex, accepted = await _change(ctx, ep, route, victim, attacker, chosen)
    if not accepted:
        return None
    login = victim.login
    identity = login_identity(login, victim.username, victim.email or victim.username)
    failed = await FormSession(ctx.send).submit(login, credentials(login, identity, chosen + "-wrong"))
    opened = await FormSession(ctx.send).submit(login, credentials(login, identity, chosen))
    proven = login_accepted(opened, failed, login.path)
    # Give the victim its password back through the same route, then restore the data and its session.
    await _change(ctx, ep, route, victim, attacker, victim.password)
    await ctx.reset()
    await relogin(ctx, victim.role)  # a change may end the victim's sessions; False (e.g. TOTP replay) is fine
    if not proven:
        return None
    summary = (f"{ep.method} {ex.request.url} as {attacker.role} (path names {victim.role}'s account): "
               f"{ex.status}; {victim.role}'s login then accepts the password {attacker.role} chose")
    finding = ctx.finding(
        title=f"Other users' passwords changeable at {ep.method} {ep.path} (BOLA by username)",
        confidence=Confidence.confirmed, location=ctx.location(ep=ep),
        evidence=[*exchange_evidence(ex, summary), *exchange_evidence(opened, f"login as {victim.role} with the "
                                                                            f"new password: {opened.status}"),
                  note(f"a wrong password at the same login: {failed.status}")])
    return Redactor([chosen, victim.password]).finding(finding.model_copy(update={"role": attacker.role}))
