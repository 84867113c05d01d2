"""Mass assignment: privileged fields (`role`, `is_admin`, `owner_id` ...) accepted by update endpoints.

For every JSON/form POST, PUT and PATCH entry point a role may call (and the `writes:` setting
allows), the check sends the usual body plus privileged fields, then reads the object back (the
same route's GET, or the role's own profile page for account updates) and reports the fields whose
new value persisted. Privilege fields are also judged by their effect: an admin-only page the role
was refused before and reaches afterwards (same session, then a fresh login). The target is reset
after every probe that may have changed data.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.dedup import merge_roles
from bastion.findings.evidence import exchange_evidence, note
from bastion.findings.model import Confidence, Finding, Severity
from bastion.identity.matrix import ALLOW, DENY, access_outcome
from bastion.identity.ownership import (
    ANONYMOUS,
    AUTH_PATH,
    UNSAFE_PATH,
    Page,
    SelfView,
    admin_roles,
    allowed_roles,
    get_json,
    is_admin_path,
    json_body,
    login_paths,
    owned_ids,
    path_param,
    read_twin,
    relogin,
    role_field_hints,
    role_pages,
    self_views,
    write_request,
)
from bastion.surface.model import EntryPoint
from bastion.surface.requests import RequestSpec, build_request

UPDATE_METHODS = ("POST", "PUT", "PATCH")
MAX_ENDPOINTS = 12
MAX_OBJECTS = 3
MAX_ESCALATION_PAGES = 6
# Account-update routes whose object is the caller itself, read back on the caller's profile page.
_SELF_ROUTE = re.compile(r"(^|/)(me|self|profile|account|settings|preferences|user)(/|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Field:
    """A privileged field to send: name, value, and whether it grants rights or ownership."""

    name: str
    value: Any
    kind: str  # privilege | ownership


@dataclass
class ReadBack:
    """Where to read the object a write changes: the GET request and the role reading it."""

    ep: EntryPoint
    object_id: str | None
    read: RequestSpec


@check(id="authz.mass-assignment", threat="authz.mass-assignment", scope="target", cost=180.0)
async def mass_assignment(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Send privileged extra fields to update endpoints; report those persisted (read back)."""
    if not ctx.roles:
        return
    pages = await role_pages(ctx)
    selves = self_views(pages, list(ctx.roles))
    admins = admin_roles(ctx)
    # Administrators may legitimately set roles; the attackers are everyone else.
    roles = [r for r in ctx.roles if r not in admins] or list(ctx.roles)
    findings: list[Finding] = []
    dirty = False
    # The cap counts only endpoints with an object to read back: the others cost nothing and would
    # otherwise crowd out, in path order, the ones that can be tested.
    readable = [ep for ep in _update_endpoints(ctx)
                if any(_read_targets(ctx, ep, role, pages, selves) for role in roles)]
    for ep in readable[:MAX_ENDPOINTS]:
        for role in roles:
            allowed = allowed_roles(ctx, ep)
            if allowed is not None and role not in allowed and "owner" not in allowed:
                continue
            finding, wrote = await _probe_endpoint(ctx, ep, role, pages, selves)
            if finding is not None:
                findings.append(finding)
                # The fields took: undo them, and replace the session the escalation probe may have opened
                # while the role held the privilege (an app that caches roles per session would keep it).
                await ctx.reset(relogin=[role])
            else:
                dirty |= wrote  # accepted but nothing privileged took: restore once, at the end
    if dirty:
        await ctx.reset()
    for finding in merge_roles(findings):
        yield finding


def _update_endpoints(ctx: CheckContext) -> list[EntryPoint]:
    return [ep for ep in ctx.surface.sorted()
            if ep.method in UPDATE_METHODS and ep.body_locations & {"json", "form"}
            and not AUTH_PATH.search(ep.path) and not UNSAFE_PATH.search(ep.path)
            and not any(p and ep.path.rstrip("/") == p.rstrip("/") for p in login_paths(ctx))
            and ctx.may_write(ep.method, ep.path)]


def _read_targets(ctx: CheckContext, ep: EntryPoint, role: str, pages: dict[str, list[Page]],
                  selves: dict[str, SelfView]) -> list[ReadBack]:
    """Objects of `role` the write can change, each with the GET that shows it."""
    twin = read_twin(ctx, ep)
    inp = path_param(ep)
    if twin is not None and inp is not None:
        twin_inp = path_param(twin)
        if twin_inp is None:
            return []
        return [ReadBack(twin, oid, build_request(twin, twin_inp, oid))
                for oid in owned_ids(ep, inp, pages, role, MAX_OBJECTS)]
    if twin is not None and not any(i.location == "path" for i in twin.inputs):
        return [ReadBack(twin, None, build_request(twin))]
    own = selves.get(role)
    if inp is None and own is not None and (_SELF_ROUTE.search(ep.path) or _shares_segment(ep.path, own.ep.path)):
        return [ReadBack(own.ep, None, build_request(own.ep))]
    return []


def _shares_segment(a: str, b: str) -> bool:
    last = [s for s in a.split("/") if s and "{" not in s][-1:]
    return bool(last) and last[0] in b.split("/")


def _fields(ctx: CheckContext, ep: EntryPoint, before: dict[str, Any], role: str,
            pages: dict[str, list[Page]], selves: dict[str, SelfView]) -> list[Field]:
    """The corpus fields plus privileged-looking fields the object shows but the endpoint does not declare."""
    declared = {i.name for i in ep.inputs}
    patterns = [re.compile(p, re.IGNORECASE) for p in ctx.payloads.get("mass_assignment_privileged")]
    corpus = {e["name"]: e for e in ctx.payloads.get("mass_assignment_fields")}
    names = list(corpus)
    names += [k for k in before if k not in corpus and k not in declared and any(p.fullmatch(k) for p in patterns)]
    out: list[Field] = []
    for name in names:
        entry = corpus.get(name, {"value": None, "kind": "ownership" if re.search("id$|owner", name) else "privilege"})
        value = _new_value(name, before.get(name), entry["value"], role, pages, selves, admin_roles(ctx))
        if value is not None:
            out.append(Field(name, value, entry["kind"]))
    return out


