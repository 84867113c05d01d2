"""Where a service logs people in, signs them up, resets and changes passwords — found generically.

Sources, most trusted first: the roles' login configs (path, fields, credentials), then the surface
(entry points whose path and field names say what they are). Known accounts come only from the
role configs: Bastion never guesses a target's users.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import quote

from bastion.identity.login import login_form_fields, update_cookies
from bastion.identity.matrix import is_login_redirect
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.surface.requests import default_value
from bastion.target.exchange import Exchange

Send = Callable[..., Awaitable[Exchange]]
_PATH_PARAM = re.compile(r"\{[^}]+\}")
Kind = Literal["login", "signup", "reset", "reset_confirm", "password_change"]

_PASSWORD = re.compile(r"pass(word|wd)?|pwd|secret", re.IGNORECASE)
_CONFIRM = re.compile(r"confirm|repeat|again|retype|verify|password_?2|passwd2|pwd2", re.IGNORECASE)
_CURRENT = re.compile(r"current|old|existing", re.IGNORECASE)
_EMAIL = re.compile(r"e[-_]?mail", re.IGNORECASE)
_USER = re.compile(r"^(user(_?name)?|login|account|handle|identifier|uid)$|user_?name", re.IGNORECASE)
_TOKEN = re.compile(r"token|code|key|nonce", re.IGNORECASE)
_LOGIN_PATH = re.compile(r"log-?in|sign-?in|session|auth|token", re.IGNORECASE)
_SIGNUP_PATH = re.compile(r"regist|sign-?up|join|(users?|accounts?|members?)/?$", re.IGNORECASE)
_RESET_PATH = re.compile(r"reset|forgot|recover|lost", re.IGNORECASE)
_CONFIRM_PATH = re.compile(r"confirm|complete|verify|set|new|finish|\{", re.IGNORECASE)
_CHANGE_PATH = re.compile(r"password|passwd|credential", re.IGNORECASE)
_NOT_LOGIN = re.compile(r"regist|sign-?up|reset|forgot|recover|change|logout|sign-?out|mfa|otp|2fa|"
                        r"totp|verify|refresh|revoke", re.IGNORECASE)
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,185}\.[A-Za-z]{2,24}")
_PROFILE_PATH = re.compile(r"account|profile|me$|/me/|settings|user$|whoami", re.IGNORECASE)
_UNSAFE_PATH = re.compile(r"log-?out|sign-?out|delete|remove|destroy|revoke", re.IGNORECASE)
BODY_LOCATIONS = ("form", "json", "multipart")


@dataclass(frozen=True)
class AuthEndpoint:
    """One credential endpoint: where it posts, how, and what each field means."""

    kind: Kind
    method: str
    path: str
    body: Literal["form", "json"]
    fields: dict[str, str] = field(default_factory=dict)  # every field with a benign default value
    user_field: str | None = None
    email_field: str | None = None
    password_field: str | None = None
    confirm_fields: tuple[str, ...] = ()
    current_password_field: str | None = None
    token_field: str | None = None
    # Page holding the HTML form (its hidden fields, e.g. a CSRF token, are sent along).
    form_page: str | None = None
    source: str = "surface"

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def identity_field(self) -> str | None:
        """The field naming the account (email first for resets, username first otherwise)."""
        if self.kind == "reset":
            return self.email_field or self.user_field
        return self.user_field or self.email_field


@dataclass(frozen=True)
class Account:
    """A known, configured account: its role, login endpoint and credentials."""

    role: str
    username: str
    password: str
    login: AuthEndpoint
    email: str | None = None


@dataclass(frozen=True)
class AuthSurface:
    """Every credential endpoint found, plus the configured accounts."""

    logins: list[AuthEndpoint] = field(default_factory=list)
    signups: list[AuthEndpoint] = field(default_factory=list)
    resets: list[AuthEndpoint] = field(default_factory=list)
    reset_confirms: list[AuthEndpoint] = field(default_factory=list)
    password_changes: list[AuthEndpoint] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)


def _classify(name: str) -> str | None:
    """What a field holds: password, confirm, current, email, user, token, or None."""
    leaf = name.rsplit(".", 1)[-1]
    if _PASSWORD.search(leaf):
        if _CONFIRM.search(leaf):
            return "confirm"
        if _CURRENT.search(leaf):
            return "current"
        return "password"
    if _EMAIL.search(leaf):
        return "email"
    if _USER.search(leaf):
        return "user"
    if _TOKEN.search(leaf):
        return "token"
    return None


def _endpoint_from_fields(kind: Kind, method: str, path: str, body: Literal["form", "json"],
                          fields: dict[str, str], form_page: str | None, source: str) -> AuthEndpoint:
    roles: dict[str, list[str]] = {}
    for name in fields:
        role = _classify(name)
        if role:
            roles.setdefault(role, []).append(name)
    first = {role: names[0] for role, names in roles.items()}
    passwords = roles.get("password", [])
    confirms = tuple(roles.get("confirm", []))
    # `new_password` + `password`: with a current-password field, the extra ones confirm the new one.
    if len(passwords) > 1:
        confirms = (*confirms, *passwords[1:])
    return AuthEndpoint(kind=kind, method=method, path=path, body=body, fields=fields,
                        user_field=first.get("user"), email_field=first.get("email"),
                        password_field=first.get("password"), confirm_fields=confirms,
                        current_password_field=first.get("current"), token_field=first.get("token"),
                        form_page=form_page, source=source)


def _body_inputs(ep: EntryPoint, has_page: bool) -> tuple[Literal["form", "json"], list[Input]] | None:
    # Behind an HTML page the form is what browsers send (and what carries its CSRF token).
    order = ("form", "multipart", "json") if has_page else ("json", "form", "multipart")
    for location in order:
        inputs = [i for i in ep.inputs if i.location == location and "[]" not in i.name]
        if inputs:
            return ("json" if location == "json" else "form"), inputs
    return None


def _surface_endpoint(kind: Kind, ep: EntryPoint, surface: Surface) -> AuthEndpoint | None:
    has_page = surface.get("GET", ep.path) is not None
    found = _body_inputs(ep, has_page)
    if found is None:
        return None
    body, inputs = found
    fields = {i.name: default_value(i) for i in inputs}
    page = ep.path if body == "form" and has_page else None
    return _endpoint_from_fields(kind, ep.method, ep.path, body, fields, page, "surface")


def _login_from_config(role: Any) -> tuple[AuthEndpoint, dict[str, str]] | None:
    """The role's login endpoint and its configured values (None for non-login roles)."""
    login = getattr(role, "login", None)
    if login is None:
        return None
    raw = login.json_body if login.json_body is not None else login.form
    if not raw:
        return None
    values = {k: str(v) for k, v in raw.items() if not isinstance(v, dict | list)}
    body: Literal["form", "json"] = "json" if login.json_body is not None else "form"
    page = login.form_page or (login.path if body == "form" else None)
    ep = _endpoint_from_fields("login", login.method, login.path, body, values, page, "config")
    # The endpoint keeps the fixed fields only: credentials are filled in per request.
    secret = {ep.user_field, ep.email_field, ep.password_field, ep.current_password_field, *ep.confirm_fields}
    return replace(ep, fields={k: ("" if k in secret else v) for k, v in values.items()}), values


