"""State-changing authorization probes: BOLA on writes, and privilege changes that wait for a re-login.

Both run only where the `writes:` setting allows the entry point (by default on in-process
targets) and reset the target after every write that may have changed data.

- authz.bola-write: role B sends PUT/PATCH/DELETE on an object role A sees as its own (its id
  learned from A's pages); confirmed when A reads the object back changed (a canary in a field) or
  gone (404/410).
- authz.stale-privileges: a right is taken away from a non-admin role by an admin-like role, then the
  role's existing session or token is tried where only the old right let it in. Two shapes, found
  generically: (1) a write on one user carrying a rights field (role, roles, is_admin, permissions,
  groups, scopes, plan ...: `PATCH /users/{id}`, `PUT /users/{id}/role`, or any write the policy keeps
  for admins): the admin promotes the role, the role logs in (its session now reaches an admin-only
  page), the admin demotes it; (2) a membership removal (`DELETE /teams/{team_id}/members/{user_id}`):
  the role reads a page of a group it belongs to, the admin removes it. When the old session still
  gets in while a fresh login is refused, the change waits for a re-login. Every role is tried (cookie
  sessions and bearer tokens cache rights differently); the target is reset after each attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin, urlsplit

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
    candidate_ids,
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
from bastion.identity.privileges import (
    MAX_GROUP_IDS,
    group_pages,
    membership_routes,
    removal_request,
    rights_request,
    role_update_routes,
    role_values,
)
from bastion.surface.crawl import _form_fields as form_fields
from bastion.surface.model import EntryPoint
from bastion.surface.requests import RequestSpec, build_request
from bastion.target.exchange import Exchange
from bastion.target.html import parse_html

OBJECT_WRITE_METHODS = ("PUT", "PATCH", "DELETE")
MAX_IDS_PER_ROLE = 4
MAX_PRIVILEGED_PAGES = 3
GONE = (404, 410)
# After an HTML form POST, a redirect is how the update answers (post/redirect/get): the read-back judges it.
FORM_ACCEPTED = (302, 303)


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
        if ((ep.method not in OBJECT_WRITE_METHODS and not _form_update(ep)) or twin is None
                or path_param(ep) is None
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
    if _form_update(ep) and not values:
        values = _edit_form_values(before, spec.path)
        spec = write_request(ep, object_id, values)
        if spec.form is not None:  # hidden fields the handler may expect (the edit form sends them all)
            spec.form = {**values, **spec.form}
    canary = _plant_canary(ctx, ep, spec, values)
    if _form_update(ep) and canary is None:
        return None, False  # no field of the edit form to change: nothing a read-back could show
    ex = await ctx.send_spec(spec, as_role=attacker)
    if not (is_2xx(ex) or (_form_update(ep) and ex.ok and ex.status in FORM_ACCEPTED)):
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


def _form_update(ep: EntryPoint) -> bool:
    """An HTML form POST on one object (`POST /posts/{id}/edit`): how server-rendered apps update."""
    return ep.method == "POST" and any(i.location == "form" for i in ep.inputs)


def _edit_form_values(page: Exchange, action_path: str) -> dict[str, Any]:
    """The current field values of the page's POST form submitting to `action_path` (the object's edit form)."""
    if not is_2xx(page) or not page.is_html:
        return {}
    for form in parse_html(page.text).iter("form"):
        if (form.get("method") or "GET").strip().upper() != "POST":
            continue
        action = urlsplit(urljoin(page.request.url, (form.get("action") or "").strip())).path
        if action.rstrip("/") == action_path.rstrip("/"):
            return {name: value for name, value, _ in form_fields(form)}
    return {}


def _plant_canary(ctx: CheckContext, ep: EntryPoint, spec: RequestSpec, values: dict[str, Any]) -> str | None:
    """Put a canary in the first text field the object shows (the rest stays as it was)."""
    for inp in ep.inputs:
        current = values.get(inp.name)
        if inp.location not in ("json", "form") or not isinstance(current, str) or inp.kind != "string":
            continue
        if _form_update(ep) and not current.strip():
            continue  # an empty field of a POST form may add (a comment) rather than change the object
        canary = ctx.canary()
        if inp.location == "json" and isinstance(spec.json, dict):
            set_json(spec.json, inp.name, canary)
        elif spec.form is not None:
            spec.form[inp.name] = canary
        return canary
    return None


# --- privilege changes that wait for a re-login -------------------------------------------------------

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


@check(id="authz.stale-privileges", threat="authz.stale-privileges", scope="target", cost=150.0)
async def stale_privileges(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Take a right away from a role (demotion or group removal); report when its old session keeps it."""
    admins = [r for r in ctx.roles if r in admin_roles(ctx)]
    users = [r for r in ctx.roles if r not in admins]
    role_routes, member_routes = role_update_routes(ctx), membership_routes(ctx)
    if not admins or not users or not (role_routes or member_routes):
        return
    selves = self_views(await role_pages(ctx), list(ctx.roles))
    # Every non-admin role with a known user id: cookie and token sessions cache rights differently.
    subjects = [u for u in users if u in selves and selves[u].user_id is not None]
    for ep, field in role_routes:
        policy = allowed_roles(ctx, ep)
        admin = next((a for a in admins if (policy is None or a in policy) and a in selves), None)
        if admin is None:
            continue
        for user in subjects:
            finding = await _stale_probe(ctx, ep, field, admin, user, selves)
            await ctx.reset(relogin=[user])  # its sessions were opened while promoted
            if finding is not None:
                yield finding
                break
    for ep in member_routes:
        policy = allowed_roles(ctx, ep)
        admin = next((a for a in admins if policy is None or a in policy), None)
        if admin is None:
            continue
        for user in subjects:
            finding = await _membership_probe(ctx, ep, admin, user, str(selves[user].user_id))
            if finding is not None:
                yield finding
                break


