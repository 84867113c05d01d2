"""Security response headers and cookie flags, checked site-wide on a sample of GET responses.

Each check fetches the same bounded sample (`/` plus up to SAMPLE-1 GET entry points at their benign
defaults, redirects followed in scope) and reports at most once for the whole site, located at the
first affected path, with every affected path listed in the evidence. Cookie flags are reported once
per cookie name. Missing headers are observed facts on a recorded response, hence `confirmed`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import (
    exchange_evidence,
    header_contains,
    header_matches,
    header_missing,
    note,
    proof_from,
    stable_cookie,
)
from bastion.findings.model import Confidence, Finding, InputRef, Location, ProofCondition
from bastion.surface.sampling import sample_get_requests
from bastion.target.exchange import Exchange

SAMPLE = 20
CSP = "content-security-policy"
_META_CSP = re.compile(
    r"""<meta\s[^>]*http-equiv\s*=\s*["']?content-security-policy["']?[^>]*content\s*=\s*["']([^"']*)""",
    re.IGNORECASE)
_META_REFERRER = re.compile(
    r"""<meta\s[^>]*name\s*=\s*["']?referrer["']?[^>]*content\s*=\s*["']([^"']*)""", re.IGNORECASE)
_WEAK_REFERRER = {"unsafe-url", "no-referrer-when-downgrade"}
_REFERRER_TOKENS = {"no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
                    "same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url"}


@dataclass
class Sampled:
    """One sampled response and the path a finding should name for it."""

    path: str
    ex: Exchange


async def sample_responses(ctx: CheckContext, *, first_visit: bool = False) -> list[Sampled]:
    """Fetch `/` and up to SAMPLE-1 GET entry points (at most SAMPLE requests plus redirect hops).

    `first_visit` sends no cookies, as a new visitor would: apps set their session cookie then.
    """
    out: list[Sampled] = []
    for ep, spec in sample_get_requests(ctx.surface, SAMPLE):
        if first_visit:
            spec.cookies = {}
        ex = await ctx.send_spec(spec, follow_redirects=True)
        if not ex.ok:
            continue
        # Name the route template unless a redirect moved us elsewhere.
        path = ep.path if ep is not None and not ex.history else httpx.URL(ex.request.url).path
        out.append(Sampled(path, ex))
    return out


def _successful(samples: list[Sampled]) -> list[Sampled]:
    return [s for s in samples if 200 <= s.ex.status < 300]


def _site_finding(ctx: CheckContext, affected: list[Sampled], title: str, summary: str,
                  conditions: list[ProofCondition], marker: str | None = None,
                  severity: str | None = None) -> Finding:
    first = affected[0]
    paths = sorted({s.path for s in affected})
    return ctx.finding(
        title=title, confidence=Confidence.confirmed, severity=severity,
        location=Location(method="GET", path=first.path, url=first.ex.request.url),
        evidence=[*exchange_evidence(first.ex, summary, marker),
                  note(f"{len(paths)} of the sampled responses are affected", "\n".join(paths))],
        proof=proof_from(first.ex, *conditions))


# --- Content-Security-Policy -----------------------------------------------------------------

def parse_csp(policy: str) -> dict[str, list[str]]:
    """Directive name -> source list; the first occurrence of a directive wins, as in browsers."""
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        tokens = part.split()
        if tokens and tokens[0].lower() not in out:
            out[tokens[0].lower()] = tokens[1:]
    return out


def csp_weakness(policy: str) -> tuple[str, str] | None:
    """Why a policy does not stop injected script, and the token that shows it; None if it does."""
    directives = parse_csp(policy)
    sources = directives.get("script-src", directives.get("default-src"))
    if sources is None:
        return ("has no script-src or default-src, so scripts load from anywhere", "")
    lowered = [s.lower() for s in sources]
    for wildcard in ("*", "http:", "https:", "data:"):
        if wildcard in lowered:
            return (f"allows scripts from {wildcard!r}", wildcard)
    # A nonce, hash or 'strict-dynamic' makes browsers ignore 'unsafe-inline' (CSP level 2+).
    neutralised = any(s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) or s == "'strict-dynamic'"
                      for s in lowered)
    if "'unsafe-inline'" in lowered and not neutralised:
        return ("allows inline scripts ('unsafe-inline' without a nonce or hash)", "'unsafe-inline'")
    return None


