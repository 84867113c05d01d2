"""Authentication checks: user enumeration, reset-token leaks and reuse, weak passwords, credentials in URLs.

Endpoints and accounts come from `identity.endpoints` (role configs first, then the surface): no
check here knows a route or a field name of any particular service. Probes that send wrong passwords,
sign accounts up or reset passwords change state, so they run only when `ctx.may_write` allows and
restore the target with `ctx.reset()` afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urljoin, urlsplit

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import body_contains, exchange_evidence, note, proof_from, status_in
from bastion.findings.model import Confidence, Finding, ProofCondition
from bastion.identity.endpoints import (
    Account,
    AuthEndpoint,
    AuthSurface,
    FormSession,
    bogus_like,
    confirm_reset,
    credentials,
    discover_auth,
    login_accepted,
    login_identity,
    role_emails,
    sign_up,
    sign_up_throwaway,
    signature_of,
    strong_password,
)
from bastion.payloads.oracles import encodings, timing_differs
from bastion.target.exchange import Exchange
from bastion.target.html import parse_html

# Rounds of known-vs-unknown requests whose difference must hold every time (noise is not a finding).
ENUM_ROUNDS = 2
# Interleaved timing samples per side and batch; both batches must show the difference.
TIMING_SAMPLES = 12
TIMING_BATCHES = 2
MAX_TOKEN_CANDIDATES = 5
_TOKENISH = re.compile(r"[A-Za-z0-9_\-]{16,}")
_LONG_RANDOM = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{20,256}(?![A-Za-z0-9_\-])")
_TOKEN_KEY = re.compile(r"token|reset|code|key|nonce|secret", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")
_HIDDEN_VALUE = re.compile(r'(<input[^>]*type=["\']?hidden[^>]*value=)["\'][^"\']*["\']', re.IGNORECASE)
_USERINFO_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@\"'<>]+:[^/\s@\"'<>]+@[^\s\"'<>]+", re.IGNORECASE)


def _auth(ctx: CheckContext) -> AuthSurface:
    """The auth surface, computed once per check run."""
    auth = ctx.memo.get("auth")
    if auth is None:
        auth = ctx.memo["auth"] = discover_auth(ctx.surface, ctx.role_configs)
    return auth  # type: ignore[no-any-return]


def _normalized(ex: Exchange, strip: list[str]) -> str:
    """The body without what legitimately varies: submitted values, CSRF tokens, numbers, whitespace."""
    text = ex.text
    for value in sorted(strip, key=len, reverse=True):
        if value:
            for form in {*encodings(value), quote(value, safe=""), quote_plus(value)}:
                text = text.replace(form, "<v>")
    text = _HIDDEN_VALUE.sub(r"\1<h>", text)
    text = _TOKENISH.sub("<t>", text)
    return _SPACE.sub(" ", _DIGITS.sub("<n>", text)).strip()


def _outcome(ex: Exchange, strip: list[str]) -> tuple[Any, ...]:
    status, location, cookies = signature_of(ex)
    for value in strip:
        if value:
            location = location.replace(value, "<v>").replace(quote(value, safe=""), "<v>")
    return status, location, cookies, _normalized(ex, strip)


def _differences(a: tuple[Any, ...], b: tuple[Any, ...]) -> list[str]:
    names = ("status", "redirect target", "cookies set", "body")
    return [name for name, x, y in zip(names, a, b, strict=True) if x != y]


def _distinct_line(ex: Exchange, other: Exchange, strip: list[str]) -> str | None:
    """A line of `ex`'s body that `other`'s body lacks and that holds no submitted value."""
    for line in ex.text.splitlines():
        line = line.strip()
        if 6 <= len(line) <= 200 and line not in other.text and not any(v and v in line for v in strip):
            return line
    return None


def _unknown_identity(endpoint: AuthEndpoint, canary: str) -> str:
    field = endpoint.identity_field or ""
    return f"{canary}@example.com" if field == endpoint.email_field and field else canary


# --- user enumeration -----------------------------------------------------------------------------------


async def _reset_identities(ctx: CheckContext, endpoint: AuthEndpoint, auth: AuthSurface) -> list[tuple[str, str]]:
    """(role, known value) pairs for a reset endpoint's identity field: e-mail or username."""
    if endpoint.identity_field != endpoint.email_field or not endpoint.email_field:
        return [(a.role, a.username) for a in auth.accounts[:1]]
    known = [(a.role, a.email) for a in auth.accounts if a.email]
    if known:
        return known[:1]
    emails = await role_emails(ctx.send, ctx.surface, [r for r in ctx.roles])
    return [(role, email) for role, email in emails.items()][:1]


