"""Open redirect: a request value sends the browser to a host of the attacker's choosing.

The destination is resolved the way a browser resolves it (backslashes are slashes, extra leading
slashes collapse, `https:host` is relative only against an https page); success means the resolved
host contains a fresh canary host, in a 3xx `Location`, a `Refresh` header, an HTML meta refresh or a
`location = "…"` script assignment. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import (
    body_contains,
    exchange_evidence,
    header_contains,
    note,
    proof_from,
    status_in,
)
from bastion.findings.model import Confidence, Finding, ProofCondition
from bastion.payloads.corpus import render
from bastion.surface.model import Input
from bastion.surface.requests import default_value
from bastion.target.exchange import Exchange

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
SPECIAL_SCHEMES = ("http", "https", "ftp", "ws", "wss", "file")
# Names that end with one of these (after dropping `_`/`-`) also look URL-ish: `success_url`, `back_uri`.
_URLISH_SUFFIXES = ("url", "uri", "redirect", "returnto", "next")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$", re.S)
_META_REFRESH = re.compile(r"<meta[^>]+http-equiv\s*=\s*[\"']?refresh[^>]*>", re.I)
_CONTENT_ATTR = re.compile(r"content\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)", re.I)
_JS_LOCATION = re.compile(
    r"(?:window\.|document\.|top\.|self\.)?location(?:\.href)?\s*=\s*([\"'])(.*?)\1"
    r"|location\.(?:replace|assign)\(\s*([\"'])(.*?)\3\s*\)", re.S)


def browser_resolve(base: str, location: str) -> httpx.URL | None:
    """Resolve a redirect target against `base` like a browser's URL parser (WHATWG, roughly)."""
    value = location.strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14"
                           "\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f \t\r\n")
    value = re.sub(r"[\t\r\n]", "", value)
    base_url = httpx.URL(base)
    m = _SCHEME.match(value)
    scheme = m.group(1).lower() if m else base_url.scheme
    if scheme in SPECIAL_SCHEMES:
        value = value.replace("\\", "/")
    if m and scheme in SPECIAL_SCHEMES:
        rest = m.group(2)
        if scheme == base_url.scheme and not rest.startswith("//"):
            value = rest  # `https:evil` on an https page is a relative path
        else:
            value = f"{scheme}://" + rest.lstrip("/")  # any number of slashes means an authority follows
    elif not m and value.startswith("//"):
        value = "//" + value.lstrip("/")
    try:
        return base_url.join(value)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        return None


def _meta_refresh_targets(html: str) -> list[str]:
    out = []
    for tag in _META_REFRESH.findall(html):
        m = _CONTENT_ATTR.search(tag)
        if m:
            out.append(_refresh_url(m.group(1).strip("\"'")))
    return [u for u in out if u]


def _refresh_url(content: str) -> str:
    """The URL part of a Refresh value: `0; url=https://x/` (quotes optional)."""
    _, _, rest = content.partition(";")
    rest = rest.strip()
    if rest[:4].lower() == "url=":
        rest = rest[4:]
    return rest.strip().strip("\"'")


@dataclass(frozen=True)
class Redirect:
    via: str  # "Location header" | "Refresh header" | "meta refresh" | "script location"
    target: str
    resolved: str


def redirects(ex: Exchange) -> list[Redirect]:
    """Every place the response tells a browser to go next, resolved against the request URL."""
    candidates: list[tuple[str, str]] = []
    if ex.status in REDIRECT_STATUSES:
        candidates += [("Location header", v) for v in ex.header_values("location")]
    candidates += [("Refresh header", _refresh_url(v)) for v in ex.header_values("refresh")]
    ctype = ex.content_type
    if ex.body and (ctype in ("text/html", "application/xhtml+xml") or not ctype):
        text = ex.text
        candidates += [("meta refresh", u) for u in _meta_refresh_targets(text)]
        for m in _JS_LOCATION.finditer(text):
            candidates.append(("script location", (m.group(2) or m.group(4) or "").replace("\\/", "/")))
    out = []
    for via, target in candidates:
        resolved = browser_resolve(ex.request.url, target) if target else None
        if resolved is not None:
            out.append(Redirect(via, target, str(resolved)))
    return out


def redirect_to_canary(ex: Exchange, canary: str) -> Redirect | None:
    for r in redirects(ex):
        host = (httpx.URL(r.resolved).host or "").lower()
        if canary in host:
            return r
    return None


def looks_urlish(ctx: CheckContext, inp: Input) -> bool:
    """Name or example value suggests the input carries a URL or a path."""
    name = inp.name.split(".")[-1].removesuffix("[]").lower().replace("_", "").replace("-", "")
    if name in ctx.payloads.get("open-redirect-names") or name.endswith(_URLISH_SUFFIXES):
        return True
    example = (inp.example or "").strip().lower()
    return example.startswith(("http://", "https://", "//", "/"))


async def _baseline(ctx: CheckContext) -> Exchange:
    """The entry point's baseline, sent once per entry point and shared by its inputs' units."""
    assert ctx.ep is not None
    key = f"baseline:{ctx.ep.key}"
    if key not in ctx.memo:
        ctx.memo[key] = asyncio.ensure_future(ctx.baseline())
    return await ctx.memo[key]


async def eligible(ctx: CheckContext) -> bool:
    """URL-ish by name/example, or the baseline already redirects somewhere that carries the value."""
    assert ctx.inp is not None
    if looks_urlish(ctx, ctx.inp):
        return True
    value = default_value(ctx.inp)
    if len(value) < 3:
        return False
    return any(value in r.target for r in redirects(await _baseline(ctx)))


async def _attempt(ctx: CheckContext, template: str, host: str) -> tuple[Exchange, Redirect, str, str] | None:
    canary = ctx.canary()
    payload = render(template, canary=canary, host=host)
    ex = await ctx.inject(payload)
    hit = redirect_to_canary(ex, canary) if ex.ok else None
    return (ex, hit, payload, canary) if hit else None


def _proof_conditions(ex: Exchange, hit: Redirect, canary: str) -> list[ProofCondition]:
    if hit.via == "Location header":
        return [status_in(ex.status), header_contains("location", hit.target)]
    if hit.via == "Refresh header":
        return [header_contains("refresh", hit.target)]
    return [body_contains(hit.target)]


@check(id="injection.open-redirect", threat="injection.open-redirect", scope="input",
       locations=("query", "form", "json", "path"))
async def open_redirect(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Open redirect via URL-ish inputs (by name, example or observed behaviour).

    Bound per input: 1 shared baseline per entry point + at most 8 payloads + 1 confirmation.
    """
    assert ctx.inp is not None
    if not await eligible(ctx):
        return
    host = httpx.URL(ctx.target.base_url).host or "localhost"
    for template in ctx.payloads.get("open-redirect"):
        first = await _attempt(ctx, template, host)
        if first is None:
            continue
        second = await _attempt(ctx, template, host)
        if second is None:
            return  # not reproducible with a second canary: unstable, do not report
        ex, hit, payload, canary = second
        inp = ctx.inp
        yield ctx.finding(
            title=f"Open redirect via {inp.location} input '{inp.name}' ({hit.via})",
            confidence=Confidence.confirmed,
            evidence=[*exchange_evidence(ex, f"{payload!r} redirects to {hit.resolved}", canary),
                      note("confirmed twice with different hosts",
                           f"{first[1].resolved} then {hit.resolved}, via {hit.via}; "
                           "resolved like a browser, never followed")],
            proof=proof_from(ex, *_proof_conditions(ex, hit, canary)),
            url=ex.request.url,
        )
        return
