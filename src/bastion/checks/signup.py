"""Sign-up mass assignment: a self-registration that stores the rights its caller asks for.

Found generically: the sign-up entry point (identity/autoroles.py: a POST on signup/register/users with
a password and a username or email field) and the login entry point. Two throw-away users are signed up,
one plainly, one with extra privileged fields (`admin: true`, `is_admin`, `role: "admin"`, `roles:
["admin"]`, plus the privilege-like fields the sign-up itself reads). Both log in; the finding is
confirmed when what the service shows about the privileged user (a self view: `/me`-like pages, the user
resource by username, listings naming the user) carries the privileged value where the plain user's does
not, or when the privileged user reaches a page the plain user is denied. Runs only where `writes:` allows
the sign-up; the target is reset afterwards.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.errors import BastionError
from bastion.findings.evidence import exchange_evidence, note
from bastion.findings.model import Confidence, Finding
from bastion.findings.redact import Redactor
from bastion.identity.autoroles import (
    EMAIL_FIELD,
    PRIVILEGE_FIELD,
    USER_FIELD,
    Credentials,
    find_login,
    find_signups,
    log_in,
    new_credentials,
    register,
    signed_up,
)
from bastion.identity.endpoints import AuthEndpoint
from bastion.identity.ownership import ANONYMOUS, is_2xx, path_param, readable_pages
from bastion.identity.session import RoleSession
from bastion.surface.model import EntryPoint, Input
from bastion.surface.requests import build_request
from bastion.target.exchange import Exchange

# What a client would add to its own sign-up to become an administrator (the common spellings).
PRIVILEGED_EXTRAS: dict[str, Any] = {"admin": True, "is_admin": True, "isAdmin": True, "role": "admin",
                                     "roles": ["admin"]}
PRIVILEGED_WORDS = ("admin", "superuser", "root", "staff")
# Self-view pages fetched per user (GET pages without parameters, and the user resource by name).
MAX_VIEW_PAGES = 20
# Sign-up entry points probed (each costs two or three new accounts).
MAX_SIGNUPS = 2


def _privileged(value: Any) -> bool:
    """Whether a stored field value grants rights: true/1, or an admin-like role name (alone or in a list)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    if isinstance(value, str):
        return value.lower() in ("true", "1") or any(w in value.lower() for w in PRIVILEGED_WORDS)
    if isinstance(value, list):
        return any(_privileged(v) for v in value if not isinstance(v, (bool, int)))
    return False


def _privileged_value(inp: Input) -> Any:
    """A value that asks for rights in the field's type: ["admin"], true/1, or the role name "admin"."""
    if inp.kind == "array":
        return ["admin"]
    if inp.kind == "integer":
        return 1
    if inp.kind == "boolean" or "admin" in inp.name.lower() or "superuser" in inp.name.lower():
        return True
    return "admin"  # role, group, type, plan, level: a name


def _declared_extras(ep: EntryPoint | None) -> dict[str, Any]:
    """The sign-up's own privilege-like fields (`admin`, `role`, ...) set to a privileged value."""
    return {inp.name: _privileged_value(inp) for inp in (ep.inputs if ep is not None else [])
            if inp.location in ("json", "form") and "." not in inp.name and PRIVILEGE_FIELD.search(inp.name)}


def _json(ex: Exchange) -> Any:
    try:
        return json.loads(ex.text)
    except ValueError:
        return None


def _user_objects(doc: Any, creds: Credentials) -> list[dict[str, Any]]:
    """JSON objects anywhere in `doc` that name the user (its username or email as a field value)."""
    names = {creds.username.lower(), creds.email.lower()}
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if any(isinstance(v, str) and v.lower() in names for v in node.values()):
                found.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for item in node[:200]:
                walk(item)

    walk(doc)
    return found


class _User:
    """One signed-up, logged-in throw-away user and what the service shows about it."""

    def __init__(self, creds: Credentials, signup: Exchange, session: RoleSession) -> None:
        self.creds, self.signup, self.session = creds, signup, session
        self.views: list[tuple[dict[str, Any], Exchange]] = [(o, signup) for o in _user_objects(_json(signup), creds)]
        self.pages: dict[str, Exchange] = {}


async def _send_as(ctx: CheckContext, user: _User, method: str, path: str, **kwargs: Any) -> Exchange:
    # The users are not scan roles: their credentials ride on the request itself.
    return await ctx.send(method, path, as_role=ANONYMOUS, **user.session.apply(kwargs))


async def _look(ctx: CheckContext, user: _User) -> None:
    """Fetch the self views: GET pages without parameters, and the user resource by username/email."""
    eps = readable_pages(ctx)[:MAX_VIEW_PAGES]
    for ep in eps:
        ex = await _send_as(ctx, user, "GET", ep.path)
        user.pages[ep.path] = ex
        user.views += [(o, ex) for o in _user_objects(_json(ex), user.creds)]
    for ep in ctx.surface.sorted():
        inp = path_param(ep)
        if ep.method != "GET" or inp is None or not (USER_FIELD.match(inp.name) or EMAIL_FIELD.match(inp.name)):
            continue
        value = user.creds.email if EMAIL_FIELD.match(inp.name) else user.creds.username
        spec = build_request(ep, inp, value)
        ex = await _send_as(ctx, user, "GET", spec.path)
        user.views += [(o, ex) for o in _user_objects(_json(ex), user.creds)]


