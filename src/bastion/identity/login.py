"""Login flows: form (with CSRF token), JSON (bearer token), HTTP basic, static headers and cookies.

A role that cannot log in stops the scan with a ConfigError naming the role and the login path:
scanning as anonymous while the user believes it is "alice" would hide every authorization flaw.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from http.cookies import CookieError, Morsel, SimpleCookie
from typing import Any
from urllib.parse import urljoin, urlsplit

from bastion.errors import ConfigError
from bastion.identity.matrix import is_login_redirect
from bastion.identity.refresh import note_login_expiry
from bastion.identity.session import RoleSession
from bastion.model.schema import LoginConfig, RoleConfig
from bastion.target.budget import Limits
from bastion.target.client import ProbeClient
from bastion.target.exchange import Exchange
from bastion.target.html import parse_html
from bastion.target.target import Target

DEFAULT_TOKEN_KEYS = ("access_token", "token", "jwt")
# Other names APIs give the session token in a login response (checked after the defaults, top level
# and under a `data`/`result` wrapper); a refresh or CSRF token is never the bearer credential.
EXTRA_TOKEN_KEYS = ("auth_token", "authToken", "accessToken", "api_token", "apiToken", "jwt_token",
                    "bearer", "session_token")
_TOKEN_WRAPPERS = ("data", "result")
# Login body fields whose values are credentials (masked in every output); usernames stay readable.
_SECRET_FIELD = re.compile(r"pass|pw|pwd|secret|token|key|otp|pin|credential", re.IGNORECASE)


def _form_facts(form: Any) -> tuple[dict[str, str], bool]:
    """(hidden fields, has a password field) of one parsed <form>."""
    hidden: dict[str, str] = {}
    has_password = False
    for el in form.iter("input"):
        kind = (el.get("type") or "text").lower()
        if kind == "hidden" and el.get("name"):
            hidden[el.get("name")] = el.get("value") or ""
        elif kind == "password":
            has_password = True
    return hidden, has_password


def login_form_fields(html: str, page_url: str, post_path: str) -> dict[str, str] | None:
    """Hidden fields of the form that posts to `post_path` (else the one with a password field)."""
    forms = [(form.get("action") or "", *_form_facts(form)) for form in parse_html(html).iter("form")]

    def posts_to_login(action: str, has_password: bool) -> bool:
        return urlsplit(urljoin(page_url, action or page_url)).path.rstrip("/") == post_path.rstrip("/")

    for pick in (posts_to_login, lambda _action, has_password: has_password):
        for action, hidden, has_password in forms:
            if pick(action, has_password):
                return hidden
    return None


def set_cookies(ex: Exchange) -> Iterator[Morsel[str]]:
    """Every cookie the exchange set, redirect hops first; unparsable Set-Cookie headers are skipped."""
    for hop in [*ex.history, ex]:
        for raw in hop.header_values("set-cookie"):
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(raw)
            except CookieError:
                continue
            yield from cookie.values()


def update_cookies(jar: dict[str, str], ex: Exchange) -> None:
    """Apply the response's Set-Cookie headers (including deletions) to a role's cookie jar."""
    for morsel in set_cookies(ex):
        if not morsel.value or morsel["max-age"] in ("0", "-1"):
            jar.pop(morsel.key, None)
        else:
            jar[morsel.key] = morsel.value


def token_from_json(body: Any, token_path: str | None) -> str | None:
    """The token at the dot path (or at the first default key), when it is a non-empty string."""
    paths = [token_path] if token_path else [*DEFAULT_TOKEN_KEYS, *EXTRA_TOKEN_KEYS,
                                             *(f"{w}.{k}" for w in _TOKEN_WRAPPERS
                                               for k in (*DEFAULT_TOKEN_KEYS, *EXTRA_TOKEN_KEYS))]
    for path in paths:
        node = body
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            return node
    return None


def _fail(name: str, login: LoginConfig, reason: str) -> ConfigError:
    return ConfigError(f"role {name!r}: login failed at {login.method} {login.path}: {reason} "
                       f"(check the credentials and roles.{name}.login)", key=f"roles.{name}.login")


async def _form_fields(client: ProbeClient, name: str, login: LoginConfig,
                       jar: dict[str, str]) -> dict[str, Any]:
    """The configured form fields plus the login form's hidden fields (CSRF token) from its page."""
    page = login.form_page or login.path
    ex = await client.request("GET", page, cookies=dict(jar), follow_redirects=True)
    update_cookies(jar, ex)
    page_ok = ex.ok and ex.status < 400
    if not page_ok and (login.form_page or login.csrf_field):
        raise _fail(name, login, f"login page {page} answered {ex.status or ex.error}")
    # No form page (a POST-only endpoint): nothing to copy, the configured fields are the whole body.
    hidden = (login_form_fields(ex.text, ex.request.url, login.path) or {}) if page_ok else {}
    if login.csrf_field is not None:
        if login.csrf_field not in hidden:
            raise _fail(name, login, f"no hidden field {login.csrf_field!r} in the login form on {page}")
        hidden = {login.csrf_field: hidden[login.csrf_field]}
    return {**hidden, **{k: str(v) for k, v in (login.form or {}).items()}}


