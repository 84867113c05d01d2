"""Zero-config identities: sign two throw-away users up through the service's own sign-up, log them in as roles.

A scan without declared roles sees only what anonymous visitors see and misses every authorization flaw.
When the service lets anyone register, Bastion does what any visitor could: it finds the sign-up entry
point (path words signup/register/registration/users, a POST reading a password and a username or email
field, JSON or an HTML form), registers two users with seeded names and strong passwords, finds the login
entry point (log-in/sign-in/token/auth with a password field; JSON, a form with CSRF, the OAuth2 password
form at /token) and logs them in with the ordinary login machinery as roles `auto-1` and `auto-2`. The
access policy is unknown, so the two are peers: the BOLA checks compare them.

It only runs when no role is configured and `auto_roles` is on (default: in-process targets, and URL
targets whose `writes:` setting allows the sign-up POST); at most MAX_SIGNUP_ATTEMPTS sign-up requests.
When sign-up or login fails the scan goes on anonymously with a warning. Passwords are secrets.
"""

from __future__ import annotations

import asyncio
import random
import re
import string
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

from bastion.engine.writes import WritePolicy
from bastion.errors import BastionError
from bastion.identity.endpoints import AuthEndpoint, FormSession, credentials, discover_auth, login_identity
from bastion.identity.login import login_role
from bastion.identity.ownership import AUTH_PATH, UNSAFE_PATH, is_admin_path, set_json
from bastion.identity.session import RoleSession
from bastion.model.schema import LoginConfig, RoleConfig
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.surface.requests import RequestSpec, build_request
from bastion.target.budget import Limits
from bastion.target.client import ProbeClient
from bastion.target.exchange import Exchange
from bastion.target.target import Target

AUTO_ROLES = ("auto-1", "auto-2")
# Sign-up requests one run may send to make its roles (each a new account on the target).
MAX_SIGNUP_ATTEMPTS = 4
# Create entry points each new role posts one object to (so that it owns something other roles may read).
MAX_SEED_ENDPOINTS = 3
# Explicit sign-up words rank before a bare `POST /users` (which may also be an admin's "create user").
_SIGNUP_WORDS = re.compile(r"sign-?up|regist|create-?account|join", re.IGNORECASE)
_LOGIN_WORDS = re.compile(r"log-?in|sign-?in", re.IGNORECASE)
USER_FIELD = re.compile(r"^(user(_?name)?|login|handle|nick(name)?|account(_?name)?)$", re.IGNORECASE)
EMAIL_FIELD = re.compile(r"^(e-?mail(_?address)?|mail)$", re.IGNORECASE)
# Fields that grant rights: never sent in a plain sign-up (the mass-assignment check sends them on purpose).
PRIVILEGE_FIELD = re.compile(r"admin|^roles?$|^is_?staff$|superuser|permissions?|^groups?$|^scopes?$|"
                             r"^plan$|^tier$|^level$|^type$", re.IGNORECASE)
EMAIL_DOMAIN = "example.com"  # reserved for documentation (RFC 2606): never anyone's mailbox
BODY_LOCATIONS = ("json", "form")
Send = Callable[..., Awaitable[Exchange]]


def _leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1].removesuffix("[]")


def _body_inputs(ep: EntryPoint) -> list[Input]:
    return [i for i in ep.inputs if i.location in BODY_LOCATIONS]


def find_signups(surface: Surface) -> list[AuthEndpoint]:
    """Self-registration endpoints (identity/endpoints.py finds them), the most explicit first."""
    found = [ep for ep in discover_auth(surface, {}).signups if "{" not in ep.path]
    return sorted(found, key=lambda ep: (not _SIGNUP_WORDS.search(ep.path), ep.path))


def find_login(surface: Surface) -> AuthEndpoint | None:
    """The login endpoint taking a username (or email) and a password; `/login` before `/token`."""
    found = [ep for ep in discover_auth(surface, {}).logins if "{" not in ep.path]
    return min(found, key=lambda ep: (not _LOGIN_WORDS.search(ep.path), ep.path), default=None)


@dataclass(frozen=True)
class Credentials:
    """One throw-away account: seeded name, an address at a reserved domain, a strong password."""

    username: str
    email: str
    password: str


def new_credentials(rng: random.Random) -> Credentials:
    """Fresh credentials that pass common strength rules (length, classes, not containing the name)."""
    name = "bastion_" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=8))
    chars = string.ascii_letters + string.digits
    password = "Bx7!" + "".join(rng.choices(chars, k=16)) + "#q2Z"
    return Credentials(name, f"{name}@{EMAIL_DOMAIN}", password)


def plain_signup(signup: AuthEndpoint) -> AuthEndpoint:
    """The sign-up without its privilege-like fields (a default `admin: "false"` may read as true)."""
    return replace(signup, fields={k: v for k, v in signup.fields.items() if not PRIVILEGE_FIELD.search(_leaf(k))})


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


