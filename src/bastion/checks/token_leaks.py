"""Credentials that leak out of band: bearer tokens and reset tokens in the app's log, reset links via Referer.

- `jwt.token-in-logs`: the roles' JWTs (bearer headers, cookies, tokens obtained during the scan, refresh
  JWTs) and any JWT carrying the same issuer and key id as one of them, seen in a record of the in-process
  log sensor. One finding per logging line (file:line); the record is shown with every JWT masked.
  `privacy.secrets-in-logs` leaves JWT-shaped values to this check, so one record is reported once.
- `authn.reset-token-in-logs`: a password reset is requested (for a throw-away account when sign-up is
  allowed, else a role's account); a token-like value in the records the app logged while handling it,
  absent from the records of a reset for an unknown address, is the token. Used once at the confirm
  endpoint it is proven (confirmed); keyed (`token=...`, a link's query) it is a firm finding.
- `authn.reset-token-referer`: the page at the reset link (the token in its URL: the link found in the
  response or the log, else the reset-like GET pages of the surface with a made-up token) shows the
  new-password form and sends its URL to other sites: links or resources on other hosts, under no
  Referrer-Policy (header, `<meta name="referrer">`, element attribute) that strips the URL.

Log checks need the in-process sensors; the reset checks change state and run only where writes are
allowed, then reset the target.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.errors import ConfigError
from bastion.findings.evidence import exchange_evidence, note
from bastion.findings.model import Confidence, Evidence, Finding, Location
from bastion.findings.redact import Redactor
from bastion.identity.endpoints import (
    AuthEndpoint,
    AuthSurface,
    FormSession,
    bogus_like,
    confirm_reset,
    discover_auth,
    role_emails,
    sign_up_throwaway,
    signature_of,
    strong_password,
)
from bastion.identity.jwt import JWT_IN_TEXT, MalformedJWT, decode_unverified, looks_like_jwt
from bastion.identity.probe import UNSAFE_PATH, fresh_login
from bastion.sensors.events import SensorEvent
from bastion.sensors.exercise import NO_SENSORS, sensor_finding
from bastion.target.exchange import Exchange
from bastion.target.html import parse_html

# GETs sent as each token-bearing role so that request logging has a chance to write the token.
TOKEN_LOG_GETS = 3
# Reset-like pages tried with a made-up token when no reset link was found.
MAX_RESET_PAGES = 6
# Referrer policies that never send a cross-origin page's path and query.
STRIPPING_POLICIES = frozenset({"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin",
                                "origin", "origin-when-cross-origin"})
KNOWN_POLICIES = STRIPPING_POLICIES | {"unsafe-url", "no-referrer-when-downgrade"}
_LIKELY_PROTECTED = re.compile(r"(^|/)(api|me|account|profile|user|users|dashboard)(/|$)", re.IGNORECASE)
_TOKEN_KEY = re.compile(r"token|reset|code|key|nonce|secret", re.IGNORECASE)
_LONG_RANDOM = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{20,256}(?![A-Za-z0-9_\-])")
_URL_WITH_QUERY = re.compile(r"(?:https?://[^\s'\"<>]+|(?<![\w.])/[^\s'\"<>?]*)\?[^\s'\"<>]+")
_KEYED_VALUE = re.compile(r"([\w.-]{1,40})['\"]?\s*[=:]\s*['\"]?([A-Za-z0-9_\-.~%]{8,256})")
_IN_QUERY = re.compile(r"[?&][\w.-]{1,40}=$")
_RESET_PAGE = re.compile(r"reset|recover|forgot", re.IGNORECASE)
_PATH_PARAM = re.compile(r"\{[^}]+\}")
_PASSWORD_INPUT = re.compile(r"<input[^>]*type=[\"']?password", re.IGNORECASE)
# Elements whose URL a browser fetches or navigates to (sending the page's URL as Referer).
_URL_ATTRS = {"a": "href", "area": "href", "link": "href", "script": "src", "img": "src", "iframe": "src",
              "form": "action", "source": "src", "video": "src", "audio": "src"}


# --- jwt.token-in-logs --------------------------------------------------------------------------------------


def _strip_scheme(value: str) -> str:
    scheme, sep, rest = value.partition(" ")
    return rest.strip() if sep and looks_like_jwt(rest.strip()) else value


def known_tokens(ctx: CheckContext) -> dict[str, str]:
    """JWT -> role: what the roles present (headers, cookies) and the tokens the scan obtained for them."""
    out: dict[str, str] = {}
    for role in sorted(ctx.roles):
        session = ctx.roles[role]
        for value in sorted({*session.headers.values(), *session.cookies.values(), *session.secrets}):
            token = _strip_scheme(value)
            if looks_like_jwt(token):
                out.setdefault(token, role)
    return out


def _issuer_key(token: str) -> tuple[str, str, str] | None:
    """(alg, kid, iss) of a JWT: two tokens sharing it come from the same issuer and key."""
    try:
        decoded = decode_unverified(token)
    except MalformedJWT:
        return None
    iss = decoded.claims.get("iss")
    kid = decoded.header.get("kid")
    if not isinstance(iss, str) and not isinstance(kid, str):
        return None  # nothing ties an anonymous-issuer, kid-less token to the app
    return decoded.alg, str(kid or ""), str(iss or "")


def _candidate_gets(ctx: CheckContext) -> list[str]:
    eps = [ep for ep in ctx.surface.sorted() if ep.method == "GET" and "{" not in ep.path
           and not UNSAFE_PATH.search(ep.path)]
    # API routes first (request logging lives there most often), then pages that usually need a login.
    eps.sort(key=lambda ep: ("api" not in ep.path.lower(), not _LIKELY_PROTECTED.search(ep.path), ep.path))
    return [ep.path for ep in eps[:TOKEN_LOG_GETS]]


async def _use_tokens(ctx: CheckContext) -> None:
    """New token logins (JSON logins: the app may log what it issues) and a few requests per token role."""
    for role in sorted(ctx.roles):
        config = ctx.role_configs.get(role)
        login = getattr(config, "login", None)
        if login is not None and login.json_body is not None and getattr(config, "mfa", None) is None:
            await fresh_login(ctx, role)
    token_roles = sorted(set(known_tokens(ctx).values()))
    for path in _candidate_gets(ctx):
        for role in token_roles:
            await ctx.send("GET", path, as_role=role)


def _mask_jwts(text: str, secrets: set[str]) -> str:
    return JWT_IN_TEXT.sub("<jwt>", Redactor(sorted(secrets)).text(text) if secrets else text)


@check(id="jwt.token-in-logs", threat="jwt.token-in-logs", scope="target", shard="check")
async def token_in_logs(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Every logging line (file:line) that wrote one of the roles' JWTs, or a JWT from the same issuer and key."""
    if ctx.sensors is None:
        ctx.skip(NO_SENSORS)
        return
    await _use_tokens(ctx)
    known = known_tokens(ctx)
    issuers = {key for token in known if (key := _issuer_key(token)) is not None}
    secrets = {v for s in ctx.roles.values() for v in s.secret_values()}
    by_site: dict[tuple[str, int], tuple[str, SensorEvent, str | None]] = {}
    for event in ctx.sensors.of_kind("log"):
        if not event.file:
            continue
        for match in JWT_IN_TEXT.finditer(event.raw_detail):
            token = match.group(0)
            if _IN_QUERY.search(event.raw_detail[max(0, match.start() - 48):match.start()]):
                continue  # a URL the client sent (a probe's ?access_token=): logged, but never accepted here
            key = _issuer_key(token) if token not in known else None
            if token not in known and (key is None or key not in issuers):
                continue
            role = known.get(token)  # None: another token the app issued (same issuer and key)
            site = (event.file, event.line or 0)
            shown = _mask_jwts(event.raw_detail, secrets)
            # The record kept per site is the first by its masked text: the same whatever the timing.
            if site not in by_site or shown < by_site[site][0]:
                by_site[site] = (shown, event, role)
            break
    for site in sorted(by_site):
        shown, event, role = by_site[site]
        masked = SensorEvent(event.kind, shown, event.file, event.line, event.probe)
        what = f"Token of role {role}" if role else "A token the app issued"
        finding = sensor_finding(ctx, masked, f"{what} written to the log",
                                 extra=[note("why it matters", "anyone who reads the logs can replay the token "
                                                               "until it expires")])
        yield finding.model_copy(update={"role": role})


