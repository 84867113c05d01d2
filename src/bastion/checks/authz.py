"""Authorization checks: the declared access policy as a role × entry-point matrix, BOLA and BFLA.

All probes here are GET requests: state-changing authorization probes (PUT/PATCH/DELETE as another
role) need the write-permission rules of a later slice, so policy lines for other methods are
recorded in the matrix as untested.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence
from bastion.findings.model import Confidence, Finding, Severity
from bastion.identity.matrix import ALLOW, DENY, UNKNOWN, AuthzCell, access_outcome
from bastion.surface.model import EntryPoint, Input
from bastion.surface.requests import build_request
from bastion.target.exchange import Exchange

ANONYMOUS = "anonymous"
OWNER = "owner"
READ_METHODS = ("GET", "HEAD")
# Reading these would end the role's session or change state even on GET: never probe them.
_UNSAFE_GET = re.compile(r"log-?out|sign-?out|delete|remove|destroy|revoke", re.IGNORECASE)
# Path segments that conventionally hold administrative functions (policy-free BFLA).
_ADMIN_SEGMENT = re.compile(r"^(admin|administrator|administration|manage|management|internal|staff|"
                            r"superuser|backoffice)$", re.IGNORECASE)
_WORD = re.compile(r"[\w@.+-]{4,}")
_ID_KEY = re.compile(r"^(id|uuid|.+_id|.+Id)$")
MAX_IDS_PER_ROLE = 6
MAX_LISTING_PAGES = 40
# Share of the admin's distinctive content a non-admin response must carry to count as the same page.
BFLA_OVERLAP = 0.8


def _login_paths(ctx: CheckContext) -> tuple[str, ...]:
    return tuple(s.login_path for s in ctx.roles.values() if s.login_path)


def _allowed(ctx: CheckContext, ep: EntryPoint) -> tuple[str, ...] | None:
    roles = ctx.access.get(f"{ep.method} {ep.path}")
    return None if roles is None else tuple(roles)


def _expected(role: str, allowed: tuple[str, ...]) -> str:
    """allow / deny from the policy; `owner` when it depends on who owns the object (judged by BOLA)."""
    if role in allowed or ANONYMOUS in allowed:
        return ALLOW
    return OWNER if OWNER in allowed else DENY


def _is_2xx(ex: Exchange) -> bool:
    return ex.ok and 200 <= ex.status < 300


def _with_role(finding: Finding, role: str) -> Finding:
    return finding.model_copy(update={"role": role})


# --- policy drift -------------------------------------------------------------------------------------


@check(id="authz.policy-drift", threat="authz.policy-drift", scope="target")
async def policy_drift(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Call every entry point named by the access policy as every role; report what the policy denies."""
    if not ctx.access:
        return
    roles = [ANONYMOUS, *ctx.roles]
    eps = {(ep.method, ep.path): ep for ep in ctx.surface.sorted()}
    for key in sorted(ctx.access):
        method, _, path = key.partition(" ")
        ep = eps.get((method, path))
        if ep is None:
            continue
        allowed = tuple(ctx.access[key])
        if method not in READ_METHODS or _UNSAFE_GET.search(path):
            ctx.authz_matrix.extend(AuthzCell(method, path, r, _expected(r, allowed), "untested") for r in roles)
            continue
        spec = build_request(ep)
        for role in roles:
            async for finding in _policy_cell(ctx, ep, spec, role, allowed):
                yield finding


async def _policy_cell(ctx: CheckContext, ep: EntryPoint, spec: Any, role: str,
                       allowed: tuple[str, ...]) -> AsyncIterator[Finding]:
    expected = _expected(role, allowed)
    ex = await ctx.send_spec(spec, as_role=role)
    actual = access_outcome(ex, _login_paths(ctx))
    if ex.status == 404 and "{" in ep.path:
        actual = UNKNOWN  # the example object may simply not exist: not a refusal
    ctx.authz_matrix.append(AuthzCell(ep.method, ep.path, role, expected, actual, ex.status))
    policy = ", ".join(allowed)
    if expected == DENY and actual == ALLOW:
        summary = f"{ep.method} {ep.path} as {role}: {ex.status} although the policy allows only {policy}"
        yield _with_role(ctx.finding(
            title=f"Access policy not enforced: {role} can call {ep.method} {ep.path}",
            confidence=Confidence.confirmed, evidence=exchange_evidence(ex, summary),
            location=ctx.location(ep=ep), url=ex.request.url), role)
    elif expected == ALLOW and actual == DENY:
        summary = f"{ep.method} {ep.path} as {role}: {ex.status} although the policy allows {policy}"
        yield _with_role(ctx.finding(
            title=f"Access policy stricter than declared: {role} is refused {ep.method} {ep.path}",
            severity=Severity.info, evidence=exchange_evidence(ex, summary),
            location=ctx.location(ep=ep)), role)


