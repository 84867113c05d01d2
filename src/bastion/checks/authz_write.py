"""State-changing authorization probes: BOLA on writes, and privilege changes that wait for a re-login.

Both run only where the `writes:` setting allows the entry point (by default on in-process
targets) and reset the target after every write that may have changed data.

- authz.bola-write: role B sends PUT/PATCH/DELETE on an object role A sees as its own (its id
  learned from A's pages); confirmed when A reads the object back changed (a canary in a field) or
  gone (404/410).
- authz.stale-privileges: on a user-update route with a role field (`PATCH /users/{id}`
  `{"role": ...}`), an admin promotes a non-admin role, the role logs in (its session now reaches an
  admin-only page), the admin demotes it again; when that same session still reaches the page
  while a fresh login is refused, the demotion waits for a re-login.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.dedup import merge_roles
from bastion.findings.evidence import exchange_evidence, note
from bastion.findings.model import Confidence, Finding
from bastion.identity.matrix import ALLOW, DENY, access_outcome
from bastion.identity.ownership import (
    ANONYMOUS,
    AUTH_PATH,
    Page,
    SelfView,
    admin_roles,
    allowed_roles,
    is_2xx,
    is_admin_path,
    json_body,
    login_paths,
    owned_ids,
    path_param,
    read_twin,
    relogin,
    role_pages,
    seen_ids,
    self_views,
    set_json,
    write_request,
)
from bastion.surface.model import EntryPoint
from bastion.surface.requests import RequestSpec, build_request
from bastion.target.exchange import Exchange

OBJECT_WRITE_METHODS = ("PUT", "PATCH", "DELETE")
MAX_IDS_PER_ROLE = 4
MAX_PRIVILEGED_PAGES = 3
GONE = (404, 410)
# A route that updates user accounts, and the fields on it that carry a user's rights.
_USER_SEGMENT = re.compile(r"^(users?|accounts?|members?|people|staff|principals?)$", re.IGNORECASE)
_ROLE_FIELD = re.compile(r"^(role|roles|is_?admin|admin|is_?staff|groups?|permissions?|user_?type)$",
                         re.IGNORECASE)


def _with_role(finding: Finding, role: str) -> Finding:
    return finding.model_copy(update={"role": role})


# --- BOLA on writes ---------------------------------------------------------------------------------


@check(id="authz.bola-write", threat="authz.bola-write", scope="target", cost=150.0)
async def bola_write(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Change or delete each role's objects as every other role; confirm by reading them back as the owner."""
    if len(ctx.roles) < 2:
        return
    pages = await role_pages(ctx)
    for ep in ctx.surface.sorted():
        twin = read_twin(ctx, ep)
        if (ep.method not in OBJECT_WRITE_METHODS or twin is None or path_param(ep) is None
                or path_param(twin) is None or AUTH_PATH.search(ep.path) or not ctx.may_write(ep.method, ep.path)):
            continue
        for finding in merge_roles(await _bola_write_endpoint(ctx, ep, twin, pages)):
            yield finding


async def _bola_write_endpoint(ctx: CheckContext, ep: EntryPoint, twin: EntryPoint,
                               pages: dict[str, list[Page]]) -> list[Finding]:
    """Findings for one write route: every role that can change an object of another (first object only)."""
    inp = path_param(twin)
    assert inp is not None
    policy = allowed_roles(ctx, ep)
    allowed = policy if policy is not None else tuple(admin_roles(ctx))
    seen = seen_ids(twin, inp, pages)
    for owner in ctx.roles:
        for object_id in owned_ids(twin, inp, pages, owner, MAX_IDS_PER_ROLE):
            read = build_request(twin, inp, object_id)
            before = await ctx.send_spec(read, as_role=owner)
            if not is_2xx(before) or is_2xx(await ctx.send_spec(read, as_role=ANONYMOUS)):
                continue  # not the owner's, or public
            attackers = [r for r in ctx.roles
                         if r != owner and r not in allowed and object_id not in seen.get(r, set())]
            found: list[Finding] = []
            wrote = False
            for attacker in attackers:
                finding, changed = await _tamper(ctx, ep, object_id, owner, attacker, read, before)
                found += [finding] if finding is not None else []
                wrote |= changed
                if changed and ep.method == "DELETE":
                    await ctx.reset()  # the next attacker needs the object back
                    wrote = False
            if wrote:
                await ctx.reset()
            if attackers:
                return found  # one object of one owner is enough to judge the route
    return []


async def _tamper(ctx: CheckContext, ep: EntryPoint, object_id: str, owner: str, attacker: str,
                  read: RequestSpec, before: Exchange) -> tuple[Finding | None, bool]:
    """Write `owner`'s object as `attacker`: a finding when the owner then reads it changed or gone.

    Also returns whether the write went through (the caller resets the target).
    """
    snapshot = json_body(before)
    values: dict[str, Any] = snapshot if isinstance(snapshot, dict) else {}
    spec = write_request(ep, object_id, values)
    canary = _plant_canary(ctx, ep, spec, values)
    ex = await ctx.send_spec(spec, as_role=attacker)
    if not is_2xx(ex):
        return None, False
    after = await ctx.send_spec(read, as_role=owner)
    if ep.method == "DELETE" and after.status in GONE:
        outcome = f"the owner then gets {after.status}: the object is gone"
    elif ep.method != "DELETE" and canary is not None and canary in after.text:
        outcome = f"the owner then reads the value {canary!r} the attacker wrote"
    else:
        return None, True
    summary = f"{ep.method} {ex.request.url} as {attacker} on an object of {owner}: {ex.status}; {outcome}"
    evidence = exchange_evidence(ex, summary) + [note(f"read back as {owner}: {after.status}")]
    return _with_role(ctx.finding(
        title=f"Other users' objects writable at {ep.method} {ep.path} (BOLA)",
        confidence=Confidence.confirmed, evidence=evidence, location=ctx.location(ep=ep),
        url=ex.request.url), attacker), True