async def register(send: Send, signup: AuthEndpoint, creds: Credentials,
                   extra: dict[str, Any] | None = None) -> Exchange:
    """Sign `creds` up (an HTML form's hidden fields, e.g. its CSRF token, included); `extra` fields added.

    `send` is a check's `ctx.send` or `client_send(client)`: `send(method, path, as_role=..., **kwargs)`.
    """
    values: dict[str, Any] = credentials(signup, creds.username, creds.password)
    if signup.user_field:
        values[signup.user_field] = creds.username
    if signup.email_field:
        values[signup.email_field] = creds.email
    for name, value in (extra or {}).items():
        # JSON keeps true/["admin"] as they are; a form can only carry text.
        values[name] = value if signup.body == "json" else _form_value(value)
    # (FormSession types values as text; JSON bodies carry them through unchanged.)
    return await FormSession(send).submit(plain_signup(signup), cast(Mapping[str, str], values))


def client_send(client: ProbeClient) -> Send:
    """A `send` over a bare client (before the scan: no check context, no role)."""

    async def send(method: str, path: str, *, as_role: str | None = None, **kwargs: Any) -> Exchange:
        return await client.request(method, path, **kwargs)

    return send


def signed_up(ex: Exchange) -> bool:
    """Whether a sign-up answer reads as accepted (2xx, or the post/redirect/get of a form)."""
    return ex.ok and (200 <= ex.status < 300 or ex.status in (301, 302, 303))


def login_config(login: AuthEndpoint, creds: Credentials) -> LoginConfig:
    """How `creds` log in at `login`: its identity (username or email) and password fields, JSON or a form."""
    body = credentials(login, login_identity(login, creds.username, creds.email), creds.password)
    if login.body == "json":
        return LoginConfig.model_validate({"path": login.path, "method": login.method,
                                           "json": {**login.fields, **body}})
    # A form's other fields come from its page (hidden CSRF token): a default would overwrite the real one.
    return LoginConfig.model_validate({"path": login.path, "method": login.method, "form": body,
                                       "form_page": login.form_page})


async def log_in(client: ProbeClient, name: str, login: AuthEndpoint, creds: Credentials) -> RoleSession:
    """Log a registered account in as role `name` (BastionError when the login is refused)."""
    role = RoleConfig(login=login_config(login, creds))
    session = await login_role(client, name, role)
    session.secrets.add(creds.password)
    return session


def seed_endpoints(surface: Surface, allowed: Callable[[str, str], bool]) -> list[EntryPoint]:
    """POST entry points that create an object of the caller's (not sign-up, login or admin routes)."""
    signups = {ep.path for ep in find_signups(surface)}
    found = [ep for ep in surface.sorted()
             if ep.method == "POST" and "{" not in ep.path and _body_inputs(ep) and allowed("POST", ep.path)
             and not (ep.path in signups or AUTH_PATH.search(ep.path) or UNSAFE_PATH.search(ep.path)
                      or is_admin_path(ep.path))]
    return found[:MAX_SEED_ENDPOINTS]


def seed_request(ep: EntryPoint, role: str, rng: random.Random) -> RequestSpec:
    """A create request whose text fields carry values unique to `role` (what BOLA looks for elsewhere)."""
    spec = build_request(ep)
    for inp in _body_inputs(ep):
        if inp.kind != "string" or "[]" in inp.name or PRIVILEGE_FIELD.search(_leaf(inp.name)) \
                or EMAIL_FIELD.match(_leaf(inp.name)) or USER_FIELD.match(_leaf(inp.name)):
            continue
        value = f"bastion-{role}-" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=8))
        if isinstance(spec.json, dict) and inp.location == "json":
            set_json(spec.json, inp.name, value)
        elif spec.form is not None and inp.location == "form":
            spec.form[inp.name] = value
    return spec


async def seed_objects(client: ProbeClient, session: RoleSession, eps: list[EntryPoint],
                       rng: random.Random) -> int:
    """Create one object per entry point as the role: a new account owns nothing a BOLA probe could read."""
    created = 0
    for ep in eps:
        spec = seed_request(ep, session.name, rng)
        ex = await client.request(spec.method, spec.path, **session.apply(spec.kwargs()))
        created += int(ex.ok and 200 <= ex.status < 300)
    return created


@dataclass
class AutoRoles:
    """What self-registration produced: the logged-in roles, their configs and accounts, and a console line."""

    roles: dict[str, RoleSession] = field(default_factory=dict)
    configs: dict[str, RoleConfig] = field(default_factory=dict)
    accounts: dict[str, Credentials] = field(default_factory=dict)
    message: str = ""

    @property
    def secrets(self) -> set[str]:
        return {c.password for c in self.accounts.values()}


