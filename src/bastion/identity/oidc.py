"""OIDC role logins: client credentials, and the authorization-code flow, either driven through the target
the way a browser would (`start:` route → provider login form → target callback → session cookie) or with
Bastion itself as the OIDC client (PKCE; the access token is then sent as a bearer token).

Every step that fails is a ConfigError naming the role and the step: a scan that silently runs as
anonymous would hide every authorization flaw.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urljoin, urlsplit

import httpx
import jwt

from bastion.errors import ConfigError, ScopeError
from bastion.identity.login import update_cookies
from bastion.identity.refresh import cookie_expiry, login_expiry
from bastion.identity.session import RoleSession
from bastion.model.schema import OidcConfig, RoleConfig
from bastion.target.client import ProbeClient
from bastion.target.exchange import Exchange
from bastion.target.html import parse_html
from bastion.target.scope import Scope
from bastion.target.target import Target

# Redirects plus form posts a login may take before we call it a loop.
MAX_HOPS = 20
_REDIRECTS = (301, 302, 303, 307, 308)
DISCOVERY_PATH = "/.well-known/openid-configuration"
# Input types a login form's username may have; the first such field is the username.
_TEXT_INPUTS = ("text", "email", "tel", "")


def origin(url: str) -> str:
    """scheme://host:port of a URL, with the default port written out."""
    u = httpx.URL(url)
    port = u.port or {"http": 80, "https": 443}.get(u.scheme, 0)
    host = f"[{u.host}]" if ":" in u.host else u.host
    return f"{u.scheme}://{host.lower()}:{port}"


def oidc_scope_hosts(roles: Mapping[str, RoleConfig]) -> list[str]:
    """`host:port` of every OIDC issuer in the roles: the scan may talk to the providers it logs in with."""
    hosts: list[str] = []
    for role in roles.values():
        if role.oidc is not None:
            host_port = origin(role.oidc.issuer).split("://", 1)[1]
            if host_port not in hosts:
                hosts.append(host_port)
    return hosts


def _fail(name: str, cfg: OidcConfig, step: str, reason: str) -> ConfigError:
    return ConfigError(f"role {name!r}: OIDC {cfg.flow} login failed at step {step!r}: {reason} "
                       f"(check roles.{name}.oidc and the provider {cfg.issuer})", key=f"roles.{name}.oidc")


class _Browser:
    """Sends each hop to the client for its origin, with one cookie jar per origin, like a browser.

    The target's own client serves the target's origin (in-process apps included); any other origin
    (the provider) gets a network client sharing the run's budget, limited to the scope plus the issuer.
    """

    def __init__(self, client: ProbeClient, target_jar: dict[str, str], issuer: str) -> None:
        self.client = client
        self.home = origin(client.target.base_url)
        self.scope = Scope(client.scope.hosts | {origin(issuer).split("://", 1)[1]}, client.scope.exclude_paths)
        self.jars: dict[str, dict[str, str]] = {self.home: target_jar}
        self._clients: dict[str, ProbeClient] = {}

    def on_target(self, url: str) -> bool:
        return origin(url) == self.home

    def _client_for(self, url: str) -> ProbeClient:
        key = origin(url)
        if key == self.home:
            return self.client
        self.scope.require(url)
        if key not in self._clients:
            self._clients[key] = ProbeClient(Target.from_url(key), scope=self.scope, limits=self.client.limits,
                                             budget=self.client.budget)
        return self._clients[key]

    async def send(self, method: str, url: str, **kwargs: Any) -> Exchange:
        url = self.client.url(url)
        jar = self.jars.setdefault(origin(url), {})
        ex = await self._client_for(url).request(method, url, cookies=dict(jar) or None, **kwargs)
        update_cookies(jar, ex)
        return ex

    def cookie_values(self) -> set[str]:
        return {v for key, jar in self.jars.items() if key != self.home for v in jar.values()}

    async def __aenter__(self) -> _Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self._clients.values():
            await client.aclose()


@dataclass
class _LoginForm:
    method: str
    action: str
    fields: dict[str, str]


def provider_login_form(page: str, page_url: str, cfg: OidcConfig) -> _LoginForm | None:
    """The form with a password field on a provider page, filled with the role's username and password."""
    for form in parse_html(page).iter("form"):
        inputs = [el for el in form.iter("input") if el.get("name")]
        if not any((el.get("type") or "").lower() == "password" for el in inputs):
            continue
        fields: dict[str, str] = {}
        user_field, pass_field = cfg.username_field, cfg.password_field
        for el in inputs:
            kind, name = (el.get("type") or "").lower(), el.get("name")
            if kind == "hidden":
                fields[name] = el.get("value") or ""
            elif kind == "password" and pass_field is None:
                pass_field = name
            elif kind in _TEXT_INPUTS and user_field is None:
                user_field = name
        for button in [*form.iter("button"), *(el for el in inputs if (el.get("type") or "").lower() == "submit")]:
            if button.get("name"):  # some providers need to know which button was pressed
                fields.setdefault(button.get("name"), button.get("value") or "")
                break
        if user_field is None or pass_field is None:
            continue
        fields[user_field], fields[pass_field] = cfg.username or "", cfg.password or ""
        action = urljoin(page_url, form.get("action") or page_url)
        return _LoginForm((form.get("method") or "GET").upper(), action, fields)
    return None