async def _enumeration_pair(ctx: CheckContext, endpoint: AuthEndpoint, known: str,
                            extra: dict[str, str]) -> tuple[Exchange, Exchange, list[str]]:
    """One round: the known identity and a fresh unknown one, with the same other values."""
    unknown = _unknown_identity(endpoint, ctx.canary())
    field = endpoint.identity_field or ""
    k = await FormSession(ctx.send).submit(endpoint, {**extra, field: known})
    u = await FormSession(ctx.send).submit(endpoint, {**extra, field: unknown})
    return k, u, [known, unknown, *extra.values()]


async def _content_enumeration(ctx: CheckContext, endpoint: AuthEndpoint, known: str,
                               extra: dict[str, str]) -> tuple[Exchange, Exchange, list[str], list[str]] | None:
    """A stable known-vs-unknown difference in status, redirect, cookies or body, or None."""
    seen: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []
    last = None
    for _ in range(ENUM_ROUNDS):
        k, u, strip = await _enumeration_pair(ctx, endpoint, known, extra)
        if not (k.ok and u.ok):
            return None
        seen.append((_outcome(k, strip), _outcome(u, strip)))
        last = (k, u, strip)
    first_k, first_u = seen[0]
    if first_k == first_u or any(pair != seen[0] for pair in seen[1:]) or last is None:
        return None
    k, u, strip = last
    return k, u, strip, _differences(first_k, first_u)


async def _timing_enumeration(ctx: CheckContext, endpoint: AuthEndpoint, known: str,
                              extra: dict[str, str]) -> tuple[float, float] | None:
    """(median known, median unknown) when every batch of interleaved samples differs, else None."""
    import statistics

    field = endpoint.identity_field or ""
    medians = (0.0, 0.0)
    for _ in range(TIMING_BATCHES):
        unknown = _unknown_identity(endpoint, ctx.canary())
        known_times: list[float] = []
        unknown_times: list[float] = []
        for _ in range(TIMING_SAMPLES):
            k = await FormSession(ctx.send).submit(endpoint, {**extra, field: known})
            u = await FormSession(ctx.send).submit(endpoint, {**extra, field: unknown})
            if not (k.ok and u.ok):
                return None
            known_times.append(k.elapsed)
            unknown_times.append(u.elapsed)
        if not timing_differs(known_times, unknown_times):
            return None
        medians = (statistics.median(known_times), statistics.median(unknown_times))
    return medians


async def _enumerate(ctx: CheckContext, endpoint: AuthEndpoint, role: str, known: str,
                     extra: dict[str, str], what: str) -> Finding | None:
    content = await _content_enumeration(ctx, endpoint, known, extra)
    location = ctx.location(method=endpoint.method, path=endpoint.path)
    if content is not None:
        k, u, strip, diffs = content
        line = _distinct_line(u, k, strip)
        condition: ProofCondition = status_in(u.status) if "status" in diffs or line is None else body_contains(line)
        evidence = [*exchange_evidence(k, f"{what} for an existing account ({role})"),
                    *exchange_evidence(u, f"{what} for an unknown account"),
                    note("difference", f"{', '.join(diffs)} differ between an existing and an unknown account, "
                                       f"the same in each of {ENUM_ROUNDS} rounds")]
        return ctx.finding(title=f"User enumeration: {what} responses reveal whether an account exists "
                                 f"({endpoint.key})", confidence=Confidence.confirmed, evidence=evidence,
                           proof=proof_from(u, condition), location=location)
    if ctx.target.reset_hook is None:
        return None  # dozens of failed logins could lock a real account that nothing would restore
    timing = await _timing_enumeration(ctx, endpoint, known, extra)
    if timing is None:
        return None
    faster = "unknown" if timing[1] < timing[0] else "existing"
    summary = (f"{TIMING_BATCHES} batches of {TIMING_SAMPLES} interleaved samples per side; a Mann-Whitney U "
               f"test and a minimum effect size held in every batch: {faster} accounts are answered faster")
    return ctx.finding(title=f"User enumeration by response time: {what} ({endpoint.key})",
                       confidence=Confidence.firm, evidence=[note("timing", summary)], location=location)


