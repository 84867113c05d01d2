"""Authorization checks: the declared access policy as a role × entry-point matrix, BOLA and BFLA reads.

Policy lines for reads are probed as every role. Lines for state-changing methods (POST, PUT, PATCH,
DELETE) are probed only where the `writes:` setting allows them (by default on in-process targets,
never on URL targets); a write probe acts on an object another role owns, and the target is reset
after every write that may have changed data. Without permission the cells stay "untested" with
the reason. Writes as another role (BOLA writes), mass assignment, data exposure and stale
privileges have their own modules (authz_write.py, mass_assignment.py, exposure.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.dedup import merge_roles
from bastion.findings.evidence import exchange_evidence
from bastion.findings.model import Confidence, Finding, Severity
from bastion.identity.matrix import ALLOW, DENY, UNKNOWN, UNTESTED, WRITES_DENIED, AuthzCell, access_outcome
from bastion.identity.ownership import (
    ANONYMOUS,
    OWNER,
    UNSAFE_PATH,
    Page,
    admin_roles,
    allowed_roles,
    candidate_ids,
    is_2xx,
    is_admin_path,
    json_body,
    login_paths,
    owned_ids,
    page_texts,
    path_param,
    read_twin,
    role_field_hints,
    role_pages,
    seen_ids,
    write_request,
)
from bastion.surface.model import EntryPoint, Input
from bastion.surface.requests import RequestSpec, build_request
from bastion.target.exchange import Exchange

READ_METHODS = ("GET", "HEAD")
MAX_IDS_PER_ROLE = 6
# Share of the admin's distinctive content a non-admin response must carry to count as the same page.
BFLA_OVERLAP = 0.8
_WORD_MIN = 4
_WORD = re.compile(r"[\w@.+-]{4,}")


def _expected(role: str, allowed: tuple[str, ...]) -> str:
    """allow / deny from the policy; `owner` when it depends on who owns the object (judged by BOLA)."""
    if role in allowed or ANONYMOUS in allowed:
        return ALLOW
    return OWNER if OWNER in allowed else DENY


def _with_role(finding: Finding, role: str) -> Finding:
    return finding.model_copy(update={"role": role})


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text))


# --- policy drift -------------------------------------------------------------------------------------


@check(id="authz.policy-drift", threat="authz.policy-drift", scope="target", cost=190.0)
async def policy_drift(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Call every entry point named by the access policy as every role; report what the policy denies."""
    if not ctx.access:
        return
    roles = [ANONYMOUS, *ctx.roles]
    eps = {(ep.method, ep.path): ep for ep in ctx.surface.sorted()}
    findings: list[Finding] = []
    writes: list[tuple[EntryPoint, tuple[str, ...]]] = []
    for key in sorted(ctx.access):
        method, _, path = key.partition(" ")
        ep = eps.get((method, path))
        if ep is None:
            continue
        allowed = tuple(ctx.access[key])
        if method not in READ_METHODS:
            writes.append((ep, allowed))  # after every read: reads see the seeded data
            continue
        if UNSAFE_PATH.search(path):
            ctx.authz_matrix.extend(AuthzCell(method, path, r, _expected(r, allowed), UNTESTED,
                                              reason="ends the session") for r in roles)
            continue
        spec = build_request(ep)
        for role in roles:
            ex = await ctx.send_spec(spec, as_role=role)
            findings += _judge_cell(ctx, ep, role, allowed, _expected(role, allowed), ex, foreign=False)
    if writes:
        pages = await role_pages(ctx)
        for ep, allowed in writes:
            if not ctx.may_write(ep.method, ep.path):
                ctx.authz_matrix.extend(AuthzCell(ep.method, ep.path, r, _expected(r, allowed), UNTESTED,
                                                  reason=WRITES_DENIED) for r in roles)
                continue
            # Roles the policy refuses go first: the owners' own writes come last, then one reset per route.
            ordered = sorted(roles, key=lambda r: _expected(r, allowed) == ALLOW)
            used: set[str] = set()
            changed = False
            for role in ordered:
                cell_findings, wrote = await _write_cell(ctx, ep, role, allowed, pages, used)
                findings += cell_findings
                changed |= wrote
            if changed:
                await ctx.reset()  # the writes may have changed data the next probes rely on
    for finding in merge_roles(findings):
        yield finding