@dataclass
class _Journey:
    """Where a browser-style login ended: the last response, its URL, and the target's callback hops."""

    last: Exchange | None
    url: str
    callback: list[Exchange]


async def _drive(browser: _Browser, name: str, cfg: OidcConfig, url: str, *,
                 stop_at: str | None = None) -> _Journey:
    """Follow redirects and submit the provider's login form until a final page (or a URL under `stop_at`)."""
    method, data = "GET", None
    step = "start" if browser.on_target(browser.client.url(url)) else "provider-login-page"
    submitted = False
    callback: list[Exchange] = []
    for _ in range(MAX_HOPS):
        if stop_at is not None and url.startswith(stop_at):
            return _Journey(None, url, callback)
        try:
            ex = await browser.send(method, url, data=data)
        except ScopeError as exc:
            raise _fail(name, cfg, step, f"{exc} (add the host to scope.hosts)") from None
        if not ex.ok:
            raise _fail(name, cfg, step, f"{method} {url}: {ex.error}")
        url = ex.request.url
        if browser.on_target(url) and step != "start":
            step = "callback"
            callback.append(ex)
        if ex.status in _REDIRECTS and ex.header("location"):
            if step == "start":
                step = "provider-login-page"
            url = urljoin(url, ex.header("location") or "")
            if ex.status not in (307, 308):
                method, data = "GET", None
            if step == "callback" and cfg.start and urlsplit(url).path.rstrip("/") == cfg.start.rstrip("/"):
                raise _fail(name, cfg, step, f"the target sent the browser back to {cfg.start}")
            continue
        form = provider_login_form(ex.text, url, cfg) if ex.is_html and not browser.on_target(url) else None
        if form is not None:
            if submitted:
                raise _fail(name, cfg, "provider-login", f"the provider showed its login form again "
                                                         f"(status {ex.status}): wrong username or password?")
            submitted, step = True, "provider-login"
            method, url, data = form.method, form.action, form.fields
            if method == "GET":
                url, data = f"{url}{'&' if '?' in url else '?'}{urlencode(form.fields)}", None
            continue
        if step == "start" or (step == "provider-login-page" and not submitted):
            raise _fail(name, cfg, step, f"{url} answered {ex.status} without a redirect or a login form")
        return _Journey(ex, url, callback)
    raise _fail(name, cfg, step, f"more than {MAX_HOPS} redirects and form posts")


async def _discover(browser: _Browser, name: str, cfg: OidcConfig) -> dict[str, Any]:
    url = cfg.issuer.rstrip("/") + DISCOVERY_PATH
    try:
        ex = await browser.send("GET", url)
    except ScopeError as exc:
        raise _fail(name, cfg, "discovery", str(exc)) from None
    if not ex.ok or ex.status != 200:
        raise _fail(name, cfg, "discovery", f"{url} answered {ex.status or ex.error}")
    try:
        doc = json.loads(ex.text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise _fail(name, cfg, "discovery", f"{url} is not a JSON object")
    if str(doc.get("issuer", "")).rstrip("/") != cfg.issuer.rstrip("/"):
        # OIDC Discovery 4.3: a document naming another issuer must not be used.
        raise _fail(name, cfg, "discovery", f"the document names issuer {doc.get('issuer')!r}")
    return doc


def _endpoint(doc: Mapping[str, Any], key: str, name: str, cfg: OidcConfig) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise _fail(name, cfg, "discovery", f"no {key} in the provider's discovery document")
    return value


def _client_auth(cfg: OidcConfig) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, form fields) authenticating the client: basic auth when it has a secret, else its id."""
    if cfg.client_secret:
        raw = f"{quote_plus(cfg.client_id)}:{quote_plus(cfg.client_secret)}".encode()
        return {"authorization": "Basic " + base64.b64encode(raw).decode()}, {}
    return {}, {"client_id": cfg.client_id}


async def _token_request(browser: _Browser, token_url: str, cfg: OidcConfig,
                         form: dict[str, str]) -> tuple[Exchange, dict[str, Any] | None]:
    headers, auth_fields = _client_auth(cfg)
    ex = await browser.send("POST", token_url, data={**form, **auth_fields}, headers=headers)
    try:
        body = json.loads(ex.text) if ex.ok else None
    except ValueError:
        body = None
    ok = ex.status == 200 and isinstance(body, dict) and isinstance(body.get("access_token"), str)
    return ex, body if ok else None


def _token_error(ex: Exchange) -> str:
    try:
        body = json.loads(ex.text)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return f"status {ex.status}, error {body.get('error')!r}"
    return f"status {ex.status or ex.error}"


def _apply_tokens(session: RoleSession, cfg: OidcConfig, body: Mapping[str, Any]) -> None:
    token = str(body["access_token"])
    session.headers[cfg.token_header] = f"{cfg.token_prefix} {token}".strip()
    session.secrets.update(str(body[k]) for k in ("access_token", "refresh_token", "id_token") if body.get(k))
    session.set_expiry(login_expiry(None, token, body, session.clock()))


@dataclass
class RefreshGrant:
    """Renews a role's tokens with the refresh_token grant; keeps the rotated refresh token."""

    cfg: OidcConfig
    token_url: str
    refresh_token: str

    async def __call__(self, client: ProbeClient, session: RoleSession) -> bool:
        async with _Browser(client, {}, self.cfg.issuer) as browser:
            _ex, body = await _token_request(browser, self.token_url, self.cfg,
                                             {"grant_type": "refresh_token", "refresh_token": self.refresh_token})
        if body is None:
            return False  # rotated away, revoked or expired: the caller logs in again
        self.refresh_token = str(body.get("refresh_token") or self.refresh_token)
        _apply_tokens(session, self.cfg, body)
        return True