# --- BOLA -----------------------------------------------------------------------------------------------


def _path_param(ep: EntryPoint) -> Input | None:
    params = [i for i in ep.inputs if i.location == "path"]
    return params[0] if len(params) == 1 else None


async def _listings(ctx: CheckContext) -> dict[str, list[str]]:
    """Per role (anonymous included): bodies of the GET pages without path parameters, fetched once."""
    lock = ctx.memo.setdefault("listings-lock", asyncio.Lock())
    async with lock:
        if "listings" not in ctx.memo:
            pages = [ep for ep in ctx.surface.sorted()
                     if ep.method == "GET" and not _UNSAFE_GET.search(ep.path)
                     and not any(i.location == "path" for i in ep.inputs)][:MAX_LISTING_PAGES]
            out: dict[str, list[str]] = {}
            for role in [ANONYMOUS, *ctx.roles]:
                exchanges = [await ctx.send_spec(build_request(ep), as_role=role) for ep in pages]
                out[role] = [ex.text for ex in exchanges if _is_2xx(ex)]
            ctx.memo["listings"] = out
    listings: dict[str, list[str]] = ctx.memo["listings"]
    return listings


def _json_ids(node: Any, param: str) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if (key == param or _ID_KEY.match(str(key))) and isinstance(value, (int, str)) \
                    and not isinstance(value, bool):
                yield str(value)
            else:
                yield from _json_ids(value, param)
    elif isinstance(node, list):
        for item in node:
            yield from _json_ids(item, param)


def _template_regex(ep: EntryPoint, param: str) -> re.Pattern[str]:
    """The entry point's path with `param` as a capture group (other parameters match a segment)."""
    parts = re.split(r"(\{[^}]+\})", ep.path)
    regex = "".join("([A-Za-z0-9_.~-]{1,64})" if p == "{" + param + "}" else "[^/\"'<>\\s]+" if p.startswith("{")
                    else re.escape(p) for p in parts)
    return re.compile(regex + r"(?![A-Za-z0-9_.~/-])")


def _candidate_ids(ep: EntryPoint, inp: Input, texts: list[str], example: bool = True) -> list[str]:
    """Object ids a role saw in its own pages: links matching the path, and id fields of JSON."""
    pattern = _template_regex(ep, inp.name)
    ids: list[str] = []
    for text in texts:
        ids += pattern.findall(text)
        try:
            ids += list(_json_ids(json.loads(text), inp.name))
        except ValueError:
            pass
    if example and inp.example:
        ids.append(inp.example)
    return list(dict.fromkeys(i for i in ids if i))


def _distinctive_values(ex: Exchange) -> tuple[set[str], int]:
    """Values that identify the object (JSON leaf strings, else words) and how many must leak."""
    try:
        doc = json.loads(ex.text)
    except ValueError:
        # Words of a page are weaker evidence than JSON fields: ask for two.
        return set(_WORD.findall(ex.text)), 2
    values: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and len(node) >= 4:
            values.add(node)

    walk(doc)
    return values, 1


def _object_url(ep: EntryPoint, inp: Input, object_id: str) -> Any:
    return build_request(ep, inp, object_id)


