"""What each role sees and owns: its pages, the object ids in them, its own profile, the admin roles.

Shared by the authorization checks (policy matrix, BOLA, mass assignment, data exposure): they learn
object ids from a role's own responses and act on them as another role. Nothing here knows any
particular app: ids come from links matching a route template and from `id`-like JSON fields.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.surface.model import EntryPoint, Input
from bastion.surface.requests import RequestSpec, build_request
from bastion.target.exchange import Exchange

if TYPE_CHECKING:
    from bastion.engine.context import CheckContext

ANONYMOUS = "anonymous"
OWNER = "owner"
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Calling these would end the role's session or change state even on GET: never probe them as reads.
UNSAFE_PATH = re.compile(r"log-?out|sign-?out|delete|remove|destroy|revoke", re.IGNORECASE)
# Path segments that conventionally hold administrative functions.
ADMIN_SEGMENT = re.compile(r"^(admin|administrator|administration|manage|management|internal|staff|"
                           r"superuser|backoffice)$", re.IGNORECASE)
# Where an app handles credentials: a write there logs in, resets or changes a password, not data.
AUTH_PATH = re.compile(r"log-?in|sign-?(in|up|out)|log-?out|register|password|passwd|auth|token|session|"
                       r"oauth|otp|mfa|2fa|verify|confirm", re.IGNORECASE)
_ID_KEY = re.compile(r"^(id|uuid|.+_id|.+Id)$")
MAX_LISTING_PAGES = 40


@dataclass(frozen=True)
class Page:
    """One GET page as fetched by one role."""

    ep: EntryPoint
    exchange: Exchange

    @property
    def json(self) -> Any:
        return json_body(self.exchange)


async def relogin(ctx: CheckContext, role: str) -> bool:
    """Log `role` in again (a fresh session); False when it cannot (no login flow, or the login refused).

    A second factor may refuse a code replayed within its time step: that is the target doing its
    job, so the caller gives up its probe instead of failing the check.
    """
    from bastion.errors import BastionError

    try:
        return await ctx.roles[role].refresh(ctx.client)
    except BastionError:
        return False


def is_2xx(ex: Exchange) -> bool:
    return ex.ok and 200 <= ex.status < 300


def json_body(ex: Exchange) -> Any:
    """The parsed JSON body of a successful JSON response, else None."""
    if not is_2xx(ex) or "json" not in (ex.header("content-type") or ""):
        return None
    try:
        return json.loads(ex.text)
    except ValueError:
        return None


def login_paths(ctx: CheckContext) -> tuple[str, ...]:
    return tuple(s.login_path for s in ctx.roles.values() if s.login_path)


def allowed_roles(ctx: CheckContext, ep: EntryPoint) -> tuple[str, ...] | None:
    """The roles the access policy allows on `ep`, or None when the policy does not name it."""
    roles = ctx.access.get(f"{ep.method} {ep.path}")
    return None if roles is None else tuple(roles)


def admin_roles(ctx: CheckContext) -> set[str]:
    """Roles named like administrators, plus the roles policy lines on admin paths are reserved to."""
    admins = {r for r in ctx.roles if "admin" in r.lower()}
    for key, roles in ctx.access.items():
        path = key.partition(" ")[2]
        if any(ADMIN_SEGMENT.match(seg) for seg in path.split("/")):
            admins |= {r for r in roles if r in ctx.roles}
    return admins


def is_admin_path(path: str) -> bool:
    return any(ADMIN_SEGMENT.match(seg) for seg in path.split("/"))


def readable_pages(ctx: CheckContext) -> list[EntryPoint]:
    """GET entry points without path parameters that are safe to call as any role."""
    return [ep for ep in ctx.surface.sorted()
            if ep.method == "GET" and not UNSAFE_PATH.search(ep.path)
            and not any(i.location == "path" for i in ep.inputs)][:MAX_LISTING_PAGES]


async def role_pages(ctx: CheckContext) -> dict[str, list[Page]]:
    """Per role (anonymous included): the 2xx GET pages without path parameters, fetched once per check."""
    lock = ctx.memo.setdefault("role-pages-lock", asyncio.Lock())
    async with lock:
        if "role-pages" not in ctx.memo:
            ctx.memo["role-pages"] = await fetch_role_pages(ctx)
    pages: dict[str, list[Page]] = ctx.memo["role-pages"]
    return pages


async def fetch_role_pages(ctx: CheckContext) -> dict[str, list[Page]]:
    """The same as `role_pages`, fetched now (after a write, the cached copy may be stale)."""
    out: dict[str, list[Page]] = {}
    eps = readable_pages(ctx)
    for role in [ANONYMOUS, *ctx.roles]:
        exchanges = [(ep, await ctx.send_spec(build_request(ep), as_role=role)) for ep in eps]
        out[role] = [Page(ep, ex) for ep, ex in exchanges if is_2xx(ex)]
    return out


def page_texts(pages: dict[str, list[Page]]) -> dict[str, list[str]]:
    return {role: [p.exchange.text for p in items] for role, items in pages.items()}


def json_ids(node: Any, param: str) -> Iterator[str]:
    """Values of `param` and of id-like keys anywhere in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if (key == param or _ID_KEY.match(str(key))) and isinstance(value, (int, str)) \
                    and not isinstance(value, bool):
                yield str(value)
            else:
                yield from json_ids(value, param)
    elif isinstance(node, list):
        for item in node:
            yield from json_ids(item, param)