async def _login(client: ProbeClient, name: str, login: LoginConfig, session: RoleSession) -> Exchange:
    kwargs: dict[str, Any] = {"params": dict(login.params) or None, "headers": dict(login.headers)}
    if login.form is not None:
        kwargs["data"] = await _form_fields(client, name, login, session.cookies)
    elif login.json_body is not None:
        kwargs["json"] = login.json_body
    before = dict(session.cookies)
    ex = await client.request(login.method, login.path, cookies=dict(session.cookies), **kwargs)
    if not ex.ok or not 200 <= ex.status < 400:
        raise _fail(name, login, f"status {ex.status or ex.error}")
    if is_login_redirect(ex, (login.path,)):
        raise _fail(name, login, f"redirected back to the login page ({ex.header('location')})")
    update_cookies(session.cookies, ex)
    token = None
    if "json" in ex.content_type or login.token_path:
        try:
            token = token_from_json(json.loads(ex.text), login.token_path)
        except ValueError:
            token = None
        if login.token_path and token is None:
            raise _fail(name, login, f"no token at {login.token_path!r} in the JSON response")
    if token is not None:
        session.headers[login.token_header] = f"{login.token_prefix} {token}".strip()
        session.secrets.add(token)
    elif session.cookies == before and not ex.header_values("set-cookie"):
        # (A response that sets the very cookie the client already had is a login too: fixation-prone apps.)
        raise _fail(name, login, "the response set no cookie and returned no token")
    note_login_expiry(session, ex, token)
    return ex


async def login_role(client: ProbeClient, name: str, role: RoleConfig, *,
                     second_factor: bool = True) -> RoleSession:
    """Log `name` in and return its session; ConfigError when the login does not succeed.

    `second_factor=False` stops after the primary login of an MFA role (the MFA checks need that state).
    """
    session = RoleSession(name=name, headers=dict(role.headers), cookies=dict(role.cookies),
                          login_path=role.login.path if role.login else None)
    session.secrets.update(role.headers.values(), role.cookies.values())
    if role.basic is not None:
        raw = f"{role.basic.username}:{role.basic.password}".encode()
        encoded = base64.b64encode(raw).decode()
        session.headers["Authorization"] = f"Basic {encoded}"
        session.secrets.update({role.basic.password, encoded})
    if role.login is not None:
        for value in _walk_strings(role.login.json_body or role.login.form or {}):
            if _SECRET_FIELD.search(value[0]):
                session.secrets.add(value[1])
        login_ex = await _login(client, name, role.login, session)
        if role.mfa is not None and second_factor:
            from bastion.identity.mfa import complete_mfa  # mfa builds on this module's helpers

            await complete_mfa(client, name, role, session, login_ex)
        session.refresher = _relogin(name, role)
    if role.oidc is not None:
        from bastion.identity.oidc import oidc_login  # oidc builds on this module's cookie handling

        await oidc_login(client, name, role.oidc, session)
        session.refresher = _relogin(name, role)
    return session


def _relogin(name: str, role: RoleConfig) -> Callable[[ProbeClient, RoleSession], Awaitable[None]]:
    """A refresher that logs `name` in again and swaps the new credentials into the same session."""

    async def refresh(client: ProbeClient, session: RoleSession) -> None:
        fresh = await login_role(client, name, role)
        session.headers.clear()
        session.headers.update(fresh.headers)
        session.cookies.clear()
        session.cookies.update(fresh.cookies)
        session.secrets.update(fresh.secrets)
        session.take_lifetime(fresh)

    return refresh


def _walk_strings(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            out += _walk_strings(value)
        elif isinstance(value, str):
            out.append((str(key), value))
    return out


async def login_roles(client: ProbeClient, roles: Mapping[str, RoleConfig]) -> dict[str, RoleSession]:
    """Every configured role except anonymous, logged in one after the other (stable order)."""
    return {name: await login_role(client, name, role) for name, role in roles.items() if name != "anonymous"}


def login_roles_sync(target: Target, roles: Mapping[str, RoleConfig],
                     limits: Limits | None = None) -> dict[str, RoleSession]:
    """Log every role in against `target` before a scan (own client; the scan's budget is untouched)."""
    if not any(name != "anonymous" for name in roles):
        return {}
    from bastion.identity.oidc import oidc_scope_hosts

    # The providers roles log in with are part of the scan's scope (a new list: it may be shared).
    target.scope_hosts = [*target.scope_hosts, *(h for h in oidc_scope_hosts(roles) if h not in target.scope_hosts)]

    async def run() -> dict[str, RoleSession]:
        async with target.running(), ProbeClient(target, limits=limits) as client:
            return await login_roles(client, roles)

    return asyncio.run(run())
