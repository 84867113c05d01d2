"""Session management checks: fixation, logout, lifetime, id entropy and cookie scope of cookie sessions.

All of them work on the configured roles whose login yields a session cookie. The session cookie is
found by behaviour (the role cookie without which a members-only page is denied), never by name,
and every login they need is a fresh one, so the scan's own role sessions stay untouched.
"""

from __future__ import annotations

import base64
import json
import math
import re
import string
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, note, response_evidence
from bastion.findings.model import Confidence, Finding, InputRef, Location
from bastion.identity.probe import (
    LOGOUT_PATH,
    MembersPage,
    authenticated,
    cookie_attributes,
    cookie_roles,
    fresh_login,
    members_page,
    session_cookie,
    set_cookie_headers,
)
from bastion.surface.model import EntryPoint
from bastion.target.exchange import Exchange
from bastion.target.html import parse_html

# A persistent session cookie or session token living longer than this is a finding.
MAX_SESSION_LIFETIME_S = 30 * 86_400
# Fresh ids collected for the entropy estimate, and the bits below which ids are guessable.
ENTROPY_SAMPLES = 24
MIN_ENTROPY_BITS = 64
# Consecutive numeric parts within this distance count as a counter.
SEQUENTIAL_STEP = 1000
_DIGITS = re.compile(r"\d{4,}")
_JWT = re.compile(r"^[\w-]{8,}\.([\w-]{8,})\.[\w-]*$")
# A signed client-side session (itsdangerous / Django signing): data[.timestamp].signature, `:` in Django.
_SIGNED_VALUE = re.compile(r"^(\.?[\w+/=-]{2,})(?:[.:][\w-]{4,8})?[.:][\w+/=-]{16,}$")


@dataclass
class CookieSession:
    role: str
    page: MembersPage
    cookie: str


async def _cookie_sessions(ctx: CheckContext) -> list[CookieSession]:
    """Roles with a cookie session, a members page and the session cookie (roles without MFA first)."""
    roles = sorted(cookie_roles(ctx), key=lambda r: getattr(ctx.role_configs[r], "mfa", None) is not None)
    out = []
    for role in roles:
        page = await members_page(ctx, role)
        if page is None:
            continue
        cookie = await session_cookie(ctx, role, page)
        if cookie is not None:
            out.append(CookieSession(role, page, cookie))
    return out


def _cookie_location(path: str, cookie: str, method: str = "POST") -> Location:
    return Location(method=method, path=path, input=InputRef.model_validate({"in": "cookie", "name": cookie}))


def _login_path(ctx: CheckContext, role: str) -> str:
    return ctx.roles[role].login_path or "/"


def _keep_secret(ctx: CheckContext, role: str, *values: str) -> None:
    ctx.roles[role].secrets.update(v for v in values if v)


# --- fixation ---------------------------------------------------------------------------------------


async def _anonymous_cookies(ctx: CheckContext, paths: list[str]) -> tuple[dict[str, str], Exchange | None]:
    """Cookies a first-time visitor collects on these pages (no cookies sent), with the exchange that set them."""
    jar: dict[str, str] = {}
    setter = None
    for path in dict.fromkeys(paths):
        ex = await ctx.send("GET", path, as_role="anonymous", cookies=dict(jar))
        for raw in ex.header_values("set-cookie"):
            name, _, rest = raw.partition("=")
            value = rest.split(";", 1)[0].strip().strip('"')
            if value and "max-age=0" not in raw.lower().replace(" ", ""):
                jar[name.strip()] = value
                setter = setter or ex
    return jar, setter


def _login_pages(ctx: CheckContext, role: str) -> list[str]:
    login = getattr(ctx.role_configs[role], "login", None)
    pages = ["/"]
    if login is not None:
        pages.append(login.form_page or login.path)
    return pages