def _judge_cell(ctx: CheckContext, ep: EntryPoint, role: str, allowed: tuple[str, ...], expected: str,
                ex: Exchange, *, foreign: bool) -> list[Finding]:
    """Record the matrix cell for one probe and the finding when it contradicts the policy."""
    actual = access_outcome(ex, login_paths(ctx))
    if ex.status == 404 and "{" in ep.path and not foreign:
        actual = UNKNOWN  # the example object may simply not exist: not a refusal
    ctx.authz_matrix.append(AuthzCell(ep.method, ep.path, role, expected, actual, ex.status))
    policy = ", ".join(allowed)
    if expected == DENY and actual == ALLOW:
        summary = f"{ep.method} {ex.request.url} as {role}: {ex.status} although the policy allows only {policy}"
        return [_with_role(ctx.finding(
            title=f"Access policy not enforced on {ep.method} {ep.path}",
            confidence=Confidence.confirmed, evidence=exchange_evidence(ex, summary),
            location=ctx.location(ep=ep), url=ex.request.url), role)]
    if expected == ALLOW and actual == DENY:
        summary = f"{ep.method} {ex.request.url} as {role}: {ex.status} although the policy allows {policy}"
        return [_with_role(ctx.finding(
            title=f"Access policy stricter than declared on {ep.method} {ep.path}",
            severity=Severity.info, evidence=exchange_evidence(ex, summary),
            location=ctx.location(ep=ep)), role)]
    return []


def _foreign_object(ep: EntryPoint, inp: Input, role: str, pages: dict[str, list[Page]],
                    ctx: CheckContext, used: set[str]) -> tuple[str, str] | None:
    """(owner role, id) of an object another role sees as its own and `role` does not see at all.

    Ids another role already wrote to in this round are avoided when possible (a deleted object
    would make the next role's attempt look refused).
    """
    seen = seen_ids(ep, inp, pages)
    candidates = [(owner, object_id) for owner in ctx.roles if owner != role
                  for object_id in owned_ids(ep, inp, pages, owner, MAX_IDS_PER_ROLE)
                  if object_id not in seen.get(role, set())]
    fresh = [c for c in candidates if c[1] not in used]
    return next(iter(fresh or candidates), None)


async def _current_values(ctx: CheckContext, ep: EntryPoint, object_id: str | None, owner: str | None,
                          fallback: dict[str, Any]) -> dict[str, Any]:
    """The object's current fields as its owner reads them (a no-op update body), else `fallback`."""
    twin = read_twin(ctx, ep)
    inp = path_param(twin) if twin is not None else None
    if twin is None or inp is None or object_id is None:
        return fallback
    doc = json_body(await ctx.send_spec(build_request(twin, inp, object_id), as_role=owner))
    return {**fallback, **doc} if isinstance(doc, dict) else fallback


async def _write_cell(ctx: CheckContext, ep: EntryPoint, role: str, allowed: tuple[str, ...],
                      pages: dict[str, list[Page]], used: set[str]) -> tuple[list[Finding], bool]:
    """Probe one write policy cell as `role`, on an object another role owns when the route names one.

    Returns the findings and whether the write may have changed data (the caller resets).
    """
    inp = path_param(ep)
    found = _foreign_object(ep, inp, role, pages, ctx, used) if inp is not None else None
    if found:
        used.add(found[1])
    owner, object_id = found if found else (None, inp.example if inp is not None else None)
    hints = role_field_hints(pages, role if role in ctx.roles else next(iter(ctx.roles), ANONYMOUS))
    values = await _current_values(ctx, ep, object_id, owner, hints)
    spec: RequestSpec = write_request(ep, object_id, values)
    expected = _expected(role, allowed)
    if found and expected == OWNER:
        expected = DENY  # the object belongs to another role
    ex = await ctx.send_spec(spec, as_role=role)
    findings = _judge_cell(ctx, ep, role, allowed, expected, ex, foreign=found is not None)
    return findings, ex.status < 400 or ex.status >= 500


# --- BOLA -----------------------------------------------------------------------------------------------


def _distinctive_values(ex: Exchange) -> tuple[set[str], int]:
    """Values that identify the object (JSON leaf strings, else words) and how many must leak."""
    try:
        doc = json.loads(ex.text)
    except ValueError:
        # Words of a page are weaker evidence than JSON fields: ask for two.
        return _words(ex.text), 2
    values: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and len(node) >= _WORD_MIN:
            values.add(node)

    walk(doc)
    return values, 1