async def oidc_login(client: ProbeClient, name: str, cfg: OidcConfig, session: RoleSession) -> None:
    """Log `name` in through the OIDC provider; fills `session` (bearer token or target cookies)."""
    session.secrets.update(v for v in (cfg.client_secret, cfg.password) if v)
    async with _Browser(client, session.cookies, cfg.issuer) as browser:
        try:
            if cfg.flow == "client_credentials":
                await _client_credentials(browser, name, cfg, session)
            elif cfg.start is not None:
                await _through_target(browser, name, cfg, session)
            else:
                await _as_client(browser, name, cfg, session)
        finally:
            session.secrets.update(browser.cookie_values())


async def _client_credentials(browser: _Browser, name: str, cfg: OidcConfig, session: RoleSession) -> None:
    doc = await _discover(browser, name, cfg)
    token_url = _endpoint(doc, "token_endpoint", name, cfg)
    form = {"grant_type": "client_credentials", **({"scope": cfg.scope} if cfg.scope else {})}
    ex, body = await _token_request(browser, token_url, cfg, form)
    if body is None:
        raise _fail(name, cfg, "token", f"{token_url} answered {_token_error(ex)}")
    _apply_tokens(session, cfg, body)
    if body.get("refresh_token"):
        session.renewer = RefreshGrant(cfg, token_url, str(body["refresh_token"]))


async def _through_target(browser: _Browser, name: str, cfg: OidcConfig, session: RoleSession) -> None:
    assert cfg.start is not None
    session.login_path = session.login_path or cfg.start
    journey = await _drive(browser, name, cfg, cfg.start)
    final = journey.last
    assert final is not None
    if not journey.callback:
        raise _fail(name, cfg, "callback", f"the login ended at {journey.url}, not back on the target")
    if final.status >= 400:
        raise _fail(name, cfg, "callback", f"{journey.url} answered {final.status}")
    if not session.cookies:
        raise _fail(name, cfg, "callback", "the target set no session cookie")
    ends = [end for end in (cookie_expiry(ex, session.clock()) for ex in journey.callback) if end is not None]
    session.set_expiry(min(ends) if ends else None)


async def _as_client(browser: _Browser, name: str, cfg: OidcConfig, session: RoleSession) -> None:
    assert cfg.redirect_uri is not None
    doc = await _discover(browser, name, cfg)
    authorize_url = _endpoint(doc, "authorization_endpoint", name, cfg)
    token_url = _endpoint(doc, "token_endpoint", name, cfg)
    verifier, state, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": cfg.client_id, "redirect_uri": cfg.redirect_uri,
              "scope": cfg.scope, "state": state, "nonce": nonce, "code_challenge": challenge,
              "code_challenge_method": "S256"}
    start = f"{authorize_url}{'&' if '?' in authorize_url else '?'}{urlencode(params)}"
    journey = await _drive(browser, name, cfg, start, stop_at=cfg.redirect_uri)
    if journey.last is not None:
        raise _fail(name, cfg, "provider-login", f"the provider never redirected to {cfg.redirect_uri} "
                                                 f"(ended at {journey.url}, status {journey.last.status})")
    answer = {k: v[0] for k, v in parse_qs(urlsplit(journey.url).query).items()}
    if "error" in answer:
        raise _fail(name, cfg, "callback", f"the provider answered error={answer['error']!r} "
                                           f"({answer.get('error_description', '')})")
    if answer.get("state") != state or not answer.get("code"):
        raise _fail(name, cfg, "callback", "the redirect carries no code or a different state")
    session.secrets.add(answer["code"])
    form = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": cfg.redirect_uri,
            "code_verifier": verifier}
    ex, body = await _token_request(browser, token_url, cfg, form)
    if body is None:
        raise _fail(name, cfg, "token", f"{token_url} answered {_token_error(ex)}")
    if body.get("id_token") and _claim(str(body["id_token"]), "nonce") != nonce:
        raise _fail(name, cfg, "token", "the ID token's nonce does not match the authorization request")
    _apply_tokens(session, cfg, body)
    if body.get("refresh_token"):
        session.renewer = RefreshGrant(cfg, token_url, str(body["refresh_token"]))


def _claim(token: str, name: str) -> Any:
    try:
        return jwt.decode(token, options={"verify_signature": False}).get(name)
    except jwt.PyJWTError:
        return None