# --- reset requests ---------------------------------------------------------------------------------------


@dataclass
class ResetRequest:
    """A password reset requested for a real account, with what the app logged while handling it."""

    endpoint: AuthEndpoint
    label: str
    exchange: Exchange
    records: list[SensorEvent] = field(default_factory=list)
    control: Exchange | None = None
    control_records: list[SensorEvent] = field(default_factory=list)
    role: str | None = None  # the role whose account it is (None: a throw-away account)
    password_changed: bool = False  # a token was used: the account's sessions may have been ended


@dataclass(frozen=True)
class TokenCandidate:
    value: str
    where: str
    keyed: bool  # under a token-like name or in a URL, not only by its shape
    url: str | None = None  # the URL carrying it (a reset link), when there is one


def _unknown_identity(endpoint: AuthEndpoint, canary: str) -> str:
    field_name = endpoint.identity_field or ""
    return f"{canary}@example.com" if field_name == endpoint.email_field and field_name else canary


async def _reset_identity(ctx: CheckContext, auth: AuthSurface,
                          reset: AuthEndpoint) -> tuple[str, str, str | None] | None:
    """(value for the reset's identity field, account label, role): a throw-away account first, else a role's."""
    by_email = bool(reset.email_field) and reset.identity_field == reset.email_field
    login = auth.logins[0] if auth.logins else None
    for signup in auth.signups:
        if ctx.may_write(signup.method, signup.path):
            throwaway = await sign_up_throwaway(ctx.send, signup, login, ctx.canary())
            if throwaway is not None:
                return (throwaway.email if by_email else throwaway.username), "a throw-away account", None
    if not by_email:
        first = auth.accounts[0] if auth.accounts else None
        return (first.username, f"role {first.role}", first.role) if first else None
    for account in auth.accounts:
        if account.email:
            return account.email, f"role {account.role}", account.role
    emails = await role_emails(ctx.send, ctx.surface, sorted(ctx.roles))
    role = next(iter(sorted(emails)), None)
    return (emails[role], f"role {role}", role) if role else None