async def sign_up_roles(client: ProbeClient, surface: Surface, seed: int,
                        allowed: Callable[[str, str], bool] = lambda _m, _p: True) -> AutoRoles:
    """Register and log in the AUTO_ROLES users, each creating its objects; a message saying what happened.

    `allowed(method, path)`: the scan's write policy (where the new roles may create objects).
    """
    signups = find_signups(surface)
    login = find_login(surface)
    if not signups:
        return AutoRoles(message="no roles configured and no sign-up entry point found: scanning anonymously")
    if login is None:
        return AutoRoles(message=f"no roles configured; sign-up at POST {signups[0].path} but no login entry "
                                 "point found: scanning anonymously")
    rng = random.Random(f"autoroles:{seed}")
    out = AutoRoles()
    attempts = 0
    failures: list[str] = []
    used: dict[str, AuthEndpoint] = {}
    for name in AUTO_ROLES:
        while name not in out.roles and attempts < MAX_SIGNUP_ATTEMPTS:
            ep = signups[min(attempts // 2, len(signups) - 1)]
            creds = new_credentials(rng)
            attempts += 1
            ex = await register(client_send(client), ep, creds)
            if not signed_up(ex):
                failures.append(f"sign-up at POST {ep.path} answered {ex.status or ex.error}")
                continue
            try:
                session = await log_in(client, name, login, creds)
            except BastionError as exc:
                failures.append(f"login at POST {login.path} refused the new account: {exc}")
                continue
            out.roles[name] = session
            used[name] = ep
            out.configs[name] = RoleConfig(login=login_config(login, creds))
            out.accounts[name] = creds
    if len(out.roles) < len(AUTO_ROLES):
        reason = failures[-1] if failures else "no attempt left"
        return AutoRoles(message=f"no roles configured and self-registration failed ({reason}): "
                                 "scanning anonymously")
    seeds = seed_endpoints(surface, allowed)
    for name, session in out.roles.items():
        session.refresher = _reregister(name, used[name], login, out.accounts[name], seeds, rng)
        await seed_objects(client, session, seeds, rng)
    users = ", ".join(f"{c.username} as {r}" for r, c in out.accounts.items())
    out.message = f"no roles configured: registered {users} at POST {used[AUTO_ROLES[0]].path}, logged in " \
                  f"at POST {login.path}"
    return out


def _reregister(name: str, signup: AuthEndpoint, login: AuthEndpoint, creds: Credentials, seeds: list[EntryPoint],
                rng: random.Random) -> Callable[[ProbeClient, RoleSession], Awaitable[None]]:
    """Log the account in again; a reset hook that restored the seeded data removed it: register it again."""

    async def refresh(client: ProbeClient, session: RoleSession) -> None:
        recreated = False
        try:
            fresh = await log_in(client, name, login, creds)
        except BastionError:
            await register(client_send(client), signup, creds)
            fresh = await log_in(client, name, login, creds)
            recreated = True
        session.headers.clear()
        session.headers.update(fresh.headers)
        session.cookies.clear()
        session.cookies.update(fresh.cookies)
        session.secrets.update(fresh.secrets)
        session.take_lifetime(fresh)
        if recreated:  # its objects went with the account
            await seed_objects(client, session, seeds, rng)

    return refresh


def _renew_after_reset(target: Target, sessions: list[RoleSession]) -> None:
    """Wrap the target's reset hook: restoring the seeded data deletes the new accounts, so renew them next."""
    hook = target.reset_hook
    if hook is None:
        return

    def reset_then_renew(app: Any) -> Any:
        outcome = hook(app)
        for session in sessions:
            session.set_expiry(0.0)  # expired: the next request as the role logs in (or signs up) again
        return outcome

    target.reset_hook = reset_then_renew


def wanted(cfg: Any, options: Any, in_process: bool, surface: Surface, setting: bool | None = None) -> bool:
    """Whether to self-register: no role configured, `auto_roles` not off, and the sign-up POST allowed."""
    if options.roles or (cfg is not None and any(n != "anonymous" for n in cfg.roles)):
        return False
    if setting is None and cfg is not None:
        setting = getattr(cfg, "auto_roles", None)
    if setting is False:
        return False
    # Each sign-up creates an account: only where `writes:` allows it (by default in-process, never by URL).
    writes = options.writes or WritePolicy.resolve("auto", in_process=in_process)
    signups = find_signups(surface)
    # In-process with no sign-up at all: still "wanted", so the console warns that the scan is anonymous.
    return any(writes.allows(ep.method, ep.path) for ep in signups) or (
        in_process and writes.mode != "none" and not signups)


def add_auto_roles(target: Target, surface: Surface, options: Any, cfg: Any = None,
                   limits: Limits | None = None, setting: bool | None = None) -> str | None:
    """Self-register AUTO_ROLES into `options` (roles, role configs, secrets) when wanted; the console line.

    `setting`: the `--auto-roles/--no-auto-roles` switch (None: the model's `auto_roles`, else the default).
    """
    if not wanted(cfg, options, target.in_process, surface, setting):
        return None
    writes = options.writes or WritePolicy.resolve("auto", in_process=target.in_process)

    async def run() -> AutoRoles:
        async with target.running(), ProbeClient(target, limits=limits) as client:
            return await sign_up_roles(client, surface, options.seed, writes.allows)

    made = asyncio.run(run())
    _renew_after_reset(target, list(made.roles.values()))
    options.roles.update(made.roles)
    options.role_configs.update(made.configs)
    options.secrets = sorted({*options.secrets, *made.secrets})
    prefix = "bastion: " if made.roles else "bastion: warning: "
    print(prefix + made.message, file=sys.stderr)
    return made.message