async def _stale_probe(ctx: CheckContext, ep: EntryPoint, field: str, admin: str, user: str,
                       selves: dict[str, SelfView]) -> Finding | None:
    """Promote `user`, log it in, demote it: a finding when that session keeps the admin-only page."""
    pages = await _privileged_pages(ctx, admin, user)
    if not pages:
        return None
    page = pages[0]
    user_id = str(selves[user].user_id)
    promote, demote = role_values(field, selves[admin], selves[user])
    if not is_2xx(await ctx.send_spec(rights_request(ep, user_id, field, promote), as_role=admin)):
        return None
    if not await relogin(ctx, user) or await _outcome(ctx, page, user) != ALLOW:
        # No fresh session with the new rights (login refused, or the promotion grants nothing here).
        return None
    demoted = await ctx.send_spec(rights_request(ep, user_id, field, demote), as_role=admin)
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


async def _membership_probe(ctx: CheckContext, ep: EntryPoint, admin: str, user: str,
                            user_id: str) -> Finding | None:
    """Remove `user` from a group it reads: a finding when its old session still reads the group's page."""
    pages = await role_pages(ctx)
    texts = [p.exchange.text for p in pages.get(user, [])]
    for page, gid_inp in group_pages(ctx, ep):
        for gid in candidate_ids(page, gid_inp, texts)[:MAX_GROUP_IDS]:
            read = build_request(page, gid_inp, gid)
            if not is_2xx(await ctx.send_spec(read, as_role=user)):
                continue  # not a member of this one
            removed, finding = await _remove_and_reread(ctx, ep, admin, user, user_id, gid, read)
            if removed:
                return finding
    return None


async def _remove_and_reread(ctx: CheckContext, ep: EntryPoint, admin: str, user: str, user_id: str,
                             gid: str, read: RequestSpec) -> tuple[bool, Finding | None]:
    """(whether the removal went through, the finding): a refused removal lets the caller try another group."""
    removed = await ctx.send_spec(removal_request(ep, gid, user_id), as_role=admin)
    if not is_2xx(removed):
        return False, None
    try:
        kept = await ctx.send_spec(read, as_role=user)
        if not is_2xx(kept) or access_outcome(kept, login_paths(ctx)) != ALLOW:
            return True, None
        if not await relogin(ctx, user) or is_2xx(fresh := await ctx.send_spec(read, as_role=user)):
            return True, None  # the removal did not take effect at all (or no fresh session to compare)
    finally:
        await ctx.reset(relogin=[user])
    summary = (f"{admin} removed {user} from the group ({ep.method} {removed.request.url} -> {removed.status}); "
               f"{user}'s existing session still gets {kept.status} on {read.method} {kept.request.url}, "
               f"a fresh login gets {fresh.status}")
    return True, _with_role(ctx.finding(
        title=f"Group removal not effective until re-login ({ep.method} {ep.path})",
        confidence=Confidence.confirmed, evidence=exchange_evidence(kept, summary),
        location=ctx.location(ep=ep), url=removed.request.url), user)