def _accounts(role_configs: Mapping[str, Any]) -> tuple[list[AuthEndpoint], list[Account]]:
    logins: dict[str, AuthEndpoint] = {}
    accounts: list[Account] = []
    for name, role in role_configs.items():
        found = _login_from_config(role)
        if found is None:
            continue
        ep, values = found
        # One endpoint per path; its default fields are the first role's (credentials swapped per use).
        ep = logins.setdefault(ep.key, ep)
        user_field = ep.user_field or ep.email_field
        if user_field is None or ep.password_field is None:
            continue
        username, password = values.get(user_field, ""), values.get(ep.password_field, "")
        if not username or not password:
            continue
        email = values.get(ep.email_field or "") or (username if "@" in username else None)
        accounts.append(Account(role=name, username=username, password=password, login=ep, email=email))
    return list(logins.values()), accounts


def _surface_logins(surface: Surface, known: set[str]) -> list[AuthEndpoint]:
    out = []
    for ep in surface.sorted():
        if ep.method != "POST" or ep.path in known or _NOT_LOGIN.search(ep.path) or not _LOGIN_PATH.search(ep.path):
            continue
        auth = _surface_endpoint("login", ep, surface)
        if auth and auth.password_field and auth.identity_field and not auth.confirm_fields:
            out.append(auth)
    return out


