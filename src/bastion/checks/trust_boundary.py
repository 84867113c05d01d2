"""Trust boundary: request data stored verbatim in the server-side session.

The shared exercise pass puts a distinct canary in every text input of every entry point. A canary
that reaches the session is request data the app now treats as its own. Two ways to see it:
- the session sensor (Flask `session[...] = ...`, Django `request.session[...] = ...`) records the
  write with the app's file:line (in-process targets);
- a signed session cookie in the response whose payload (readable without the key: itsdangerous
  and Flask cookies are base64 JSON, optionally zlib-compressed) contains the canary.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import AsyncIterator

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import note, request_evidence
from bastion.findings.model import Confidence, Evidence, Finding
from bastion.sensors.events import REDACTOR
from bastion.sensors.exercise import BLIND, Sent, exercise, stable_order
from bastion.surface.handler_ast import display_path
from bastion.surface.model import Input

# (method, path, input location, input name): one finding each.
Key = tuple[str, str, str, str]
# A decompressed cookie payload larger than this is not looked into.
MAX_PAYLOAD_BYTES = 64_000


def cookie_payload(value: str) -> str | None:
    """The readable payload of a signed cookie (`payload.timestamp.signature`), or None."""
    value = value.strip().strip('"')
    compressed = value.startswith(".")
    head = value[1:].split(".", 1)[0] if compressed else value.split(".", 1)[0]
    if len(head) < 8:
        return None
    try:
        raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        if compressed:
            raw = zlib.decompressobj().decompress(raw, MAX_PAYLOAD_BYTES)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError, zlib.error, UnicodeDecodeError):
        return None
    try:
        json.loads(text)
    except ValueError:
        return None
    return text


def _cookie_hits(sent: Sent) -> list[tuple[Input, str, str]]:
    """(input, cookie name, payload) for each canary of `sent` inside a session-cookie payload."""
    hits = []
    for ex in [*sent.exchange.history, sent.exchange]:
        for raw in ex.header_values("set-cookie"):
            name, _, rest = raw.partition("=")
            payload = cookie_payload(rest.split(";", 1)[0])
            if payload is None:
                continue
            hits += [(inp, name.strip(), payload) for canary, inp in sent.canaries.items() if canary in payload]
    return hits


@check(id="session.trust-boundary", threat="session.trust-boundary", scope="target")
async def trust_boundary(ctx: CheckContext) -> AsyncIterator[Finding]:
    """One finding per (entry point, input) whose canary reached the session."""
    run = await exercise(ctx)
    found: dict[Key, list[Evidence]] = {}
    places: dict[Key, tuple[Sent, Input, tuple[str, int] | None]] = {}
    if ctx.sensors is not None:
        # A stable order: the write site kept per input and the evidence order must not follow timing.
        for event in stable_order(run, ctx.sensors.of_kind("session")):
            for canary in sorted(event.canaries):
                hit = run.input_of(canary)
                if hit is None:
                    continue
                sent, inp = hit
                key: Key = (sent.ep.method, sent.ep.path, str(inp.location), inp.name)
                file = display_path(event.file) if event.file else None
                places.setdefault(key, (sent, inp, (file, event.line or 0) if file else None))
                found.setdefault(key, []).append(Evidence(
                    kind="sensor", summary=f"session sensor saw the write{f' at {file}:{event.line}' if file else ''}",
                    content=event.detail, meta={"sensor": "session", **({"file": file, "line": str(event.line)}
                                                                         if file else {})}))
    for sent in run.sent:
        for inp, cookie, payload in _cookie_hits(sent):
            key = (sent.ep.method, sent.ep.path, str(inp.location), inp.name)
            places.setdefault(key, (sent, inp, None))
            found.setdefault(key, []).append(note(f"the signed {cookie!r} cookie carries the value",
                                                  "decoded payload: " + REDACTOR.text(payload[:500])))
    for key in sorted(found):
        yield _finding(ctx, *places[key], found[key])


def _finding(ctx: CheckContext, sent: Sent, inp: Input, site: tuple[str, int] | None,
             evidence: list[Evidence]) -> Finding:
    blind = not any(e.kind == "note" for e in evidence)  # only the sensor saw it: the cookie showed nothing
    location = ctx.location(ep=sent.ep, inp=inp, url=sent.exchange.request.url)
    if site is not None:
        location = location.model_copy(update={"file": site[0], "line": site[1]})
    title = f"Request data stored unvalidated in the session ({inp.location} input '{inp.name}')"
    unique = list({(e.kind, e.summary, e.content): e for e in evidence}.values())[:4]
    return ctx.finding(title=title + (" (blind, sensor-only)" if blind else ""), confidence=Confidence.confirmed,
                       location=location, evidence=[request_evidence(sent.exchange, "the request carrying the canary"),
                                                    *unique, *([note("blind", BLIND)] if blind else [])])
