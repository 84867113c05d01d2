"""Cross-site request forgery: replay a cookie-authenticated state change the way another site could send it.

For each state-changing entry point a cookie role can call, the check sends (1) the legitimate request
as the browser would (with the form's hidden token, a `<meta>` token or the double-submit cookie echoed
in a header) and (2) the forged one: same cookies, no token, `Origin`/`Referer` of a foreign site and a
body a cross-site HTML form can send (urlencoded, multipart, or text/plain shaped like JSON). Forged
accepted like the legitimate one = finding: `confirmed` when a canary sent in the forged request shows
up when the data is read back, `firm` when the forged response is the legitimate one (canaries masked).
Unlike a "no token in the form" rule, a form whose app checks Origin, a JSON-only API, or a rejected
token-less request stays silent.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, note, proof_from, status_in
from bastion.findings.model import Confidence, Finding, Severity
from bastion.identity.matrix import DENY, access_outcome, is_login_redirect
from bastion.identity.probe import cookie_attributes, fresh_login, set_cookie_headers
from bastion.surface.crawl import LOGOUT_WORDS
from bastion.surface.model import EntryPoint
from bastion.surface.requests import build_request
from bastion.target.exchange import Exchange
from bastion.target.html import parse_html

MAX_ENDPOINTS = 24
# GET pages fetched per role while looking for the HTML form that posts to an entry point.
MAX_FORM_PAGES = 8
FOREIGN_ORIGIN = "https://attacker.example"
STATE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# The form field Rails, Laravel, Symfony and method-override middlewares read the real method from.
METHOD_OVERRIDE = "_method"
# Login (and sign-up) CSRF is a separate, low-value class; logout ends the role's session.
_AUTH_FLOW = re.compile(r"(^|/)(log-?in|sign-?in|sign-?up|register|token|refresh|" +
                        "|".join(re.escape(w) for w in LOGOUT_WORDS) + r")(/|$)", re.IGNORECASE)
_TOKEN_NAME = re.compile(r"csrf|xsrf|authenticity|_token$|^token$|nonce|requestverification", re.IGNORECASE)
# Headers SPAs and frameworks read the token from (Django, Angular, Rails/Laravel); sent only legitimately.
_TOKEN_HEADERS = ("X-CSRFToken", "X-CSRF-Token", "X-XSRF-TOKEN")
_META_TOKEN = re.compile(r"csrf|xsrf", re.IGNORECASE)
_UNSAFE_PAGE = re.compile(r"log-?out|sign-?out|delete|remove|destroy|revoke", re.IGNORECASE)
# A hidden value this long and this random is a per-session secret a foreign page cannot know.
_SECRET_LEN, _SECRET_ENTROPY = 16, 3.0
_EMAIL_FIELD = re.compile(r"e-?mail", re.IGNORECASE)
_SKIP_MARK = re.compile(r"pass|pwd|secret|otp|code|csrf|xsrf|token|id$|^id|url|date|phone", re.IGNORECASE)


@dataclass
class _Form:
    """The HTML form posting to an entry point: the page holding it, its fields and its token fields."""

    page: str
    fields: dict[str, str] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    meta_token: str | None = None


@dataclass
class _Attempt:
    legit: Exchange
    forged: Exchange
    readback: Exchange | None
    verified: bool
    tokens: list[str]


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values()) if value else 0.0


def _is_secret(name: str, value: str) -> bool:
    """Whether a hidden field carries an anti-forgery secret (by name, or by looking random)."""
    return bool(_TOKEN_NAME.search(name)) or (len(value) >= _SECRET_LEN and _entropy(value) >= _SECRET_ENTROPY)


def _parse_form(html: str, page_url: str, page: str, action_path: str) -> _Form | None:
    """The POST form on the page whose action is `action_path` (its fields, token fields and meta token)."""
    root = parse_html(html)
    meta = next((m.get("content") for m in root.iter("meta")
                 if _META_TOKEN.search(m.get("name") or "") and m.get("content")), None)
    for form in root.iter("form"):
        if (form.get("method") or "get").strip().lower() != "post":
            continue
        action = urlsplit(urljoin(page_url, (form.get("action") or "").strip() or page_url)).path
        if action.rstrip("/") != action_path.rstrip("/"):
            continue
        found = _Form(page, meta_token=meta)
        for el in form.iter("input", "textarea", "select"):
            name = el.get("name")
            if not name:
                continue
            kind = (el.get("type") or "text").lower()
            if kind in ("submit", "button", "reset", "image", "file"):
                continue
            value = el.get("value") or ""
            found.fields[name] = value
            if kind == "hidden" and _is_secret(name, value):
                found.tokens.add(name)
        return found
    return None


def _form_pages(ctx: CheckContext, ep: EntryPoint, path: str) -> list[str]:
    """GET pages likely to hold the form for `ep`: its own path, then pages sharing the longest prefix."""
    def shared(p: str) -> int:
        return len([a for a, b in zip(p.split("/"), path.split("/"), strict=False) if a == b])

    pages = [ep2.path for ep2 in ctx.surface.sorted() if ep2.method == "GET" and "{" not in ep2.path
             and not _UNSAFE_PAGE.search(ep2.path) and ep2.path != path]
    pages.sort(key=lambda p: -shared(p))
    return [path, *pages][:MAX_FORM_PAGES]


async def _find_form(ctx: CheckContext, role: str, ep: EntryPoint, path: str) -> _Form | None:
    """The form that posts to `path`, as `role` sees it (fresh: tokens may be per request)."""
    for page in _form_pages(ctx, ep, path):
        key = f"page:{role}:{page}"
        if ctx.memo.get(key) is False:
            continue  # fetched before: no form there for anything
        ex = await ctx.send("GET", page, as_role=role)
        if not (ex.ok and 200 <= ex.status < 300 and ex.is_html and "<form" in ex.text.lower()):
            ctx.memo[key] = False
            continue
        found = _parse_form(ex.text, ex.request.url, page, path)
        if found is not None:
            return found
    return None


def _mark_field(names: list[str], skip: set[str]) -> str | None:
    """The field that carries the canary: a free-text one a read-back page is likely to show."""
    candidates = [n for n in names if n not in skip and not _SKIP_MARK.search(n)]
    return candidates[0] if candidates else None


def _mark_value(name: str, canary: str) -> str:
    return f"{canary}@example.com" if _EMAIL_FIELD.search(name) else canary


def _legit_kwargs(ctx: CheckContext, role: str, ep: EntryPoint, form: _Form | None,
                  canary: str) -> tuple[dict[str, Any], str | None, list[str]]:
    """The browser's own request: (httpx kwargs, canary field, token values sent)."""
    spec = build_request(ep)
    kwargs: dict[str, Any] = {"params": spec.params or None, "headers": dict(spec.headers)}
    tokens: list[str] = []
    jar = ctx.roles[role].cookies
    for name, value in jar.items():
        if _TOKEN_NAME.search(name):  # double-submit cookie: the page's script echoes it in a header
            kwargs["headers"].update({h: value for h in _TOKEN_HEADERS})
            tokens.append(value)
    if form is not None and form.meta_token:
        kwargs["headers"].update({h: form.meta_token for h in _TOKEN_HEADERS})
        tokens.append(form.meta_token)
    if spec.json is not None and form is None:
        body = spec.json if isinstance(spec.json, dict) else {}
        mark = _mark_field([k for k, v in body.items() if isinstance(v, str)], set())
        if mark is not None:
            body[mark] = _mark_value(mark, canary)
        kwargs["json"] = body
        return kwargs, mark, tokens
    data = dict(spec.form or {})
    if form is not None:
        data.update({k: v for k, v in form.fields.items() if k not in data or k in form.tokens})
        tokens += [form.fields[t] for t in form.tokens if form.fields[t]]
    skip = form.tokens if form is not None else set()
    mark = _mark_field(list(data), skip)
    if mark is not None:
        data[mark] = _mark_value(mark, canary)
    if spec.files:
        kwargs["files"] = spec.files
    kwargs["data"] = data or None
    return kwargs, mark, tokens