@check(id="authn.user-enumeration", threat="authn.user-enumeration", scope="target")
async def user_enumeration(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Compare login and reset answers for a configured account and an unknown one."""
    auth = _auth(ctx)
    wrote = False
    try:
        for endpoint in auth.logins:
            account = next((a for a in auth.accounts if a.login.key == endpoint.key), None)
            if account is None or not endpoint.password_field or not ctx.may_write(endpoint.method, endpoint.path):
                continue
            wrote = True
            wrong = {endpoint.password_field: strong_password(ctx.canary())}
            identity = login_identity(endpoint, account.username, account.email or account.username)
            finding = await _enumerate(ctx, endpoint, account.role, identity, wrong, "login")
            if finding is not None:
                yield finding
        for endpoint in auth.resets:
            if not ctx.may_write(endpoint.method, endpoint.path):
                continue
            for role, known in await _reset_identities(ctx, endpoint, auth):
                wrote = True
                finding = await _enumerate(ctx, endpoint, role, known, {}, "password reset")
                if finding is not None:
                    yield finding
    finally:
        if wrote:
            await ctx.reset()


# --- password reset tokens --------------------------------------------------------------------------------


def _json_token_values(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_token_values(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _json_token_values(v, key)
    elif isinstance(node, str) and _TOKEN_KEY.search(key) and len(node) >= 8:
        yield node, f"JSON field {key!r}"


def _url_token_values(url: str, where: str) -> Iterator[tuple[str, str]]:
    parts = urlsplit(url)
    for name, value in parse_qsl(parts.query):
        if _TOKEN_KEY.search(name) and len(value) >= 8:
            yield value, f"{where} (parameter {name!r})"
    for segment in parts.path.split("/"):
        if _LONG_RANDOM.fullmatch(segment) and any(c.isdigit() for c in segment):
            yield segment, f"{where} (path segment)"


def token_candidates(ex: Exchange, control: Exchange) -> list[tuple[str, str, bool]]:
    """(value, where, keyed) for token-like values in a reset response that the control response lacks.

    `keyed`: found under a token-like name (JSON key, URL parameter) rather than only by its shape.
    """
    out: dict[str, tuple[str, bool]] = {}
    location = ex.header("location")
    if location:
        for value, where in _url_token_values(location, "redirect Location"):
            out.setdefault(value, (where, True))
    if "json" in ex.content_type:
        try:
            for value, where in _json_token_values(json.loads(ex.text)):
                out.setdefault(value, (where, True))
        except ValueError:
            pass
    for m in re.finditer(r"""(?:href|src|action)=["']([^"']+)["']""", ex.text):
        for value, where in _url_token_values(m.group(1).replace("&amp;", "&"), "link in the body"):
            out.setdefault(value, (where, True))
    for m in _LONG_RANDOM.finditer(ex.text):
        value = m.group(0)
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            out.setdefault(value, ("body", False))
    for name, value in ex.headers:
        if name.lower() not in ("set-cookie", "location", "content-security-policy") and _LONG_RANDOM.search(value):
            for m in _LONG_RANDOM.finditer(value):
                out.setdefault(m.group(0), (f"header {name}", _TOKEN_KEY.search(name) is not None))
    kept = [(v, where, keyed) for v, (where, keyed) in out.items() if v not in control.text
            and v not in (control.header("location") or "")]
    return kept[:MAX_TOKEN_CANDIDATES]


class _Leak:
    """A reset token seen in a reset response, and what happened when it was used."""

    def __init__(self, reset: Exchange, token: str, where: str, keyed: bool) -> None:
        self.reset, self.token, self.where, self.keyed = reset, token, where, keyed
        self.confirm: AuthEndpoint | None = None
        self.used: Exchange | None = None
        self.bogus: Exchange | None = None


async def _reset_target(ctx: CheckContext, auth: AuthSurface, reset: AuthEndpoint) -> tuple[str, str] | None:
    """(identity for the reset field, account label): a throw-away account if possible, else a role's."""
    login = auth.logins[0] if auth.logins else None
    for signup in auth.signups:
        if ctx.may_write(signup.method, signup.path):
            throwaway = await sign_up_throwaway(ctx.send, signup, login, ctx.canary())
            if throwaway is not None:
                by_email = reset.identity_field == reset.email_field and reset.email_field
                return (throwaway.email if by_email else throwaway.username), "a throw-away account"
    known = await _reset_identities(ctx, reset, auth)
    return (known[0][1], f"role {known[0][0]}") if known else None


async def _find_leak(ctx: CheckContext, auth: AuthSurface) -> tuple[_Leak, str] | None:
    """Request a reset and look for the token in the answer; try it on the confirm endpoint."""
    for reset in auth.resets:
        if not ctx.may_write(reset.method, reset.path):
            continue
        target = await _reset_target(ctx, auth, reset)
        if target is None:
            continue
        identity, label = target
        field = reset.identity_field or ""
        ex = await FormSession(ctx.send).submit(reset, {field: identity})
        control = await FormSession(ctx.send).submit(reset, {field: _unknown_identity(reset, ctx.canary())})
        for token, where, keyed in token_candidates(ex, control):
            leak = _Leak(ex, token, where, keyed)
            for confirm in auth.reset_confirms:
                if not ctx.may_write(confirm.method, confirm.path):
                    continue
                bogus = await confirm_reset(ctx.send, confirm, bogus_like(token, ctx.canary()),
                                             strong_password(ctx.canary()))
                used = await confirm_reset(ctx.send, confirm, token, strong_password(ctx.canary()))
                if used.ok and used.status < 400 and signature_of(used) != signature_of(bogus) or (
                        used.ok and used.status < 400 <= bogus.status):
                    leak.confirm, leak.used, leak.bogus = confirm, used, bogus
                    return leak, label
            if keyed and not auth.reset_confirms:
                return leak, label
    return None


def _leak_finding(ctx: CheckContext, leak: _Leak, label: str, auth: AuthSurface) -> Finding:
    ex = leak.reset
    endpoint = next(r for r in auth.resets if urlsplit(ex.request.url).path.rstrip("/") == r.path.rstrip("/"))
    evidence = exchange_evidence(ex, f"password reset for {label}: the token is in the {leak.where}",
                                 marker=leak.token)
    confidence = Confidence.firm
    if leak.used is not None and leak.confirm is not None:
        confidence = Confidence.confirmed
        evidence += exchange_evidence(leak.used, f"the leaked token set a new password at {leak.confirm.key}")
    # The token is a live credential (and differs per run): evidence names it, never shows it.
    evidence = [e.model_copy(update={"content": e.content.replace(leak.token, "<reset-token>")}) for e in evidence]
    return ctx.finding(title=f"Password-reset token returned to the requester ({endpoint.key}, {leak.where})",
                       confidence=confidence, evidence=evidence, proof=None,
                       location=ctx.location(method=endpoint.method, path=endpoint.path))


@check(id="authn.reset-token-leak", threat="authn.reset-token-leak", scope="target")
async def reset_token_leak(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Ask for a password reset and look for the token in the response, its headers and redirect."""
    auth = _auth(ctx)
    if not auth.resets:
        return
    try:
        found = await _find_leak(ctx, auth)
        if found is not None:
            yield _leak_finding(ctx, *found, auth)
    finally:
        await ctx.reset()


@check(id="authn.reset-token-reuse", threat="authn.reset-token-reuse", scope="target")
async def reset_token_reuse(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Use an obtained reset token twice: the second use must be refused."""
    auth = _auth(ctx)
    if not auth.resets or not auth.reset_confirms:
        return
    try:
        found = await _find_leak(ctx, auth)
        if found is None or found[0].used is None or found[0].confirm is None:
            return
        leak, label = found
        assert leak.confirm is not None and leak.used is not None and leak.bogus is not None
        again = await confirm_reset(ctx.send, leak.confirm, leak.token, strong_password(ctx.canary()))
        if not (again.ok and again.status < 400 and signature_of(again) == signature_of(leak.used)
                and _normalized(again, []) != _normalized(leak.bogus, [])):
            return
        evidence = [*exchange_evidence(leak.used, f"first use of a reset token issued for {label}"),
                    *exchange_evidence(again, "second use of the same token: accepted again")]
        yield ctx.finding(title=f"Password-reset token accepted twice ({leak.confirm.key})",
                          confidence=Confidence.confirmed, evidence=evidence,
                          location=ctx.location(method=leak.confirm.method, path=leak.confirm.path))
    finally:
        await ctx.reset()


# --- weak password policy ---------------------------------------------------------------------------------


async def _weak_via_signup(ctx: CheckContext, auth: AuthSurface, signup: AuthEndpoint) -> Finding | None:
    weak = [str(w) for w in ctx.payloads.get("weak_passwords")]
    strong_name = ctx.canary()
    strong = await sign_up(ctx.send, signup, strong_name, f"{strong_name}@example.com", strong_password(strong_name))
    if not (strong.ok and strong.status < 400):
        return None
    accepted: list[tuple[str, Exchange]] = []
    login = auth.logins[0] if auth.logins else None
    for template in weak:
        name = ctx.canary()
        password = template.replace("{username}", name)
        ex = await sign_up(ctx.send, signup, name, f"{name}@example.com", password)
        if not (ex.ok and signature_of(ex) == signature_of(strong)):
            continue
        if login is not None:
            identity = login_identity(login, name, f"{name}@example.com")
            failed = await FormSession(ctx.send).submit(login, credentials(login, identity, password + "x9"))
            ok = await FormSession(ctx.send).submit(login, credentials(login, identity, password))
            if not login_accepted(ok, failed, login.path):
                continue
        accepted.append((template, ex))
    if not accepted:
        return None
    listed = ", ".join(repr(t) for t, _ in accepted)
    evidence = [*exchange_evidence(accepted[0][1], f"sign-up with the password {accepted[0][0]!r} accepted"),
                note("weak passwords accepted", f"{listed} (each for a new account"
                     + (", which then logged in)" if login else ")"))]
    return ctx.finding(title=f"Weak passwords accepted at sign-up ({signup.key})",
                       confidence=Confidence.confirmed if login else Confidence.firm, evidence=evidence,
                       location=ctx.location(method=signup.method, path=signup.path))


async def _weak_via_change(ctx: CheckContext, auth: AuthSurface, change: AuthEndpoint) -> Finding | None:
    for account in auth.accounts:
        if account.role not in ctx.roles or not change.password_field or not change.current_password_field:
            continue
        weak = "123456"
        session = FormSession(ctx.send, as_role=account.role)
        refused = await session.submit(change, {change.current_password_field: account.password + "x9",
                                                **{f: weak for f in (change.password_field, *change.confirm_fields)}})
        ex = await session.submit(change, {change.current_password_field: account.password,
                                           **{f: weak for f in (change.password_field, *change.confirm_fields)}})
        if not (ex.ok and ex.status < 400) or _outcome(ex, []) == _outcome(refused, []):
            return None
        login = account.login
        identity = login_identity(login, account.username, account.email or account.username)
        failed = await FormSession(ctx.send).submit(login, credentials(login, identity, weak + "x9"))
        ok = await FormSession(ctx.send).submit(login, credentials(login, identity, weak))
        if not login_accepted(ok, failed, login.path):
            return None
        return ctx.finding(title=f"Weak password accepted by password change ({change.key})",
                           confidence=Confidence.confirmed,
                           evidence=exchange_evidence(ex, f"{account.role} changed the password to '123456'"),
                           location=ctx.location(method=change.method, path=change.path))
    return None


@check(id="authn.weak-password-policy", threat="authn.weak-password-policy", scope="target")
async def weak_password_policy(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Sign up (or change a role's password) with common, short and username-equal passwords."""
    auth = _auth(ctx)
    wrote = found = False
    try:
        # Every sign-up: each may validate passwords in its own code (a form page and a JSON API).
        for signup in auth.signups:
            if ctx.may_write(signup.method, signup.path):
                wrote = True
                finding = await _weak_via_signup(ctx, auth, signup)
                if finding is not None:
                    found = True
                    yield finding
        if found:
            return
        for change in auth.password_changes:
            if ctx.may_write(change.method, change.path):
                wrote = True
                finding = await _weak_via_change(ctx, auth, change)
                if finding is not None:
                    yield finding
                    return
    finally:
        if wrote:
            await ctx.reset()


# --- credentials in URLs ----------------------------------------------------------------------------------


async def _query_login(ctx: CheckContext, account: Account) -> Finding | None:
    """Log in with the credentials in the query string instead of the body."""
    login = account.login
    identity = login_identity(login, account.username, account.email or account.username)
    for method in dict.fromkeys((login.method, "GET")):
        wrong = await FormSession(ctx.send).submit(
            login, credentials(login, identity, strong_password(ctx.canary())), in_query=True, method=method)
        right = await FormSession(ctx.send).submit(
            login, credentials(login, identity, account.password), in_query=True, method=method)
        if login_accepted(right, wrong, login.path) and signature_of(right) != signature_of(wrong):
            evidence = [*exchange_evidence(right, f"{method} {login.path} with {account.role}'s credentials "
                                                  "in the query string (body without them): logged in"),
                        *exchange_evidence(wrong, "the same with a wrong password: refused")]
            return ctx.finding(title=f"Login accepts credentials in the query string ({method} {login.path})",
                               confidence=Confidence.confirmed, evidence=evidence,
                               location=ctx.location(method=method, path=login.path))
    return None


def _get_password_forms(ex: Exchange) -> list[str]:
    """Actions of forms on the page that hold a password field but submit with GET."""
    if not ex.is_html:
        return []
    out = []
    for form in parse_html(ex.text).iter("form"):
        method = (form.get("method") or "get").strip().lower()
        if method == "get" and any((el.get("type") or "").lower() == "password" for el in form.iter("input")):
            out.append(urljoin(ex.request.url, form.get("action") or ex.request.url))
    return out


async def _page_problems(ctx: CheckContext, auth: AuthSurface) -> AsyncIterator[Finding]:
    pages = list(dict.fromkeys(["/", *(e.form_page for e in [*auth.logins, *auth.signups] if e.form_page)]))
    for page in pages:
        ex = await ctx.send("GET", page, as_role="anonymous", follow_redirects=True)
        if not ex.ok or ex.status >= 400:
            continue
        for action in _get_password_forms(ex):
            yield ctx.finding(title=f"Password form submits with GET (credentials in the URL) on {page}",
                              confidence=Confidence.firm,
                              evidence=exchange_evidence(ex, f"form with a password field, method GET, "
                                                             f"action {action}"),
                              location=ctx.location(method="GET", path=page))
        m = _USERINFO_URL.search(ex.text)
        if m:
            yield ctx.finding(title=f"Link with embedded credentials (user:password@) on {page}",
                              confidence=Confidence.firm,
                              evidence=exchange_evidence(ex, "URL with user information", marker=m.group(0)),
                              location=ctx.location(method="GET", path=page))


@check(id="authn.credentials-in-url", threat="authn.credentials-in-url", scope="target")
async def credentials_in_url(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Credentials sent or accepted in URLs: query-string logins, GET password forms, user:pass@ links."""
    auth = _auth(ctx)
    wrote = False
    try:
        seen: set[str] = set()
        for account in auth.accounts:
            if account.login.key in seen or not ctx.may_write(account.login.method, account.login.path):
                continue
            seen.add(account.login.key)
            wrote = True
            finding = await _query_login(ctx, account)
            if finding is not None:
                yield finding
        async for finding in _page_problems(ctx, auth):
            yield finding
    finally:
        if wrote:
            await ctx.reset()