def discover_auth(surface: Surface, role_configs: Mapping[str, Any]) -> AuthSurface:
    """Login, sign-up, reset, reset-confirm and password-change endpoints, and the configured accounts."""
    logins, accounts = _accounts(role_configs)
    logins += _surface_logins(surface, {ep.path for ep in logins})
    signups, resets, confirms, changes = [], [], [], []
    for ep in surface.sorted():
        if ep.method not in ("POST", "PUT", "PATCH"):
            continue
        auth = _surface_endpoint("signup", ep, surface)
        if auth is None:
            continue
        has_password = auth.password_field is not None
        if _RESET_PATH.search(ep.path):
            names_token = _CONFIRM_PATH.search(f"{ep.path}/{auth.token_field or ''}")
            if has_password and (auth.token_field or "{" in ep.path) and names_token:
                confirms.append(replace(auth, kind="reset_confirm"))
            elif not has_password and auth.identity_field:
                resets.append(replace(auth, kind="reset"))
        elif has_password and auth.current_password_field and _CHANGE_PATH.search(ep.path):
            changes.append(replace(auth, kind="password_change"))
        elif (has_password and ep.method == "POST" and _SIGNUP_PATH.search(ep.path)
              and auth.identity_field and not auth.current_password_field):
            signups.append(auth)
    return AuthSurface(logins=logins, signups=signups, resets=resets, reset_confirms=confirms,
                       password_changes=changes, accounts=accounts)


async def role_emails(send: Send, surface: Surface, roles: list[str], max_pages: int = 4) -> dict[str, str]:
    """Each role's e-mail address, read from its own profile-like pages (absent from the anonymous view)."""
    pages = [ep.path for ep in surface.sorted()
             if ep.method == "GET" and "{" not in ep.path and _PROFILE_PATH.search(ep.path.rstrip("/"))
             and not _UNSAFE_PATH.search(ep.path)][:max_pages]
    out: dict[str, str] = {}
    for path in pages:
        if len(out) == len(roles):
            break
        anonymous = set(_EMAIL_IN_TEXT.findall((await send("GET", path, as_role="anonymous")).text))
        for role in roles:
            if role in out:
                continue
            ex = await send("GET", path, as_role=role)
            if not (ex.ok and 200 <= ex.status < 300):
                continue
            own = [e for e in dict.fromkeys(_EMAIL_IN_TEXT.findall(ex.text)) if e not in anonymous]
            if len(own) == 1:  # several addresses: we cannot tell which is the role's own
                out[role] = own[0]
    return out


class FormSession:
    """Submits an auth endpoint like a browser: fetches the form page first (CSRF token, cookies)."""

    def __init__(self, send: Send, *, as_role: str = "anonymous") -> None:
        self.send = send
        self.as_role = as_role
        self.cookies: dict[str, str] = {}

    async def hidden_fields(self, ep: AuthEndpoint) -> dict[str, str]:
        if ep.body != "form" or not ep.form_page:
            return {}
        page = await self.send("GET", ep.form_page, as_role=self.as_role, cookies=dict(self.cookies),
                               follow_redirects=True)
        update_cookies(self.cookies, page)
        if not (page.ok and page.status < 400):
            return {}
        return login_form_fields(page.text, page.request.url, ep.path) or {}

    async def submit(self, ep: AuthEndpoint, values: Mapping[str, str], *, in_query: bool = False,
                     method: str | None = None, path: str | None = None) -> Exchange:
        """Send `ep` with its defaults overlaid by `values`; `in_query` moves `values` to the URL."""
        hidden = await self.hidden_fields(ep)
        body = {**ep.fields, **hidden}
        params: dict[str, str] | None = None
        if in_query:
            params = dict(values)
            for name in values:
                body.pop(name, None)
        else:
            body.update(values)
        kwargs: dict[str, Any] = {"params": params, "cookies": dict(self.cookies)}
        if ep.body == "json":
            kwargs["json"] = body
        else:
            kwargs["data"] = body
        ex = await self.send(method or ep.method, path or ep.path, as_role=self.as_role, **kwargs)
        update_cookies(self.cookies, ex)
        return ex


def credentials(ep: AuthEndpoint, identity: str, password: str) -> dict[str, str]:
    """The values that log `identity` in at `ep` (its identity field and password field)."""
    out: dict[str, str] = {}
    if ep.identity_field:
        out[ep.identity_field] = identity
    if ep.password_field:
        out[ep.password_field] = password
    for name in ep.confirm_fields:
        out[name] = password
    return out


def login_accepted(ex: Exchange, failed: Exchange, login_path: str) -> bool:
    """Whether `ex` looks like a successful login, given a known failed login on the same endpoint.

    Success: 2xx/3xx, not sent back to the login page, and a credential the failure did not get (a new
    cookie name, a token in JSON) or a different redirect target.
    """
    if not (ex.ok and 200 <= ex.status < 400) or is_login_redirect(ex, (login_path,)):
        return False
    if failed.ok and 200 <= failed.status < 400 and signature_of(ex) == signature_of(failed):
        return False
    new_cookies = set(cookie_names(ex)) - set(cookie_names(failed))
    token = '"token"' in ex.text or '_token"' in ex.text or '"jwt"' in ex.text
    moved = ex.header("location") != failed.header("location") and ex.status in (301, 302, 303, 307, 308)
    return bool(new_cookies) or token or moved or (failed.status >= 400)