def _forged_variants(method: str, legit: dict[str, Any], mark: str | None, canary: str,
                     form: _Form | None) -> list[tuple[str, dict[str, Any]]]:
    """What another site's page can send: no token fields or headers, foreign Origin and Referer."""
    headers = {k: v for k, v in legit["headers"].items() if k not in _TOKEN_HEADERS}
    headers.update({"Origin": FOREIGN_ORIGIN, "Referer": f"{FOREIGN_ORIGIN}/"})
    base = {"params": legit["params"], "headers": headers}
    # HTML forms only send GET and POST: PUT/PATCH/DELETE are forgeable only through a method override.
    override = {} if method == "POST" else {METHOD_OVERRIDE: method}
    if "json" in legit:
        body = dict(legit["json"])
        if mark is not None:
            body[mark] = _mark_value(mark, canary)
        flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        # enctype=text/plain sends `name=value`: a JSON text is forgeable when a string in it holds the "=".
        text = {**body, mark: body[mark].replace("@", "=@") if "@" in body[mark] else f"{canary}=x"} \
            if mark is not None else None
        variants = [("form-encoded", {**base, "data": {**flat, **override}})]
        if text is not None and not override:
            variants.append(("text/plain", {**base, "content": json.dumps(text).encode(),
                                            "headers": {**headers, "Content-Type": "text/plain"}}))
        return variants
    tokens = form.tokens if form is not None else set()
    # A token field the surface knows (handler reads `csrf_token`) is dropped even when no form showed it.
    data = {k: v for k, v in (legit.get("data") or {}).items() if k not in tokens and not _TOKEN_NAME.search(k)}
    if mark is not None:
        data[mark] = _mark_value(mark, canary)
    data.update(override)
    kind = "multipart" if legit.get("files") else "form-encoded"
    return [(kind, {**base, "data": data or None, **({"files": legit["files"]} if legit.get("files") else {})})]