@check(id="session.fixation", threat="session.fixation", scope="target")
async def session_fixation(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Log a role in carrying the session id of an anonymous visit; the same id, now authenticated, is fixation."""
    for s in await _cookie_sessions(ctx):
        pre, _ = await _anonymous_cookies(ctx, _login_pages(ctx, s.role))
        planted = pre.get(s.cookie)
        if planted is None:
            continue  # no pre-login session id to fix
        _keep_secret(ctx, s.role, planted)
        fresh = await fresh_login(ctx, s.role, cookies=pre)
        # A failed login proves nothing, unless the planted id got authenticated anyway (judged below).
        if fresh is not None and fresh[0].cookies.get(s.cookie) != planted:
            continue
        ok, replay = await authenticated(ctx, s.page, {s.cookie: planted})
        if not ok:
            continue
        yield ctx.finding(
            title=f"Session fixation: the pre-login {s.cookie!r} is authenticated after {s.role}'s login",
            confidence=Confidence.confirmed,
            location=_cookie_location(_login_path(ctx, s.role), s.cookie),
            evidence=[note("pre-login session id kept", f"An anonymous visit set {s.cookie}; logging "
                                                        f"{s.role} in with it did not issue a new one."),
                      *exchange_evidence(replay, f"the pre-login {s.cookie} reaches {s.page.path}")])
        return


# --- logout -----------------------------------------------------------------------------------------


def _logout_endpoint(ctx: CheckContext) -> EntryPoint | None:
    """The logout entry point by name: POST preferred over GET."""
    eps = [ep for ep in ctx.surface.sorted() if LOGOUT_PATH.search(ep.path) and "{" not in ep.path]
    for method in ("POST", "GET"):
        for ep in eps:
            if ep.method == method:
                return ep
    return None


def _form_fields_for(html: str, page_url: str, action_path: str) -> dict[str, str]:
    """Hidden fields (CSRF token) of a form on the page posting to `action_path`."""
    for form in parse_html(html).iter("form"):
        action = urlsplit(str(httpx.URL(page_url).join(form.get("action") or page_url))).path
        if action.rstrip("/") == action_path.rstrip("/"):
            return {el.get("name"): el.get("value") or "" for el in form.iter("input")
                    if (el.get("type") or "").lower() == "hidden" and el.get("name")}
    return {}


@check(id="session.logout", threat="session.logout", scope="target")
async def logout_server_side(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Log out a fresh session of a role, then replay its cookie: still authenticated = not ended server-side."""
    ep = _logout_endpoint(ctx)
    # Ending a session changes state even when the logout is a GET: ask the write policy itself.
    if ep is None or not ctx.writes.allows(ep.method, ep.path):
        return
    sent = False
    try:
        for s in await _cookie_sessions(ctx):
            fresh = await fresh_login(ctx, s.role)
            if fresh is None:
                continue
            cookies = dict(fresh[0].cookies)
            ok, before = await authenticated(ctx, s.page, cookies)
            if not ok:
                continue
            data = _form_fields_for(before.text, before.request.url, ep.path) if ep.method == "POST" else None
            sent = True
            out = await ctx.send(ep.method, ep.path, as_role="anonymous", cookies=cookies, data=data or None)
            if not out.ok or out.status >= 400:
                continue  # the logout itself failed (CSRF, method): nothing to judge
            ok, replay = await authenticated(ctx, s.page, cookies)
            if not ok:
                continue
            yield ctx.finding(
                title=f"Logout leaves the session valid server-side ({ep.method} {ep.path})",
                confidence=Confidence.confirmed,
                location=Location(method=ep.method, path=ep.path),
                evidence=[*exchange_evidence(out, f"logout of a fresh {s.role} session"),
                          *exchange_evidence(replay, f"the logged-out {s.cookie} still reaches {s.page.path}")])
            return
    finally:
        if sent:
            await ctx.reset()


# --- lifetime ---------------------------------------------------------------------------------------


def _lifetime(attrs: dict[str, str], response: Exchange) -> float | None:
    """Seconds the browser keeps the cookie (Max-Age, else Expires against the response Date); None = session."""
    if attrs.get("max-age", "").lstrip("-").isdigit():
        return float(attrs["max-age"])
    if attrs.get("expires"):
        try:
            expires = parsedate_to_datetime(attrs["expires"]).timestamp()
            date = response.header("date")
            now = parsedate_to_datetime(date).timestamp() if date else time.time()
        except (TypeError, ValueError):
            return None
        return expires - now
    return None


def _jwt_claims(value: str) -> dict[str, object] | None:
    m = _JWT.match(value)
    if not m:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(m.group(1) + "=" * (-len(m.group(1)) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def lifetime_problem(raw_set_cookie: str, response: Exchange) -> str | None:
    """Why this session Set-Cookie lives too long (persistent cookie, JWT without/with a far exp), else None."""
    attrs = cookie_attributes(raw_set_cookie)
    lifetime = _lifetime(attrs, response)
    if lifetime is not None and lifetime > MAX_SESSION_LIFETIME_S:
        # Years-long lifetimes in words: an Expires date gives a day count that changes every day.
        days = round(lifetime / 86_400)
        return f"a persistent cookie kept for {'more than a year' if days > 365 else f'{days} days'}"
    value = raw_set_cookie.split("=", 1)[1].split(";", 1)[0].strip().strip('"')
    claims = _jwt_claims(value)
    if claims is not None:
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float):
            return "a JWT without an exp claim"
        start = float(iat) if isinstance(iat, int | float) else time.time()
        if exp - start > MAX_SESSION_LIFETIME_S:
            return "a JWT valid for more than 30 days"
    return None


@check(id="session.expiry", threat="session.expiry", scope="target")
async def session_expiry(ctx: CheckContext) -> AsyncIterator[Finding]:
    """The session cookie a fresh login sets: persistent for more than 30 days, or a JWT without a bounded exp."""
    for s in await _cookie_sessions(ctx):
        fresh = await fresh_login(ctx, s.role)
        if fresh is None:
            continue
        headers = set_cookie_headers(fresh[1], s.cookie)
        for ex, raw in reversed(headers):  # the last one set is the session the role keeps
            problem = lifetime_problem(raw, ex)
            if problem is None:
                break
            path = urlsplit(ex.request.url).path
            yield ctx.finding(
                title=f"Session cookie {s.cookie!r} is {problem}",
                location=_cookie_location(path, s.cookie, ex.request.method),
                evidence=[response_evidence(ex, f"Set-Cookie {s.cookie} at login: {problem}", include_body=False)])
            return


# --- entropy ----------------------------------------------------------------------------------------


def _alphabet_bits(ids: list[str]) -> float:
    chars = set("".join(ids))
    for alphabet in (string.digits, string.digits + "abcdef", string.digits + "ABCDEF",
                     string.digits + string.ascii_lowercase, string.digits + string.ascii_letters):
        if chars <= set(alphabet):
            return math.log2(len(alphabet))
    return math.log2(max(64, len(chars)))


def _sequential(ids: list[str]) -> bool:
    """Most consecutive ids differ by a small positive step in their last long number (a counter)."""
    numbers = []
    for value in ids:
        runs = _DIGITS.findall(value)
        if not runs:
            return False
        numbers.append(int(runs[-1]))
    steps = [b - a for a, b in zip(numbers, numbers[1:], strict=False)]
    small = sum(1 for d in steps if 0 < d <= SEQUENTIAL_STEP)
    return bool(steps) and small >= 0.75 * len(steps)


def estimate_entropy(ids: list[str]) -> tuple[float, str | None]:
    """(estimated bits, why predictable or None): varying positions × alphabet bits; repeats and counters."""
    if len(set(ids)) < len(ids):
        return 0.0, "the same id was issued twice"
    if _sequential(ids):
        return 0.0, "ids increase like a counter"
    width = min(len(i) for i in ids)
    varying = sum(1 for pos in range(width) if len({i[pos] for i in ids}) > 1)
    bits = varying * _alphabet_bits(ids)
    if bits < MIN_ENTROPY_BITS:
        return bits, f"only {varying} of {width} characters vary (about {int(bits)} bits)"
    return bits, None


def _b64_json(part: str) -> object:
    """The JSON a base64 (url-safe or standard) segment encodes, else None."""
    try:
        return json.loads(base64.urlsafe_b64decode(part.replace("+", "-").replace("/", "_").rstrip("=")
                                                   + "=" * (-len(part.rstrip("=")) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None


def signed_client_value(value: str) -> bool:
    """Whether a cookie value is signed client-side data (a JWT, an itsdangerous/Django signed payload)."""
    if _JWT.match(value):
        header = _b64_json(value.split(".", 1)[0])
        if isinstance(header, dict) and "alg" in header:
            return True
    m = _SIGNED_VALUE.match(value)
    if m is None:
        return False
    # A leading dot marks a zlib-compressed payload; otherwise the payload must be data, not an opaque id
    # (express-session's `s:<sid>.<sig>` signs a server-side id whose entropy still matters).
    return m.group(1).startswith(".") or isinstance(_b64_json(m.group(1)), dict)


async def _fresh_ids(ctx: CheckContext, s: CookieSession) -> list[str]:
    """Up to ENTROPY_SAMPLES new session ids: anonymous visits if they issue one, else fresh logins."""
    ids: list[str] = []
    for path in _login_pages(ctx, s.role):
        first = await ctx.send("GET", path, as_role="anonymous")
        if not set_cookie_headers([first], s.cookie):
            continue
        for _ in range(ENTROPY_SAMPLES):
            ex = await ctx.send("GET", path, as_role="anonymous")
            for _, raw in set_cookie_headers([ex], s.cookie):
                ids.append(raw.split("=", 1)[1].split(";", 1)[0].strip().strip('"'))
        return ids
    if getattr(ctx.role_configs[s.role], "mfa", None) is not None:
        return []  # one-time codes are not spent on samples
    for _ in range(ENTROPY_SAMPLES // 2):
        fresh = await fresh_login(ctx, s.role)
        if fresh is not None and s.cookie in fresh[0].cookies:
            ids.append(fresh[0].cookies[s.cookie])
    return ids


@check(id="session.entropy", threat="session.entropy", scope="target")
async def session_entropy(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Collect fresh session ids and estimate their entropy; repeats, counters or < 64 bits are findings."""
    for s in await _cookie_sessions(ctx):
        ids = [i for i in await _fresh_ids(ctx, s) if i]
        _keep_secret(ctx, s.role, *ids)
        # A signed client-side session is the same for the same data within its timestamp's second: its
        # security is the signature (key, expiry), which other checks judge, not randomness.
        ids = [i for i in ids if not signed_client_value(i)]
        if len(ids) < 8:
            continue
        _, why = estimate_entropy(ids)
        if why is None:
            return
        yield ctx.finding(
            title=f"Predictable session ids ({s.cookie}): {why}", confidence=Confidence.firm,
            location=_cookie_location(_login_path(ctx, s.role), s.cookie, "GET"),
            evidence=[note(f"{len(ids)} fresh {s.cookie} values", "\n".join(ids))])
        return


# --- cookie scope -----------------------------------------------------------------------------------


def broader_domain(domain_attr: str, host: str) -> bool:
    """Whether a cookie Domain attribute names a parent of `host` (sent to sibling subdomains)."""
    domain = domain_attr.strip().lstrip(".").lower()
    host = host.lower()
    return bool(domain) and domain != host and host.endswith("." + domain)


@check(id="session.cookie-scope", threat="session.cookie-scope", scope="target")
async def cookie_scope(ctx: CheckContext) -> AsyncIterator[Finding]:
    """The session cookie set at login with a Domain attribute naming a parent domain of the service."""
    host = httpx.URL(ctx.target.base_url).host
    for s in await _cookie_sessions(ctx):
        fresh = await fresh_login(ctx, s.role)
        if fresh is None:
            continue
        for ex, raw in set_cookie_headers(fresh[1], s.cookie):
            domain = cookie_attributes(raw).get("domain", "")
            if not broader_domain(domain, host):
                continue
            yield ctx.finding(
                title=f"Session cookie {s.cookie!r} is shared with every subdomain of {domain.lstrip('.')}",
                confidence=Confidence.confirmed,
                location=_cookie_location(urlsplit(ex.request.url).path, s.cookie, ex.request.method),
                evidence=[response_evidence(ex, f"Set-Cookie {s.cookie}; Domain={domain} from {host}",
                                            include_body=False)])
            return