def _policies(ex: Exchange) -> tuple[list[str], bool]:
    """The CSPs a response enforces (headers, else <meta>) and whether they came from headers."""
    headers = ex.header_values(CSP)
    if headers:
        return headers, True
    return _META_CSP.findall(ex.text[:65536]), False


@check(id="headers.csp-missing", threat="headers.csp-missing", scope="target", cost=26.0)
async def csp_missing(ctx: CheckContext) -> AsyncIterator[Finding]:
    """HTML responses without a Content-Security-Policy, or with one that allows injected script.

    Bound: SAMPLE requests (plus redirect hops).
    """
    html = [s for s in _successful(await sample_responses(ctx)) if s.ex.is_html]
    missing = [s for s in html if not _policies(s.ex)[0]]
    if missing:
        yield _site_finding(ctx, missing, "Content-Security-Policy header missing on HTML pages",
                            "HTML response without Content-Security-Policy", [header_missing(CSP)])
        return
    weak: list[tuple[Sampled, tuple[str, str], bool]] = []
    for s in html:
        policies, from_header = _policies(s.ex)
        reasons = [csp_weakness(p) for p in policies]
        # Every enforced policy must be satisfied, so one strict policy protects the page.
        if all(reasons):
            weak.append((s, reasons[0], from_header))  # type: ignore[arg-type]
    if weak:
        s0, (why, token), from_header = weak[0]
        if from_header:
            cond = (header_contains(CSP, token) if token
                    else header_matches(CSP, r"^(?!.*(?:script-src|default-src))"))
        else:
            cond = ProofCondition(kind="body_contains", value=token or "Content-Security-Policy")
        yield _site_finding(ctx, [w[0] for w in weak], f"Content-Security-Policy is weak: it {why}",
                            "HTML response with a bypassable Content-Security-Policy", [cond],
                            severity="low")


# --- X-Content-Type-Options ------------------------------------------------------------------