def _accepted(ex: Exchange, login_paths: tuple[str, ...]) -> bool:
    return ex.ok and 200 <= ex.status < 400 and not is_login_redirect(ex, login_paths)


def _masked(ex: Exchange, values: list[str]) -> tuple[int, str, str]:
    text, location = ex.text, ex.header("location") or ""
    for v in sorted((v for v in values if v), key=len, reverse=True):
        text, location = text.replace(v, "\x00"), location.replace(v, "\x00")
    return ex.status, location, text


async def _read_back(ctx: CheckContext, role: str, pages: list[str], marker: str) -> tuple[bool, Exchange | None]:
    """Whether `marker` shows on one of the pages `role` reads (the form page, the entry point's GET)."""
    last = None
    for page in pages:
        ex = await ctx.send("GET", page, as_role=role)
        last = ex
        if ex.ok and 200 <= ex.status < 300 and marker in ex.text:
            return True, ex
    return False, last


def _readback_pages(ctx: CheckContext, path: str, form: _Form | None) -> list[str]:
    pages = [form.page] if form is not None else []
    if ctx.surface.get("GET", path) is not None or form is None:
        pages.append(path)
    return list(dict.fromkeys(pages))


def _cookie_roles(ctx: CheckContext) -> list[str]:
    """Roles whose credentials are cookies: a bearer header is not sent by a browser cross-site."""
    return [name for name, s in ctx.roles.items()
            if s.cookies and not any(h.lower() == "authorization" for h in s.headers)]


def _candidates(ctx: CheckContext) -> list[EntryPoint]:
    """State-changing entry points outside login/logout flows, HTML-form endpoints first, bounded."""
    login_paths = {s.login_path.rstrip("/") for s in ctx.roles.values() if s.login_path}
    eps = [ep for ep in ctx.surface.sorted() if ep.method in STATE_METHODS and not _AUTH_FLOW.search(ep.path)
           and ep.path.rstrip("/") not in login_paths and ctx.may_write(ep.method, ep.path)]
    eps.sort(key=lambda ep: ("form" not in ep.body_locations and "multipart" not in ep.body_locations))
    return eps[:MAX_ENDPOINTS]


async def _same_site(ctx: CheckContext, role: str) -> str | None:
    """The SameSite the role's session cookies all set explicitly (Lax/Strict), from a fresh login; else None."""
    key = f"samesite:{role}"
    if key not in ctx.memo:
        ctx.memo[key] = None
        fresh = await fresh_login(ctx, role)
        if fresh is not None:
            # The cookies the login sets carry the session; a token cookie is meant to be read cross-site.
            values = {cookie_attributes(raws[-1][1]).get("samesite", "").lower()
                      for name in ctx.roles[role].cookies if not _TOKEN_NAME.search(name)
                      if (raws := set_cookie_headers(fresh[1], name))}
            if values and values <= {"lax", "strict"}:
                ctx.memo[key] = "Strict" if values == {"strict"} else "Lax"
    return ctx.memo[key]  # type: ignore[no-any-return]


async def _needs_session(ctx: CheckContext, ep: EntryPoint, path: str, login_paths: tuple[str, ...]) -> bool:
    """Whether an anonymous client is denied (memoised): forging a request that needs no session gains nothing."""
    key = f"needs_session:{ep.key}"
    if key not in ctx.memo:
        spec = build_request(ep)
        anon = await ctx.send(ep.method, path, as_role="anonymous", **spec.kwargs())
        ctx.memo[key] = access_outcome(anon, login_paths) == DENY
    return bool(ctx.memo[key])