def _plant_canary(ctx: CheckContext, ep: EntryPoint, spec: RequestSpec, values: dict[str, Any]) -> str | None:
    """Put a canary in the first text field the object shows (the rest stays as it was)."""
    for inp in ep.inputs:
        current = values.get(inp.name)
        if inp.location not in ("json", "form") or not isinstance(current, str) or inp.kind != "string":
            continue
        canary = ctx.canary()
        if inp.location == "json" and isinstance(spec.json, dict):
            set_json(spec.json, inp.name, canary)
        elif spec.form is not None:
            spec.form[inp.name] = canary
        return canary
    return None


# --- privilege changes that wait for a re-login -------------------------------------------------------


def _role_update_routes(ctx: CheckContext) -> list[tuple[EntryPoint, str]]:
    """(route, role field) for routes updating a user by id with a field that carries rights."""
    out = []
    for ep in ctx.surface.sorted():
        segments = [s for s in ep.path.split("/") if s]
        if ep.method not in ("PUT", "PATCH", "POST") or path_param(ep) is None or len(segments) < 2:
            continue
        if not _USER_SEGMENT.match(segments[-2]) or not ctx.may_write(ep.method, ep.path):
            continue
        field = next((i.name for i in ep.inputs if i.location in ("json", "form") and _ROLE_FIELD.match(i.name)),
                     None)
        if field is not None:
            out.append((ep, field))
    return out


async def _privileged_pages(ctx: CheckContext, admin: str, user: str) -> list[EntryPoint]:
    """Admin-only GET pages (policy or path) the admin reaches and `user` is refused."""
    out: list[EntryPoint] = []
    admins = admin_roles(ctx)
    for ep in ctx.surface.sorted():
        if ep.method != "GET" or any(i.location == "path" for i in ep.inputs):
            continue
        allowed = allowed_roles(ctx, ep)
        reserved = (allowed is not None and set(allowed) <= admins and ANONYMOUS not in allowed) \
            or (allowed is None and is_admin_path(ep.path))
        if not reserved:
            continue
        if await _outcome(ctx, ep, admin) == ALLOW and await _outcome(ctx, ep, user) == DENY:
            out.append(ep)
        if len(out) >= MAX_PRIVILEGED_PAGES:
            break
    return out


async def _outcome(ctx: CheckContext, ep: EntryPoint, role: str) -> str:
    return access_outcome(await ctx.send_spec(build_request(ep), as_role=role), login_paths(ctx))


def _role_values(field: str, admin: SelfView, user: SelfView) -> tuple[Any, Any]:
    """(promote, demote) values of the role field: what the admin's and the user's profiles show."""
    high, low = admin.data.get(field), user.data.get(field)
    if isinstance(low, bool) or isinstance(high, bool):
        return True, False
    return (high if high is not None else "admin"), (low if low is not None else "user")


@check(id="authz.stale-privileges", threat="authz.stale-privileges", scope="target", cost=150.0)
async def stale_privileges(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Promote a role, log it in, demote it; report when that session keeps the admin rights."""
    admins = [r for r in ctx.roles if r in admin_roles(ctx)]
    users = [r for r in ctx.roles if r not in admins]
    routes = _role_update_routes(ctx)
    if not admins or not users or not routes:
        return
    selves = self_views(await role_pages(ctx), list(ctx.roles))
    for ep, field in routes:
        policy = allowed_roles(ctx, ep)
        admin = next((a for a in admins if policy is None or a in policy), None)
        user = next((u for u in users if u in selves and selves[u].user_id is not None), None)
        if admin is None or admin not in selves or user is None:
            continue
        finding = await _stale_probe(ctx, ep, field, admin, user, selves)
        await ctx.reset(relogin=[user])  # its sessions were opened while promoted
        if finding is not None:
            yield finding
            return


async def _stale_probe(ctx: CheckContext, ep: EntryPoint, field: str, admin: str, user: str,
                       selves: dict[str, SelfView]) -> Finding | None:
    pages = await _privileged_pages(ctx, admin, user)
    if not pages:
        return None
    page = pages[0]
    user_id = selves[user].user_id
    promote, demote = _role_values(field, selves[admin], selves[user])
    if not is_2xx(await ctx.send_spec(write_request(ep, user_id, {field: promote}), as_role=admin)):
        return None
    if not await relogin(ctx, user) or await _outcome(ctx, page, user) != ALLOW:
        # No fresh session with the new rights (login refused, or the promotion grants nothing here).
        return None
    demoted = await ctx.send_spec(write_request(ep, user_id, {field: demote}), as_role=admin)
    if not is_2xx(demoted):
        return None
    kept = await ctx.send_spec(build_request(page), as_role=user)
    if access_outcome(kept, login_paths(ctx)) != ALLOW:
        return None
    if not await relogin(ctx, user) or await _outcome(ctx, page, user) != DENY:
        return None  # the demotion did not take effect at all: not a session problem
    summary = (f"{admin} set {field}={demote!r} on {user} ({ep.method} {demoted.request.url}); {user}'s existing "
               f"session still gets {kept.status} on {page.key}, a fresh login is refused")
    return _with_role(ctx.finding(
        title=f"Demotion not effective until re-login ({field} changed via {ep.method} {ep.path})",
        confidence=Confidence.confirmed, evidence=exchange_evidence(kept, summary),
        location=ctx.location(ep=ep), url=demoted.request.url), user)