def _new_log_records(ctx: CheckContext, since: int) -> list[SensorEvent]:
    return [e for e in ctx.sensors.events[since:] if e.kind == "log"] if ctx.sensors is not None else []


async def request_reset(ctx: CheckContext) -> ResetRequest | None:
    """Ask for a password reset for a real account (and, as a control, for an unknown one)."""
    auth = discover_auth(ctx.surface, ctx.role_configs)
    for reset in auth.resets:
        if not ctx.may_write(reset.method, reset.path):
            continue
        target = await _reset_identity(ctx, auth, reset)
        if target is None:
            continue
        field_name = reset.identity_field or ""
        since = len(ctx.sensors.events) if ctx.sensors is not None else 0
        ex = await FormSession(ctx.send).submit(reset, {field_name: target[0]})
        request = ResetRequest(reset, target[1], ex, _new_log_records(ctx, since), role=target[2])
        since = len(ctx.sensors.events) if ctx.sensors is not None else 0
        request.control = await FormSession(ctx.send).submit(reset, {field_name: _unknown_identity(reset,
                                                                                                   ctx.canary())})
        request.control_records = _new_log_records(ctx, since)
        return request
    return None


async def reset_if_requested(ctx: CheckContext, request: ResetRequest | None) -> None:
    """Restore the target after a reset request; a role whose password was reset logs in again."""
    if request is not None:
        await ctx.reset()
        if request.password_changed and request.role in ctx.roles:
            try:
                await ctx.roles[request.role].refresh(ctx.client)
            except ConfigError:
                pass  # the app kept the new password: the role's current session is all there is


def _url_candidates(url: str, where: str) -> Iterator[TokenCandidate]:
    parts = urlsplit(url)
    for name, value in parse_qsl(parts.query):
        if _TOKEN_KEY.search(name) and len(value) >= 8:
            yield TokenCandidate(value, f"{where} (parameter {name!r})", True, url)
    for segment in parts.path.split("/"):
        if _LONG_RANDOM.fullmatch(segment) and any(c.isdigit() for c in segment):
            yield TokenCandidate(segment, f"{where} (path segment)", True, url)


def text_candidates(text: str, where: str) -> list[TokenCandidate]:
    """Token-like values in free text: in URLs, after token-like names, or long random strings."""
    found: dict[str, TokenCandidate] = {}
    for m in _URL_WITH_QUERY.finditer(text):
        for c in _url_candidates(m.group(0).replace("&amp;", "&"), where):
            found.setdefault(c.value, c)
    for m in _KEYED_VALUE.finditer(text):
        if _TOKEN_KEY.search(m.group(1)):
            found.setdefault(m.group(2), TokenCandidate(m.group(2), f"{where} ({m.group(1)}=...)", True))
    for m in _LONG_RANDOM.finditer(text):
        value = m.group(0)
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            found.setdefault(value, TokenCandidate(value, where, False))
    return list(found.values())