def _escalated_field(plain: _User, privileged: _User) -> tuple[str, Any, Exchange] | None:
    """(field, value, exchange) where the privileged user shows a privileged value the plain user lacks."""
    plain_values: dict[str, list[Any]] = {}
    for obj, _ in plain.views:
        for key, value in obj.items():
            plain_values.setdefault(key, []).append(value)
    for obj, ex in privileged.views:
        for key, value in obj.items():
            if not PRIVILEGE_FIELD.search(key) or not _privileged(value):
                continue
            if key in plain_values and not any(_privileged(v) for v in plain_values[key]):
                return key, value, ex
    return None


def _reached(plain: _User, privileged: _User) -> tuple[str, Exchange, Exchange] | None:
    """A page the plain user is refused (401/403) and the privileged user reads (2xx)."""
    for path, ex in privileged.pages.items():
        theirs = plain.pages.get(path)
        if is_2xx(ex) and theirs is not None and theirs.status in (401, 403):
            return path, ex, theirs
    return None


async def _sign_up(ctx: CheckContext, signup: AuthEndpoint, login: AuthEndpoint,
                   extra: dict[str, Any] | None, name: str) -> _User | None:
    creds = new_credentials(ctx.rng)
    ex = await register(ctx.send, signup, creds, extra)
    if not signed_up(ex):
        return None
    try:
        session = await log_in(ctx.client, name, login, creds)
    except BastionError:
        return None
    return _User(creds, ex, session)


@check(id="authz.signup-mass-assignment", threat="authz.signup-mass-assignment", scope="target", cost=40.0)
async def signup_mass_assignment(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Sign up with `admin: true`-like extra fields; report when the new account got the rights it asked for."""
    login = find_login(ctx.surface)
    signups = [ep for ep in find_signups(ctx.surface) if ctx.may_write(ep.method, ep.path)][:MAX_SIGNUPS]
    if not signups or login is None:
        ctx.skip("no sign-up and login entry points where writes are allowed")
        return
    for ep in signups:
        found = await _probe(ctx, ep, login)
        await ctx.reset()  # the throw-away accounts go with the restored data
        if found is not None:
            yield found


async def _probe(ctx: CheckContext, ep: AuthEndpoint, login: AuthEndpoint) -> Finding | None:
    """Sign a plain and a privileged user up at `ep`; the finding when the privileged one got its rights."""
    plain = await _sign_up(ctx, ep, login, None, "signup-plain")
    if plain is None:
        return None
    declared = _declared_extras(ctx.surface.get(ep.method, ep.path))
    extras = {**PRIVILEGED_EXTRAS, **declared}
    privileged = await _sign_up(ctx, ep, login, extras, "signup-privileged")
    if privileged is None and declared:
        # A strict schema refuses unknown fields: ask again with only the fields the sign-up reads.
        extras = declared
        privileged = await _sign_up(ctx, ep, login, extras, "signup-privileged")
    if privileged is None:
        return None
    await _look(ctx, plain)
    await _look(ctx, privileged)
    finding = _finding(ctx, ep, extras, plain, privileged)
    if finding is None:
        return None
    secrets = [plain.creds.password, privileged.creds.password,
               *plain.session.secret_values(), *privileged.session.secret_values()]
    return Redactor(secrets).finding(finding)


def _finding(ctx: CheckContext, ep: AuthEndpoint, extras: dict[str, Any], plain: _User,
             privileged: _User) -> Finding | None:
    sent = ", ".join(f"{k}={json.dumps(v)}" for k, v in extras.items())
    signup_ev = exchange_evidence(privileged.signup, f"POST {ep.path} with {sent} accepted "
                                                     f"({privileged.signup.status})")
    shown = _escalated_field(plain, privileged)
    if shown is not None:
        key, value, ex = shown
        where = "the sign-up response" if ex is privileged.signup else f"GET {ex.request.url}"
        summary = (f"{where} shows {key}={json.dumps(value)} for the user signed up with {sent}; the user "
                   f"signed up without them shows no such right")
        # An echo in the sign-up answer may be the request reflected; a later read shows what was stored.
        confidence = Confidence.firm if ex is privileged.signup else Confidence.confirmed
        return ctx.finding(title=f"Sign-up at POST {ep.path} stores privileged fields the client sends "
                                 f"({key})", confidence=confidence,
                           evidence=[*signup_ev, *exchange_evidence(ex, summary, marker=key)],
                           location=ctx.location(method=ep.method, path=ep.path))
    reach = _reached(plain, privileged)
    if reach is not None:
        path, ex, refused = reach
        summary = (f"GET {path}: {ex.status} for the user signed up with {sent}, {refused.status} for the "
                   f"user signed up without them")
        return ctx.finding(title=f"Sign-up at POST {ep.path} grants the rights the client asks for",
                           confidence=Confidence.confirmed,
                           evidence=[*signup_ev, *exchange_evidence(ex, summary), note(
                               f"plain user: GET {path} answered {refused.status}")],
                           location=ctx.location(method=ep.method, path=ep.path))
    return None