def _new_value(name: str, current: Any, default: Any, role: str, pages: dict[str, list[Page]],
               selves: dict[str, SelfView], admins: set[str]) -> Any:
    """A value differing from the current one: what another role holds (admins first), else the default."""
    if isinstance(current, bool):
        return not current
    others = sorted((r for r in selves if r != role), key=lambda r: r not in admins)
    for other in others:
        held = selves[other].data.get(name)
        if held is not None and held != current and type(held) is type(current):
            return held
    for other in others:
        held = role_field_hints(pages, other).get(name)
        if held is not None and held != current and (current is None or type(held) is type(current)):
            return held
    if isinstance(current, (int, float)) and not name.endswith("id"):
        return current + 1000
    return default if default != current else None


async def _probe_endpoint(ctx: CheckContext, ep: EntryPoint, role: str, pages: dict[str, list[Page]],
                          selves: dict[str, SelfView]) -> tuple[Finding | None, bool]:
    """Try a readable object of `role` behind `ep`: a finding when it takes the fields; whether it wrote."""
    for target in _read_targets(ctx, ep, role, pages, selves):
        before_ex = await ctx.send_spec(target.read, as_role=role)
        before = json_body(before_ex)
        if not isinstance(before, dict):
            continue
        fields = _fields(ctx, ep, before, role, pages, selves)
        denied = await _denied_pages(ctx, role)
        spec = write_request(ep, target.object_id, {**role_field_hints(pages, role), **before})
        for f in fields:
            _set_field(spec, ep, f)
        sent = await ctx.send_spec(spec, as_role=role)
        if sent.status >= 400 and sent.status < 500:
            return None, False  # refused (unknown fields rejected, or not allowed): nothing changed
        after_ex = await ctx.send_spec(target.read, as_role=role)
        after = json_body(after_ex)
        persisted = [f for f in fields if isinstance(after, dict) and f.name in before
                     and before.get(f.name) != f.value and get_json(after, f.name) == f.value]
        gained = await _escalation(ctx, role, denied) if any(f.kind == "privilege" for f in fields) else []
        if persisted or gained:
            return _finding(ctx, ep, role, sent, after_ex, persisted, fields, gained), True
        return None, True
    return None, False


def _set_field(spec: RequestSpec, ep: EntryPoint, f: Field) -> None:
    if isinstance(spec.json, dict) or (spec.form is None and "json" in ep.body_locations):
        spec.json = spec.json if isinstance(spec.json, dict) else {}
        spec.json[f.name] = f.value
    elif spec.form is not None and not isinstance(f.value, (list, dict)):
        spec.form[f.name] = str(f.value).lower() if isinstance(f.value, bool) else str(f.value)


async def _denied_pages(ctx: CheckContext, role: str) -> list[EntryPoint]:
    """Pages reserved to other roles (by policy, or admin paths) the role is refused now: where escalation shows."""
    admins = admin_roles(ctx)
    out: list[EntryPoint] = []
    for ep in ctx.surface.sorted():
        if ep.method != "GET" or UNSAFE_PATH.search(ep.path) or any(i.location == "path" for i in ep.inputs):
            continue
        allowed = allowed_roles(ctx, ep)
        # A page the policy keeps from this role, or an admin path without a policy line.
        reserved = (allowed is not None and ANONYMOUS not in allowed and "owner" not in allowed
                    and role not in allowed) or (allowed is None and is_admin_path(ep.path) and role not in admins)
        if not reserved:
            continue
        ex = await ctx.send_spec(build_request(ep), as_role=role)
        if access_outcome(ex, login_paths(ctx)) == DENY:
            out.append(ep)
        if len(out) >= MAX_ESCALATION_PAGES:
            break
    return out


async def _escalation(ctx: CheckContext, role: str, denied: list[EntryPoint]) -> list[str]:
    """The refused pages the role reaches now: in its session, else after logging in again."""
    for attempt in range(2):
        reached = []
        for ep in denied:
            ex = await ctx.send_spec(build_request(ep), as_role=role)
            if access_outcome(ex, login_paths(ctx)) == ALLOW:
                reached.append(ep.key)
        if reached or attempt or not await relogin(ctx, role):
            return reached
    return []


def _finding(ctx: CheckContext, ep: EntryPoint, role: str, sent: Any, after: Any, persisted: list[Field],
             fields: list[Field], gained: list[str]) -> Finding:
    names = ", ".join(f"{f.name}={f.value!r}" for f in persisted) or ", ".join(f.name for f in fields)
    summary = (f"{ep.method} {ep.path} as {role} with extra fields; read back: "
               f"{names if persisted else 'not shown'}")
    evidence = exchange_evidence(sent, summary)
    if persisted:
        evidence += exchange_evidence(after, f"read back as {role}: {names} persisted",
                                      marker=f'"{persisted[0].name}"')[1:]
    if gained:
        evidence.append(note(f"afterwards {role} reaches pages it was refused before: {', '.join(gained)}"))
    what = ", ".join(f.name for f in persisted) or "privileged fields"
    return ctx.finding(
        title=f"Mass assignment of {what} at {ep.method} {ep.path}"
              + (" grants admin-only pages" if gained else ""),
        severity=Severity.critical if gained else None, confidence=Confidence.confirmed,
        evidence=evidence, location=ctx.location(ep=ep)).model_copy(update={"role": role})