def _sent_text(ex: Exchange) -> str:
    return ex.request.url + "\n" + ex.request.body.decode("utf-8", "replace")


def log_candidates(request: ResetRequest) -> list[tuple[TokenCandidate, SensorEvent]]:
    """Token-like values the app logged for the real reset only (not for the unknown address, not sent by us)."""
    control = "\n".join(e.raw_detail for e in request.control_records)
    sent = _sent_text(request.exchange) + "\n" + (_sent_text(request.control) if request.control else "")
    out: dict[str, tuple[TokenCandidate, SensorEvent]] = {}
    for event in request.records:
        if not event.file:
            continue
        for c in text_candidates(event.raw_detail, f"log record at line {event.line}"):
            if c.value not in control and c.value not in sent:
                out.setdefault(c.value, (c, event))
    return sorted(out.values(), key=lambda item: (not item[0].keyed, item[1].file or "", item[1].line or 0))


async def token_works(ctx: CheckContext, token: str) -> Exchange | None:
    """The confirm exchange that accepted `token` (a made-up token of its length refused), else None."""
    auth = discover_auth(ctx.surface, ctx.role_configs)
    for confirm in auth.reset_confirms:
        if not ctx.may_write(confirm.method, confirm.path):
            continue
        bogus = await confirm_reset(ctx.send, confirm, bogus_like(token, ctx.canary()), strong_password(ctx.canary()))
        used = await confirm_reset(ctx.send, confirm, token, strong_password(ctx.canary()))
        if used.ok and used.status < 400 and (bogus.status >= 400 or signature_of(used) != signature_of(bogus)):
            return used
    return None


def _masked(evidence: list[Evidence], token: str) -> list[Evidence]:
    """The token is a live credential and differs per run: evidence names it, never shows it."""
    return [e.model_copy(update={"content": e.content.replace(token, "<reset-token>"),
                                 "summary": e.summary.replace(token, "<reset-token>")}) for e in evidence]