@check(id="authz.bola", threat="authz.bola", scope="entry", methods=("GET",))
async def bola(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Read objects another role can see in its own pages as each other role; report leaked objects."""
    ep = ctx.ep
    inp = _path_param(ep) if ep is not None else None
    if ep is None or inp is None or len(ctx.roles) < 2 or _UNSAFE_GET.search(ep.path):
        return
    listings = await _listings(ctx)
    policy = _allowed(ctx, ep)
    # Without a policy line, administrators are presumed to read every object; a policy says otherwise.
    allowed = policy if policy is not None else tuple(_admin_roles(ctx))
    seen = {role: set(_candidate_ids(ep, inp, listings[role], example=False)) for role in ctx.roles}
    public = set(_candidate_ids(ep, inp, listings[ANONYMOUS], example=False))
    for owner in ctx.roles:
        ids = [i for i in _candidate_ids(ep, inp, listings[owner]) if i not in public][:MAX_IDS_PER_ROLE]
        for object_id in ids:
            async for finding in _bola_object(ctx, ep, inp, owner, object_id, seen, listings, allowed):
                yield finding


async def _bola_object(ctx: CheckContext, ep: EntryPoint, inp: Input, owner: str, object_id: str,
                       seen: dict[str, set[str]], listings: dict[str, list[str]],
                       allowed: tuple[str, ...]) -> AsyncIterator[Finding]:
    spec = _object_url(ep, inp, object_id)
    mine = await ctx.send_spec(spec, as_role=owner)
    if not _is_2xx(mine):
        return
    anonymous = await ctx.send_spec(spec, as_role=ANONYMOUS)
    if _is_2xx(anonymous):
        return  # a public object: anyone may read it
    distinctive, needed = _distinctive_values(mine)
    values = {v for v in distinctive if v != object_id and v not in anonymous.text}
    for other in ctx.roles:
        # A role the policy names (or an admin) may read every object; so may one who sees it listed.
        if other == owner or other in allowed or object_id in seen[other]:
            continue
        theirs = await ctx.send_spec(spec, as_role=other)
        if not _is_2xx(theirs):
            continue
        own_pages = "\n".join(listings[other])
        leaked = sorted(v for v in values if v in theirs.text and v not in own_pages)
        if len(leaked) < needed:
            continue
        summary = (f"{ep.method} {ep.path} with {inp.name}={object_id}: {other} read an object of "
                   f"{owner} ({len(leaked)} of its values, e.g. {leaked[0][:40]!r})")
        yield _with_role(ctx.finding(
            title=f"{other} can read {owner}'s object at {ep.method} {ep.path} (BOLA)",
            confidence=Confidence.confirmed, evidence=exchange_evidence(theirs, summary, marker=leaked[0]),
            url=theirs.request.url), other)
        return  # one proof per object is enough


# --- BFLA -----------------------------------------------------------------------------------------------


def _admin_roles(ctx: CheckContext) -> set[str]:
    """Roles named like administrators, plus the roles policy lines on admin paths are reserved to."""
    admins = {r for r in ctx.roles if "admin" in r.lower()}
    for key, roles in ctx.access.items():
        path = key.partition(" ")[2]
        if any(_ADMIN_SEGMENT.match(seg) for seg in path.split("/")):
            admins |= {r for r in roles if r in ctx.roles}
    return admins


def _reserved_to(ctx: CheckContext, ep: EntryPoint, admins: set[str]) -> set[str] | None:
    """The admin roles `ep` is reserved to (by the policy, or by an admin path segment), else None."""
    allowed = _allowed(ctx, ep)
    if allowed is not None:
        if ANONYMOUS in allowed or OWNER in allowed or not set(allowed) <= admins:
            return None
        return set(allowed) & set(ctx.roles)
    if any(_ADMIN_SEGMENT.match(seg) for seg in ep.path.split("/")):
        return admins
    return None


@check(id="authz.bfla", threat="authz.bfla", scope="entry", methods=("GET",))
async def bfla(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Call admin-only entry points as every non-admin role; report those that get the admin's result."""
    ep = ctx.ep
    if ep is None or _UNSAFE_GET.search(ep.path):
        return
    admins = _admin_roles(ctx)
    reserved = _reserved_to(ctx, ep, admins)
    users = [r for r in ctx.roles if r not in admins]
    if not reserved or not users:
        return
    spec = build_request(ep)
    admin_ex = await ctx.send_spec(spec, as_role=sorted(reserved)[0])
    if not _is_2xx(admin_ex):
        return
    anonymous = await ctx.send_spec(spec, as_role=ANONYMOUS)
    admin_only = {w for w in _WORD.findall(admin_ex.text) if w not in anonymous.text}
    if _is_2xx(anonymous) or len(admin_only) < 3:
        return  # public, or nothing that tells the admin's page apart
    for user in users:
        ex = await ctx.send_spec(spec, as_role=user)
        if not _is_2xx(ex):
            continue
        shared = {w for w in admin_only if w in ex.text}
        if len(shared) < BFLA_OVERLAP * len(admin_only):
            continue
        summary = (f"{ep.method} {ep.path} as {user}: {ex.status} with {len(shared)}/{len(admin_only)} "
                   f"of the admin-only content")
        yield _with_role(ctx.finding(
            title=f"{user} can call the admin function {ep.method} {ep.path} (BFLA)",
            confidence=Confidence.confirmed, evidence=exchange_evidence(ex, summary),
            url=ex.request.url), user)