async def _attempt(ctx: CheckContext, role: str, ep: EntryPoint, login_paths: tuple[str, ...]) -> _Attempt | None:
    """Legitimate request, then the forged variants; the first forged request accepted like the legitimate one."""
    path = build_request(ep).path
    if not await _needs_session(ctx, ep, path, login_paths):
        return None
    form = await _find_form(ctx, role, ep, path) if ep.method == "POST" else None
    legit_canary = ctx.canary()
    kwargs, mark, tokens = _legit_kwargs(ctx, role, ep, form, legit_canary)
    if "json" not in kwargs and not kwargs.get("data") and not kwargs.get("files"):
        return None  # nothing a form could carry: no effect to verify, no body to forge
    legit = await ctx.send(ep.method, path, as_role=role, **{k: v for k, v in kwargs.items() if v is not None})
    if not _accepted(legit, login_paths):
        return None
    pages = _readback_pages(ctx, path, form)
    verified = mark is not None and (await _read_back(ctx, role, pages, legit_canary))[0]
    if ep.method == "DELETE":
        await ctx.target.reset()  # the legitimate request deleted the record the forged one needs
    for _kind, forged_kwargs in _forged_variants(ep.method, kwargs, mark, forged_canary := ctx.canary(), form):
        forged = await ctx.send("POST", path, as_role=role, **{k: v for k, v in forged_kwargs.items()
                                                                  if v is not None})
        if not _accepted(forged, login_paths) or forged.status // 100 != legit.status // 100:
            continue
        if verified:
            seen, readback = await _read_back(ctx, role, pages, forged_canary)
            if seen:
                return _Attempt(legit, forged, readback, True, tokens)
            continue
        masks = [legit_canary, forged_canary, *tokens]
        if _masked(legit, masks) == _masked(forged, masks):
            return _Attempt(legit, forged, None, False, tokens)
    return None


def _finding(ctx: CheckContext, role: str, ep: EntryPoint, a: _Attempt, same_site: str | None) -> Finding:
    how = "a canary from the forged request shows when the data is read back" if a.verified else \
        "the forged request got the legitimate response (canaries masked)"
    evidence = [note("forged cross-site request accepted",
                     f"{role}'s cookies with Origin {FOREIGN_ORIGIN}, no anti-CSRF token: {how}."),
                *exchange_evidence(a.legit, "legitimate request"),
                *exchange_evidence(a.forged, "forged cross-site request")]
    if a.readback is not None:
        evidence += exchange_evidence(a.readback, "read back after the forged request")
    severity = Severity.medium
    if same_site:
        # Browsers keep an explicit Lax/Strict cookie off cross-site POSTs: what is left is defence in depth
        # (old browsers, sibling subdomains), reported as info so well-built apps relying on it scan clean.
        severity = Severity.info
        evidence.append(note(f"session cookie SameSite={same_site}",
                             f"Browsers do not send a SameSite={same_site} cookie on cross-site POSTs, which "
                             "limits this to older browsers and same-site (sub)domains."))
    f = ctx.finding(title=f"Cross-site request forgery: {ep.method} {ep.path} accepts a forged request",
                    confidence=Confidence.confirmed if a.verified else Confidence.firm, evidence=evidence,
                    proof=proof_from(a.forged, status_in(a.forged.status)), location=ctx.location(ep=ep),
                    severity=severity)
    return f.model_copy(update={"role": role})


@check(id="csrf.state-change", threat="csrf.state-change", scope="target", shard="check", cost=60)
async def csrf_state_change(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Forge each cookie-authenticated state change from a foreign origin without its token."""
    roles = _cookie_roles(ctx)
    if not roles:
        ctx.skip("no role authenticated by cookies")
        return
    eps = _candidates(ctx)
    if not eps:
        ctx.skip("no state-changing entry point the write policy allows")
        return
    login_paths = tuple(s.login_path for s in ctx.roles.values() if s.login_path)
    try:
        for ep in eps:
            for role in roles:
                attempt = await _attempt(ctx, role, ep, login_paths)
                if attempt is None:
                    continue
                yield _finding(ctx, role, ep, attempt, await _same_site(ctx, role))
                break
    finally:
        await ctx.reset()