@check(id="authz.bola", threat="authz.bola", scope="entry", methods=("GET",), shard="check")
async def bola(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Read objects another role can see in its own pages as each other role; report leaked objects."""
    ep = ctx.ep
    inp = path_param(ep) if ep is not None else None
    if ep is None or inp is None or len(ctx.roles) < 2 or UNSAFE_PATH.search(ep.path):
        return
    pages = await role_pages(ctx)
    listings = page_texts(pages)
    policy = allowed_roles(ctx, ep)
    # Without a policy line, administrators are presumed to read every object; a policy says otherwise.
    allowed = policy if policy is not None else tuple(admin_roles(ctx))
    seen = seen_ids(ep, inp, pages)
    public = seen.get(ANONYMOUS, set())
    findings: list[Finding] = []
    for owner in ctx.roles:
        ids = [i for i in candidate_ids(ep, inp, listings[owner]) if i not in public][:MAX_IDS_PER_ROLE]
        for object_id in ids:
            findings += await _bola_object(ctx, ep, inp, owner, object_id, seen, listings, allowed,
                                           {f.role for f in findings})
    for finding in merge_roles(findings):
        yield finding


async def _bola_object(ctx: CheckContext, ep: EntryPoint, inp: Input, owner: str, object_id: str,
                       seen: dict[str, set[str]], listings: dict[str, list[str]],
                       allowed: tuple[str, ...], proven: set[str | None]) -> list[Finding]:
    """Findings for every role (not yet proven) that reads `owner`'s object `object_id`."""
    spec = build_request(ep, inp, object_id)
    mine = await ctx.send_spec(spec, as_role=owner)
    if not is_2xx(mine):
        return []
    anonymous = await ctx.send_spec(spec, as_role=ANONYMOUS)
    if is_2xx(anonymous):
        return []  # a public object: anyone may read it
    distinctive, needed = _distinctive_values(mine)
    values = {v for v in distinctive if v != object_id and v not in anonymous.text}
    out: list[Finding] = []
    for other in ctx.roles:
        # A role the policy names (or an admin) may read every object; so may one who sees it listed.
        if other == owner or other in proven or other in allowed or object_id in seen.get(other, set()):
            continue
        theirs = await ctx.send_spec(spec, as_role=other)
        if not is_2xx(theirs):
            continue
        own_pages = "\n".join(listings[other])
        leaked = sorted(v for v in values if v in theirs.text and v not in own_pages)
        if len(leaked) < needed:
            continue
        summary = (f"{ep.method} {ep.path} with {inp.name}={object_id}: {other} read an object of "
                   f"{owner} ({len(leaked)} of its values, e.g. {leaked[0][:40]!r})")
        out.append(_with_role(ctx.finding(
            title=f"Other users' objects readable at {ep.method} {ep.path} (BOLA)",
            confidence=Confidence.confirmed, evidence=exchange_evidence(theirs, summary, marker=leaked[0]),
            url=theirs.request.url), other))
    return out


# --- BFLA -----------------------------------------------------------------------------------------------


def _reserved_to(ctx: CheckContext, ep: EntryPoint, admins: set[str]) -> set[str] | None:
    """The admin roles `ep` is reserved to (by the policy, or by an admin path segment), else None."""
    allowed = allowed_roles(ctx, ep)
    if allowed is not None:
        if ANONYMOUS in allowed or OWNER in allowed or not set(allowed) <= admins:
            return None
        return set(allowed) & set(ctx.roles)
    if is_admin_path(ep.path):
        return admins
    return None


@check(id="authz.bfla", threat="authz.bfla", scope="entry", methods=("GET",), shard="check")
async def bfla(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Call admin-only entry points as every non-admin role; report those that get the admin's result."""
    ep = ctx.ep
    if ep is None or UNSAFE_PATH.search(ep.path):
        return
    admins = admin_roles(ctx)
    reserved = _reserved_to(ctx, ep, admins)
    users = [r for r in ctx.roles if r not in admins]
    if not reserved or not users:
        return
    spec = build_request(ep)
    admin_ex = await ctx.send_spec(spec, as_role=sorted(reserved)[0])
    if not is_2xx(admin_ex):
        return
    anonymous = await ctx.send_spec(spec, as_role=ANONYMOUS)
    admin_only = {w for w in _words(admin_ex.text) if w not in anonymous.text}
    if is_2xx(anonymous) or len(admin_only) < 3:
        return  # public, or nothing that tells the admin's page apart
    findings: list[Finding] = []
    for user in users:
        ex = await ctx.send_spec(spec, as_role=user)
        if not is_2xx(ex):
            continue
        shared = {w for w in admin_only if w in ex.text}
        if len(shared) < BFLA_OVERLAP * len(admin_only):
            continue
        summary = (f"{ep.method} {ep.path} as {user}: {ex.status} with {len(shared)}/{len(admin_only)} "
                   f"of the admin-only content")
        findings.append(_with_role(ctx.finding(
            title=f"Admin function {ep.method} {ep.path} callable by non-admins (BFLA)",
            confidence=Confidence.confirmed, evidence=exchange_evidence(ex, summary),
            url=ex.request.url), user))
    for finding in merge_roles(findings):
        yield finding
