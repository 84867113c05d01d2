"""Where a service changes a user's rights, found generically (shared by the stale-privilege and audit checks).

Two shapes: a write on one user carrying a rights field (`PATCH /users/{id}` `{"role": ...}`,
`PUT /users/{id}/role`, or any write the access policy keeps for admin-like roles with such a field), and
a membership removal (`DELETE /teams/{team_id}/members/{user_id}`) with the group's own pages
(`GET /teams/{team_id}/...`) that membership opens.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any
from urllib.parse import quote

from bastion.engine.context import CheckContext
from bastion.identity.ownership import UNSAFE_PATH, SelfView, admin_roles, allowed_roles, set_json, write_request
from bastion.surface.model import EntryPoint, Input
from bastion.surface.requests import RequestSpec, build_request

# A collection of user accounts, and the body fields that carry a user's rights.
USER_SEGMENT = re.compile(r"^(users?|accounts?|members?|people|staff|principals?)$", re.IGNORECASE)
ROLE_FIELD = re.compile(r"^(role|roles|is_?admin|admin|is_?staff|is_?superuser|groups?|permissions?|scopes?|plan|"
                        r"user_?type)$", re.IGNORECASE)
# Rights granted through a sub-resource of a user (`/users/{id}/role`), and the members of a group.
RIGHTS_SEGMENT = re.compile(r"^(roles?|permissions?|scopes?|groups?|plan|privileges?|grants?)$", re.IGNORECASE)
MEMBER_SEGMENT = re.compile(r"^(members?|memberships?|users?|accounts?|people|staff|principals?)$", re.IGNORECASE)
MAX_ROUTES = 4
# Group ids tried per group page (from the role's own pages).
MAX_GROUP_IDS = 3


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _segments(ep: EntryPoint) -> list[str]:
    return [s for s in ep.path.split("/") if s]


def _path_params(ep: EntryPoint) -> list[Input]:
    return [i for i in ep.inputs if i.location == "path"]


def rights_field(ep: EntryPoint) -> str | None:
    """The body field carrying rights: a role-like input, else the name of a `/role`-like last segment."""
    field = next((i.name for i in ep.inputs if i.location in ("json", "form") and ROLE_FIELD.match(i.name)), None)
    segments = _segments(ep)
    if field is None and segments and RIGHTS_SEGMENT.match(segments[-1]) and ep.body_locations:
        return segments[-1]
    return field


def role_update_routes(ctx: CheckContext) -> list[tuple[EntryPoint, str]]:
    """(route, rights field) for writes on one user (by id) that carry a role/permissions/groups/... field.

    A route qualifies by its path (a user-like collection followed by the id) or by the access policy
    (only admin-like roles may call it); writes must be allowed on it.
    """
    out = []
    admins = admin_roles(ctx)
    for ep in ctx.surface.sorted():
        if ep.method not in ("PUT", "PATCH", "POST") or len(_path_params(ep)) != 1 \
                or not ctx.may_write(ep.method, ep.path):
            continue
        user_like = any(USER_SEGMENT.match(a) and _is_param(b) for a, b in pairwise(_segments(ep)))
        policy = allowed_roles(ctx, ep)
        admin_only = policy is not None and bool(policy) and set(policy) <= admins
        field = rights_field(ep)
        if field is not None and (user_like or admin_only):
            out.append((ep, field))
    return out[:MAX_ROUTES]


def membership_routes(ctx: CheckContext) -> list[EntryPoint]:
    """DELETE `/<group>/{gid}/<members>/{uid}`: removing a user from a group (team, project, organisation)."""
    out = []
    for ep in ctx.surface.sorted():
        segments = _segments(ep)
        if ep.method != "DELETE" or len(_path_params(ep)) != 2 or len(segments) < 4 \
                or not ctx.may_write(ep.method, ep.path):
            continue
        if _is_param(segments[-1]) and MEMBER_SEGMENT.match(segments[-2]) and _is_param(segments[-3]):
            out.append(ep)
    return out[:MAX_ROUTES]


def group_pages(ctx: CheckContext, removal: EntryPoint) -> list[tuple[EntryPoint, Input]]:
    """GET pages of one group (`/<group>/{gid}/...`, no other path parameter), with their gid input."""
    segments = _segments(removal)
    prefix = "/" + "/".join(segments[:-2])
    gid_name = segments[-3][1:-1]
    out = []
    for page in ctx.surface.sorted():
        params = _path_params(page)
        if page.method == "GET" and page.path.startswith(prefix + "/") and len(params) == 1 \
                and params[0].name == gid_name and not UNSAFE_PATH.search(page.path):
            out.append((page, params[0]))
    return out


def role_values(field: str, admin: SelfView | None, user: SelfView) -> tuple[Any, Any]:
    """(promote, demote) values of the rights field: what the admin's and the user's profiles show."""
    high, low = (admin.data.get(field) if admin else None), user.data.get(field)
    if isinstance(low, bool) or isinstance(high, bool):
        return True, False
    if isinstance(high, list) or isinstance(low, list):
        return (high if isinstance(high, list) else ["admin"]), (low if isinstance(low, list) else [])
    return (high if high is not None else "admin"), (low if low is not None else "user")


def rights_request(ep: EntryPoint, user_id: str, field: str, value: Any) -> RequestSpec:
    """A write of `field = value` for one user (lists and booleans sent as JSON values)."""
    spec = write_request(ep, user_id, {})
    if isinstance(spec.json, dict) or (spec.form is None and "json" in ep.body_locations):
        spec.json = spec.json if isinstance(spec.json, dict) else {}
        set_json(spec.json, field, value)
    elif spec.form is not None:
        spec.form[field] = ",".join(map(str, value)) if isinstance(value, list) else (
            str(value).lower() if isinstance(value, bool) else str(value))
    else:
        spec.json = {field: value}
    return spec


def removal_request(removal: EntryPoint, gid: str, user_id: str) -> RequestSpec:
    """The membership removal of `user_id` from group `gid`."""
    gid_inp, uid_inp = _path_params(removal)
    spec = build_request(removal)
    path = removal.path
    for name, value in ((gid_inp.name, gid), (uid_inp.name, user_id)):
        path = path.replace(f"{{{name}}}", quote(value, safe=""))
    spec.path = path
    return spec
