"""Server-side request forgery: does the service fetch a URL the request names?

URL-like inputs (by name, or by a URL-shaped example value) get the URL of a loopback listener
Bastion starts for the unit (127.0.0.1, ephemeral port); the listener receiving the probe's canary
path is the proof, with or without sensors. Once proven, and only for in-process targets (where the
egress guard blocks every non-loopback connection, so nothing leaves the machine), the check sends
internal addresses (cloud metadata in dotted, decimal and hex form, IPv6 loopback, a closed
loopback port) and a listener redirect to the metadata address; the socket sensors record which of
them the app tried to reach. Targets that are neither in-process nor on loopback cannot reach the
listener: the check records the skip.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, note, proof_from, status_in
from bastion.findings.model import Confidence, Evidence, Finding
from bastion.payloads.corpus import render
from bastion.sensors import SensorEvent, request_key
from bastion.surface.requests import default_value
from bastion.target.exchange import Exchange
from bastion.target.listener import Hit, LoopbackListener, free_port, reaches_loopback

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_URL_VALUE = re.compile(r"^(?:https?|ftp)://", re.IGNORECASE)
_DENIED = (401, 403)
_SOCKET_KINDS = frozenset({"connect", "resolve", "egress-blocked"})
METADATA_HOST = "169.254.169.254"


def name_words(name: str) -> set[str]:
    """`callbackUrl`, `callback_url`, `image.src` -> {"callback", "url"}, {"image", "src"}."""
    return {w.lower() for w in _WORDS.findall(name)}


def is_url_input(name: str, example: Any, url_names: list[str]) -> bool:
    """An input named like a URL the server fetches, or whose example value is a URL."""
    return bool(name_words(name) & set(url_names)) or (isinstance(example, str) and bool(_URL_VALUE.match(example)))


@check(id="ssrf.request-forgery", threat="ssrf.request-forgery", scope="input",
       locations=("query", "form", "json", "multipart", "body"))
async def ssrf(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Per URL-like input: 1 baseline (+1 per role tried when it is denied), 1 listener URL; once
    proven, 5 internal addresses and 1 redirect (in-process targets only)."""
    inp = ctx.inp
    assert inp is not None
    if not is_url_input(inp.name, inp.example, ctx.payloads.get("ssrf-input-names")):
        return
    if not reaches_loopback(ctx.target):
        ctx.skip("the target cannot reach Bastion's loopback listener")
        return
    if not await _usable_role(ctx):
        return
    with LoopbackListener(rng=ctx.rng) as listener:
        canary = ctx.canary()
        ex = await ctx.inject(listener.url(canary))
        hits = listener.hits_for(canary)
        if not hits:
            return
        evidence = [*exchange_evidence(ex, f"{inp.location} input '{inp.name}' set to Bastion's listener URL"),
                    _hit_note(hits)]
        if ctx.sensors is not None:
            evidence += await _internal_reach(ctx, listener)
    yield ctx.finding(
        title=f"SSRF: {inp.location} input '{inp.name}' makes the server fetch any URL",
        confidence=Confidence.confirmed, evidence=evidence,
        # The listener, not the response, proves the fetch; the reproduction re-sends the probe.
        proof=proof_from(ex, status_in(ex.status)), url=ex.request.url)


async def _usable_role(ctx: CheckContext) -> bool:
    """Anonymous if the entry point answers; else the first logged-in role it does not deny."""
    assert ctx.inp is not None
    base = await ctx.inject(default_value(ctx.inp))
    if base.status not in _DENIED and not _to_login(base):
        return True
    for role in sorted(ctx.roles):
        ctx.role = role
        again = await ctx.inject(default_value(ctx.inp))
        if again.status not in _DENIED and not _to_login(again):
            return True
    ctx.role = None
    return False


def _to_login(ex: Exchange) -> bool:
    """A redirect to a sign-in page: the entry point needs credentials."""
    location = (ex.header("location") or "").lower()
    return 300 <= ex.status < 400 and any(w in location for w in ("login", "signin", "sign-in", "auth"))


def _hit_note(hits: list[Hit]) -> Evidence:
    first = hits[0]
    agent = f" (User-Agent: {first.user_agent})" if first.user_agent else ""
    return note("out-of-band proof", f"Bastion's loopback listener received {first.method} {first.path}{agent}: "
                                     "the server fetched the URL the request named")


def _probe_events(ctx: CheckContext, ex: Exchange) -> list[SensorEvent]:
    """The socket events the app raised while handling this request."""
    if ctx.sensors is None:
        return []
    key = request_key(proof_from(ex).request)
    return [e for e in list(ctx.sensors.events)
            if e.kind in _SOCKET_KINDS and e.probe is not None and e.probe.key == key]


async def _internal_reach(ctx: CheckContext, listener: LoopbackListener) -> list[Evidence]:
    """Internal addresses the app tried to reach (egress guard on: nothing leaves the machine)."""
    reached: list[str] = []
    port = str(free_port(ctx.rng))
    for entry in ctx.payloads.get("ssrf-internal"):
        canary = ctx.canary()
        ex = await ctx.inject(render(entry["url"], c=canary, port=port))
        events = _probe_events(ctx, ex)
        if events:
            blocked = any(e.kind == "egress-blocked" for e in events)
            reached.append(f"{entry['label']}: {events[0].detail}" + (" (blocked by Bastion's egress guard)"
                                                                     if blocked else ""))
    canary = ctx.canary()
    ex = await ctx.inject(listener.redirect_url(canary, f"http://{METADATA_HOST}/latest/meta-data/{canary}"))
    followed = [e for e in _probe_events(ctx, ex) if METADATA_HOST in e.detail]
    out = []
    if reached:
        out.append(note("internal addresses", "the app tried to connect to: " + "; ".join(reached)))
    if listener.hits_for(canary) and followed:
        out.append(note("redirects followed", f"a listener redirect to http://{METADATA_HOST}/ made the app "
                                              f"connect to {followed[0].detail} (blocked by Bastion's egress guard)"))
    return out