@check(id="headers.xcto-missing", threat="headers.xcto-missing", scope="target", cost=26.0)
async def xcto_missing(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Responses with a body but without `X-Content-Type-Options: nosniff`. Bound: SAMPLE requests."""
    affected = []
    for s in _successful(await sample_responses(ctx)):
        value = (s.ex.header("x-content-type-options") or "").strip().lower()
        if s.ex.body and value != "nosniff":
            affected.append(s)
    if affected:
        sent = affected[0].ex.header("x-content-type-options")
        cond = (header_missing("x-content-type-options") if sent is None
                else header_matches("x-content-type-options", "^" + re.escape(sent) + "$"))
        yield _site_finding(ctx, affected, "X-Content-Type-Options: nosniff missing",
                            "response without X-Content-Type-Options: nosniff", [cond])


# --- Framing ---------------------------------------------------------------------------------

def _frame_protected(ex: Exchange) -> bool:
    xfo = (ex.header("x-frame-options") or "").strip().lower()
    if xfo in ("deny", "sameorigin"):
        return True
    # frame-ancestors is honoured only in a header policy, never in <meta>.
    return any("frame-ancestors" in parse_csp(p) for p in ex.header_values(CSP))


@check(id="headers.frame-options-missing", threat="headers.frame-options-missing", scope="target", cost=26.0)
async def frame_options_missing(ctx: CheckContext) -> AsyncIterator[Finding]:
    """HTML pages that any site may frame (no X-Frame-Options, no CSP frame-ancestors).

    Bound: SAMPLE requests.
    """
    affected = [s for s in _successful(await sample_responses(ctx))
                if s.ex.is_html and not _frame_protected(s.ex)]
    if affected:
        ex = affected[0].ex
        conds = [header_missing(CSP) if not ex.header_values(CSP)
                 else header_matches(CSP, r"^(?!.*frame-ancestors)")]
        xfo = ex.header("x-frame-options")
        conds.insert(0, header_missing("x-frame-options") if xfo is None
                     else header_matches("x-frame-options", "^" + re.escape(xfo) + "$"))
        yield _site_finding(ctx, affected, "Pages can be framed by any site (clickjacking)",
                            "HTML response without X-Frame-Options or CSP frame-ancestors", conds)


# --- HSTS ------------------------------------------------------------------------------------

def hsts_max_age(value: str | None) -> int | None:
    """The max-age of a Strict-Transport-Security value, None when absent or unparsable."""
    if not value:
        return None
    m = re.search(r"max-age\s*=\s*\"?(\d+)\"?", value, re.IGNORECASE)
    return int(m.group(1)) if m else None


@check(id="headers.hsts-missing", threat="headers.hsts-missing", scope="target", cost=26.0)
async def hsts_missing(ctx: CheckContext) -> AsyncIterator[Finding]:
    """HTTPS responses without Strict-Transport-Security (or with max-age=0). Bound: SAMPLE requests.

    Only meaningful over https: browsers ignore the header on plain-http responses.
    """
    if not ctx.target.is_https:
        return
    affected = [s for s in _successful(await sample_responses(ctx))
                if not hsts_max_age(s.ex.header("strict-transport-security"))]
    if affected:
        value = affected[0].ex.header("strict-transport-security")
        cond = (header_missing("strict-transport-security") if value is None
                else header_matches("strict-transport-security", "^" + re.escape(value) + "$"))
        title = ("Strict-Transport-Security missing" if value is None
                 else "Strict-Transport-Security disables itself (max-age=0 or unparsable)")
        yield _site_finding(ctx, affected, title, "HTTPS response without a working HSTS policy", [cond])


# --- Referrer-Policy -------------------------------------------------------------------------

def effective_referrer_policy(ex: Exchange) -> str | None:
    """The policy a browser applies: the last recognised token of the header, else of <meta>."""
    raw = ",".join(ex.header_values("referrer-policy"))
    if not raw:
        raw = ",".join(_META_REFERRER.findall(ex.text[:65536]))
    tokens = [t.strip().lower() for t in raw.split(",") if t.strip().lower() in _REFERRER_TOKENS]
    return tokens[-1] if tokens else None


@check(id="headers.referrer-policy-missing", threat="headers.referrer-policy-missing", scope="target", cost=26.0)
async def referrer_policy_missing(ctx: CheckContext) -> AsyncIterator[Finding]:
    """HTML pages without a Referrer-Policy, or with one that leaks full URLs cross-origin.

    Bound: SAMPLE requests.
    """
    affected = []
    for s in _successful(await sample_responses(ctx)):
        if s.ex.is_html:
            policy = effective_referrer_policy(s.ex)
            if policy is None or policy in _WEAK_REFERRER:
                affected.append(s)
    if affected:
        ex = affected[0].ex
        policy = effective_referrer_policy(ex)
        if policy is None:
            title, cond = "Referrer-Policy missing", header_missing("referrer-policy")
        else:
            title = f"Referrer-Policy {policy!r} sends full URLs to other sites"
            cond = (header_contains("referrer-policy", policy) if ex.header_values("referrer-policy")
                    else ProofCondition(kind="body_contains", value=policy))  # set by <meta name=referrer>
        yield _site_finding(ctx, affected, title, "HTML response without a safe Referrer-Policy", [cond])


# --- Cookie flags ----------------------------------------------------------------------------

@dataclass
class SetCookie:
    name: str
    value: str
    attrs: dict[str, str]
    raw: str

    @property
    def deletes(self) -> bool:
        """A Set-Cookie that removes the cookie carries nothing worth protecting."""
        if not self.value:
            return True
        max_age = self.attrs.get("max-age", "").strip()
        if max_age.lstrip("-").isdigit() and int(max_age) <= 0:
            return True
        expires = self.attrs.get("expires")
        if expires:
            try:
                when = parsedate_to_datetime(expires)
            except (TypeError, ValueError):
                return False
            return (when if when.tzinfo else when.replace(tzinfo=UTC)) < datetime.now(UTC)
        return False


def parse_set_cookie(raw: str) -> SetCookie | None:
    """Parse one Set-Cookie value (name=value; Attr; Attr=val); None when it has no name."""
    first, *rest = raw.split(";")
    name, sep, value = first.partition("=")
    if not sep or not name.strip():
        return None
    attrs: dict[str, str] = {}
    for part in rest:
        key, _, val = part.partition("=")
        attrs.setdefault(key.strip().lower(), val.strip())
    return SetCookie(name.strip(), value.strip().strip('"'), attrs, raw)


_JWT_SHAPE = re.compile(r"^eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*$")


def _matches_any(patterns: list[str], text: str) -> bool:
    return any(re.search(p, text, re.IGNORECASE) for p in patterns)


def missing_cookie_flags(cookie: SetCookie, https: bool, script_readable: bool) -> list[str]:
    """Flags a session-like cookie lacks, in the order HttpOnly, Secure, SameSite."""
    missing = []
    if not script_readable and "httponly" not in cookie.attrs:
        missing.append("HttpOnly")
    if https and "secure" not in cookie.attrs:
        missing.append("Secure")
    samesite = cookie.attrs.get("samesite", "").lower()
    if samesite not in ("lax", "strict", "none"):
        missing.append("SameSite")
    elif samesite == "none" and "secure" not in cookie.attrs:
        missing.append("SameSite (None without Secure)")
    return missing


def _flag_conditions(cookie: SetCookie, missing: list[str]) -> list[ProofCondition]:
    """One Set-Cookie regex per missing flag: each stops matching once that flag is added."""
    head = "^\\s*" + re.escape(cookie.name) + "="
    lookahead = {"HttpOnly": r"(?i:(?!.*;\s*httponly\s*(?:;|$)))",
                 "Secure": r"(?i:(?!.*;\s*secure\s*(?:;|$)))",
                 "SameSite": r"(?i:(?!.*;\s*samesite\s*=))",
                 "SameSite (None without Secure)": r"(?i:(?!.*;\s*secure\s*(?:;|$)))"}
    return [header_matches("set-cookie", head + lookahead[flag]) for flag in missing]


def _set_cookies(ex: Exchange) -> list[tuple[Exchange, SetCookie]]:
    """Every Set-Cookie along a redirect chain, with the exchange that carried it."""
    out = []
    for hop in [*ex.history, ex]:
        for raw in hop.header_values("set-cookie"):
            cookie = parse_set_cookie(raw)
            if cookie is not None:
                out.append((hop, cookie))
    return out


@check(id="headers.cookie-flags", threat="headers.cookie-flags", scope="target", cost=26.0)
async def cookie_flags(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Session-like cookies without HttpOnly, SameSite, or Secure (on https). One finding per cookie.

    Bound: SAMPLE requests (plus redirect hops).
    """
    session_names: list[str] = ctx.payloads.get("headers_session_cookie_names")
    script_names: list[str] = ctx.payloads.get("headers_script_readable_cookie_names")
    reported: set[str] = set()
    for s in await sample_responses(ctx, first_visit=True):
        for hop, cookie in _set_cookies(s.ex):
            if cookie.name in reported or cookie.deletes:
                continue
            script_readable = _matches_any(script_names, cookie.name)
            if not (_matches_any(session_names, cookie.name) or script_readable
                    or _JWT_SHAPE.match(cookie.value)):
                continue
            missing = missing_cookie_flags(cookie, ctx.target.is_https, script_readable)
            if not missing:
                continue
            reported.add(cookie.name)
            path = httpx.URL(hop.request.url).path if hop is not s.ex or s.ex.history else s.path
            yield located_by_cookie_sensor(ctx, s.ex, cookie.name, missing, ctx.finding(
                title=f"Cookie {cookie.name!r} set without {', '.join(missing)}",
                confidence=Confidence.confirmed,
                severity="low" if all(f.startswith("SameSite") for f in missing) else None,
                location=Location(method="GET", path=path, url=hop.request.url,
                                  input=InputRef.model_validate({"in": "cookie", "name": cookie.name})),
                evidence=[*exchange_evidence(hop, f"Set-Cookie {cookie.name} lacks {', '.join(missing)}",
                                             cookie.name + "="),
                          note("Set-Cookie", stable_cookie(cookie.raw))],
                proof=proof_from(hop, *_flag_conditions(cookie, missing))))


def located_by_cookie_sensor(ctx: CheckContext, sample: Exchange, name: str, missing: list[str],
                             finding: Finding) -> Finding:
    """Add the cookie sensor's view (in-process targets): the app's file:line that set the cookie
    without those flags, or the framework configuration that decides them."""
    from bastion.sensors import cookies, request_key

    call = cookies.explaining_call(ctx.sensors, name, missing, request_key(proof_from(sample).request))
    if call is None:
        return finding
    evidence = cookies.call_evidence(call)
    update: dict[str, Any] = {"evidence": [*finding.evidence, evidence]}
    if "file" in evidence.meta:
        update["location"] = finding.location.model_copy(
            update={"file": evidence.meta["file"], "line": int(evidence.meta["line"])})
    return finding.model_copy(update=update)