def cookie_names(ex: Exchange) -> list[str]:
    """Names of cookies set (with a value) by a response."""
    names = []
    for raw in ex.header_values("set-cookie"):
        name, _, rest = raw.partition("=")
        value = rest.split(";", 1)[0].strip()
        if value and "max-age=0" not in raw.lower():
            names.append(name.strip())
    return sorted(set(names))


def signature_of(ex: Exchange) -> tuple[int, str, tuple[str, ...]]:
    """Status, redirect path and cookie names: what tells outcomes of one endpoint apart."""
    location = (ex.header("location") or "").split("?", 1)[0]
    return ex.status, location, tuple(cookie_names(ex))


def strong_password(canary: str) -> str:
    """A password every sane policy accepts (length, classes, not common), unique to the probe."""
    return f"Bst-{canary}-9xQ!"


@dataclass(frozen=True)
class Throwaway:
    """An account Bastion signed up itself, so probes never lock or change a real user."""

    username: str
    email: str
    password: str
    signup: Exchange


async def sign_up(send: Send, signup: AuthEndpoint, username: str, email: str, password: str) -> Exchange:
    """Submit the sign-up endpoint for one new account."""
    values = credentials(signup, username, password)
    if signup.user_field:
        values[signup.user_field] = username
    if signup.email_field:
        values[signup.email_field] = email
    return await FormSession(send).submit(signup, values)


async def confirm_reset(send: Send, confirm: AuthEndpoint, token: str, password: str) -> Exchange:
    """Submit the reset confirmation with `token` (a field, or the path parameter) and a new password."""
    values = credentials(confirm, "", password)
    values.pop(confirm.identity_field or "\0", None)
    path = confirm.path
    if confirm.token_field:
        values[confirm.token_field] = token
    else:
        path = _PATH_PARAM.sub(quote(token, safe=""), path)
    return await FormSession(send).submit(confirm, values, path=path)


def bogus_like(token: str, canary: str) -> str:
    """A made-up token of the same length (a control the service must refuse)."""
    return (canary * (len(token) // len(canary) + 1))[:len(token)]


async def sign_up_throwaway(send: Send, signup: AuthEndpoint, login: AuthEndpoint | None,
                            canary: str) -> Throwaway | None:
    """Sign up a canary account; None unless the service accepted it (and it can log in, if checked)."""
    from bastion.identity.autoroles import plain_signup  # autoroles builds on this module

    username, email, password = canary, f"{canary}@example.com", strong_password(canary)
    # Privilege-like fields stay out: a default `admin: "false"` reads as true on some services.
    ex = await sign_up(send, plain_signup(signup), username, email, password)
    if not (ex.ok and ex.status < 400):
        return None
    account = Throwaway(username=username, email=email, password=password, signup=ex)
    if login is not None:
        identity = email if login.identity_field == login.email_field and login.email_field else username
        failed = await FormSession(send).submit(login, credentials(login, identity, password + "x"))
        ok = await FormSession(send).submit(login, credentials(login, identity, password))
        if not login_accepted(ok, failed, login.path):
            return None
    return account


def login_identity(login: AuthEndpoint, username: str, email: str) -> str:
    """What to type into `login`'s identity field for an account with this username and e-mail."""
    return email if login.email_field and login.identity_field == login.email_field else username


_LIMIT_WORDS = re.compile(r"too many|locked|lock-?out|try again (later|in)|temporarily|captcha|slow down|"
                          r"rate.?limit|wait \d+", re.IGNORECASE)
LIMIT_STATUSES = (423, 429, 503)


def limit_sign(ex: Exchange, usual: Exchange | None = None) -> str | None:
    """What in `ex` says the service is limiting attempts (status, Retry-After, a lock message), or None.

    A lock message only counts when the response differs from the `usual` answer, so a page that
    always mentions "try again later" is not mistaken for a limit.
    """
    if ex.status in LIMIT_STATUSES:
        return f"status {ex.status}"
    if ex.header("retry-after"):
        return "Retry-After header"
    if not ex.ok:
        return f"no response ({ex.error})"
    if usual is not None and ex.status == usual.status and ex.text == usual.text:
        return None
    m = _LIMIT_WORDS.search(ex.text)
    if m and not (usual is not None and _LIMIT_WORDS.search(usual.text)):
        return f"message {m.group(0)!r}"
    return None