@check(id="authn.reset-token-in-logs", threat="authn.reset-token-in-logs", scope="target", shard="check")
async def reset_token_in_logs(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Request a password reset and look for its token in what the app logged meanwhile."""
    if ctx.sensors is None:
        ctx.skip(NO_SENSORS)
        return
    request = await request_reset(ctx)
    if request is None:
        return
    try:
        for candidate, event in log_candidates(request):
            # A role's password is changed only where the reset hook restores it (else later logins fail).
            restorable = request.role is None or ctx.target.reset_hook is not None
            used = await token_works(ctx, candidate.value) if restorable else None
            request.password_changed = request.password_changed or used is not None
            if used is None and not candidate.keyed:
                continue
            masked = SensorEvent(event.kind, event.raw_detail.replace(candidate.value, "<reset-token>"),
                                 event.file, event.line, event.probe)
            extra = [note("reset requested", f"{request.endpoint.key} for {request.label}; the record was "
                                             "written while the app handled it")]
            if used is not None:
                extra += _masked(exchange_evidence(used, "the logged token set a new password"), candidate.value)
            yield sensor_finding(ctx, masked, "Password-reset token written to the log", extra=extra,
                                 confidence=Confidence.confirmed if used is not None else Confidence.firm)
            return
    finally:
        await reset_if_requested(ctx, request)


# --- authn.reset-token-referer -------------------------------------------------------------------------------


def _response_candidates(ex: Exchange) -> list[TokenCandidate]:
    found: list[TokenCandidate] = []
    location = ex.header("location")
    if location:
        found += _url_candidates(urljoin(ex.request.url, location), "redirect Location")
    for m in re.finditer(r"""(?:href|src|action)=["']([^"']+)["']""", ex.text[:200_000]):
        found += _url_candidates(urljoin(ex.request.url, m.group(1).replace("&amp;", "&")), "link in the response")
    return found


def _synthetic_urls(ctx: CheckContext, token: str) -> list[str]:
    """Reset-like GET pages of the surface with `token` in the path parameter or a token query parameter."""
    auth = discover_auth(ctx.surface, ctx.role_configs)
    names = list(dict.fromkeys(["token", *(c.token_field for c in auth.reset_confirms if c.token_field)]))
    urls: list[str] = []
    for ep in ctx.surface.sorted():
        if ep.method != "GET" or not _RESET_PAGE.search(ep.path) or len(_PATH_PARAM.findall(ep.path)) > 1:
            continue
        if _PATH_PARAM.search(ep.path):
            urls.append(_PATH_PARAM.sub(quote(token, safe=""), ep.path))
        else:
            urls += [f"{ep.path}?{name}={quote(token, safe='')}" for name in names]
    return urls[:MAX_RESET_PAGES]


def referrer_policy(ex: Exchange, doc: object) -> str:
    """The page's policy: the last known token of the header, overridden by a `<meta name=referrer>`."""
    policy = ""
    for value in ex.header_values("referrer-policy"):
        for token in value.split(","):
            if token.strip().lower() in KNOWN_POLICIES:
                policy = token.strip().lower()
    for meta in doc.iter("meta"):  # type: ignore[attr-defined]
        if (meta.get("name") or "").lower() == "referrer" and (meta.get("content") or "").lower() in KNOWN_POLICIES:
            policy = (meta.get("content") or "").lower()
    return policy


def outbound(ex: Exchange) -> tuple[str, list[str]]:
    """(the page's referrer policy, URLs on other hosts that receive the page URL as Referer)."""
    doc = parse_html(ex.text)
    policy = referrer_policy(ex, doc)
    host = urlsplit(ex.request.url).hostname
    leaks: list[str] = []
    for el in doc.iter(*_URL_ATTRS):
        raw = el.get(_URL_ATTRS.get(el.tag, "")) if isinstance(el.tag, str) else None
        if not raw:
            continue
        url = urljoin(ex.request.url, raw.strip())
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname in (None, host):
            continue
        own = (el.get("referrerpolicy") or "").lower()
        if "noreferrer" in (el.get("rel") or "").lower().split():
            own = "no-referrer"
        effective = own if own in KNOWN_POLICIES else policy
        if effective not in STRIPPING_POLICIES:
            leaks.append(url)
    return policy, list(dict.fromkeys(leaks))


def _is_token_page(ex: Exchange, token: str, real: bool) -> bool:
    """A new-password page served at the token URL (a made-up token must show up in the page)."""
    if not (ex.ok and 200 <= ex.status < 300 and ex.is_html and _PASSWORD_INPUT.search(ex.text)):
        return False
    return real or token in ex.text


async def _token_pages(ctx: CheckContext, request: ResetRequest | None) -> list[tuple[str, str, bool]]:
    """(url, token, real) pages to judge: reset links seen in the reset answer or the log, else made-up ones."""
    found: list[tuple[str, str, bool]] = []
    if request is not None:
        candidates = _response_candidates(request.exchange) + [c for c, _ in log_candidates(request)]
        control = request.control.text if request.control is not None else ""
        found = [(c.url, c.value, True) for c in candidates if c.url and c.value not in control]
        if not found:
            found = [(url, c.value, True) for c in candidates if c.keyed and c.value not in control
                     for url in _synthetic_urls(ctx, c.value)]
    if not found:
        fake = f"{ctx.canary(12)}{ctx.canary(12)}"
        found = [(url, fake, False) for url in _synthetic_urls(ctx, fake)]
    return list(dict.fromkeys(found))[:MAX_RESET_PAGES]


@check(id="authn.reset-token-referer", threat="authn.reset-token-referer", scope="target", shard="check")
async def reset_token_referer(ctx: CheckContext) -> AsyncIterator[Finding]:
    """The reset-link page (token in its URL) hands its URL to other sites through the Referer header."""
    request = await request_reset(ctx)
    try:
        for url, token, real in await _token_pages(ctx, request):
            ex = await ctx.send("GET", url, as_role="anonymous")
            if not _is_token_page(ex, token, real):
                continue
            policy, leaks = outbound(ex)
            if not leaks:
                continue
            hosts = sorted({urlsplit(u).hostname or "" for u in leaks})
            said = f"Referrer-Policy {policy}" if policy else "no Referrer-Policy"
            effective = policy or "none (browser default; legacy browsers and webviews send the full URL)"
            why = note("outbound URLs", f"effective policy: {effective}\n" + "\n".join(leaks))
            evidence = _masked([*exchange_evidence(ex, "the page at the reset link (token in the URL)"), why], token)
            path = urlsplit(ex.request.url).path.replace(token, "{token}")
            yield ctx.finding(
                title=f"Reset token sent as Referer to {', '.join(hosts)} ({said}) from {path}",
                confidence=Confidence.confirmed if real and policy in KNOWN_POLICIES else Confidence.firm,
                evidence=evidence, location=Location(method="GET", path=path))
            return
    finally:
        await reset_if_requested(ctx, request)