def template_regex(ep: EntryPoint, param: str) -> re.Pattern[str]:
    """The entry point's path with `param` as a capture group (other parameters match a segment)."""
    parts = re.split(r"(\{[^}]+\})", ep.path)
    regex = "".join("([A-Za-z0-9_.~-]{1,64})" if p == "{" + param + "}" else "[^/\"'<>\\s]+" if p.startswith("{")
                    else re.escape(p) for p in parts)
    return re.compile(regex + r"(?![A-Za-z0-9_.~/-])")


def candidate_ids(ep: EntryPoint, inp: Input, texts: list[str], example: bool = True) -> list[str]:
    """Object ids a role saw in its own pages: links matching the path, and id fields of JSON."""
    pattern = template_regex(ep, inp.name)
    ids: list[str] = []
    for text in texts:
        ids += pattern.findall(text)
        try:
            ids += list(json_ids(json.loads(text), inp.name))
        except ValueError:
            pass
    if example and inp.example:
        ids.append(inp.example)
    # An integer parameter never takes a word: `/invoices/export` is another route, not an object.
    numeric = inp.kind == "integer"
    return list(dict.fromkeys(i for i in ids if i and (not numeric or i.lstrip("-").isdigit())))


def path_param(ep: EntryPoint) -> Input | None:
    params = [i for i in ep.inputs if i.location == "path"]
    return params[0] if len(params) == 1 else None


def read_twin(ctx: CheckContext, ep: EntryPoint) -> EntryPoint | None:
    """The GET entry point on the same route as a write entry point (to read its object back)."""
    twin = ctx.surface.get("GET", ep.path)
    return twin if twin is not None and not UNSAFE_PATH.search(twin.path) else None


def owned_ids(ep: EntryPoint, inp: Input, pages: dict[str, list[Page]], owner: str,
              limit: int) -> list[str]:
    """Ids of `ep`'s objects `owner` sees in its pages that anonymous visitors do not (its own, likely)."""
    texts = page_texts(pages)
    public = set(candidate_ids(ep, inp, texts.get(ANONYMOUS, []), example=False))
    return [i for i in candidate_ids(ep, inp, texts.get(owner, []), example=False) if i not in public][:limit]


def seen_ids(ep: EntryPoint, inp: Input, pages: dict[str, list[Page]]) -> dict[str, set[str]]:
    """Per role: every id of `ep`'s objects the role sees listed in its own pages."""
    return {role: set(candidate_ids(ep, inp, texts, example=False)) for role, texts in page_texts(pages).items()}


@dataclass(frozen=True)
class SelfView:
    """A role's own profile: the page showing who the role is, and its parsed JSON object."""

    ep: EntryPoint
    data: dict[str, Any]

    @property
    def user_id(self) -> str | None:
        value = self.data.get("id", self.data.get("user_id"))
        return None if value is None or isinstance(value, bool) else str(value)


def self_views(pages: dict[str, list[Page]], roles: list[str]) -> dict[str, SelfView]:
    """Each role's profile page: a GET page answering a JSON object whose `id` differs for every role.

    The same page answering each logged-in role with a different id is the "who am I" page of the
    app (`/me`, `/profile`, `/account` ...), whatever it is called.
    """
    if len(roles) < 2:
        return {}
    by_ep: dict[str, dict[str, SelfView]] = {}
    for role in roles:
        for page in pages.get(role, []):
            doc = page.json
            if isinstance(doc, dict) and ("id" in doc or "user_id" in doc):
                view = SelfView(page.ep, doc)
                if view.user_id is not None:
                    by_ep.setdefault(page.ep.key, {})[role] = view
    for views in by_ep.values():
        ids = [v.user_id for v in views.values()]
        if len(views) == len(roles) and len(set(ids)) == len(ids):
            return views
    return {}


def field_values(node: Any, out: dict[str, Any] | None = None) -> dict[str, Any]:
    """The first scalar value of every key (dotted for nested objects) in a JSON document."""
    out = {} if out is None else out

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, f"{prefix}.{key}" if prefix else str(key))
        elif isinstance(value, list):
            for item in value[:5]:
                walk(item, prefix + "[]" if prefix else "")
        elif prefix and prefix not in out:
            out[prefix] = value

    walk(node, "")
    return out


def role_field_hints(pages: dict[str, list[Page]], role: str) -> dict[str, Any]:
    """Values the role's own pages show per field name (leaf and dotted names), to fill request bodies."""
    hints: dict[str, Any] = {}
    for page in pages.get(role, []):
        values = field_values(page.json)
        for key, value in values.items():
            hints.setdefault(key, value)
            hints.setdefault(key.rsplit(".", 1)[-1].removesuffix("[]"), value)
    return hints


def write_request(ep: EntryPoint, object_id: str | None, values: dict[str, Any]) -> RequestSpec:
    """A request for a write entry point on `object_id`, body fields taken from `values` when known.

    Values come from the object's own representation (a no-op update) or what the role's pages
    show for the same field names, so the request passes validation without inventing data.
    """
    inp = path_param(ep)
    spec = build_request(ep, inp, object_id) if inp is not None and object_id is not None else build_request(ep)
    for field in ep.inputs:
        if field.location not in ("json", "form") or field.name not in values:
            continue
        value = values[field.name]
        if isinstance(value, (dict, list)) or value is None:
            continue
        if field.location == "json" and isinstance(spec.json, dict):
            set_json(spec.json, field.name, value)
        elif field.location == "form" and spec.form is not None:
            spec.form[field.name] = str(value).lower() if isinstance(value, bool) else str(value)
    return spec


def set_json(doc: dict[str, Any], name: str, value: Any) -> None:
    """Set a dotted JSON field (`a.b`) in a request body, creating objects on the way."""
    parts = name.replace("[]", "").split(".")
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def get_json(doc: Any, name: str) -> Any:
    """A dotted JSON field of a document, or None."""
    node = doc
    for part in name.replace("[]", "").split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
