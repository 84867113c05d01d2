"""Insecure deserialization: pickle, unsafe YAML loaders, jsonpickle and marshal on request data.

Each probe is a document that, when an unsafe loader reconstructs it, calls
`builtins.compile('<canary>', '<bastion>', 'eval')`: harmless (the code object is never run) and
visible to the grey-box compile sensor, whose event carrying the canary is the proof. marshal has
no callables: the sensor sees `marshal.loads` of bytes carrying the canary. Documents go raw to
inputs that take documents and base64'd everywhere (blobs usually travel base64'd in cookies,
query strings and JSON fields).

Without sensors (URL targets) the check sends nothing: a response cannot show what a loader did
without running something less harmless, and guessing from errors is noise.
"""

from __future__ import annotations

import base64
import marshal
from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, note, proof_from, status_in
from bastion.findings.model import Confidence, Finding
from bastion.payloads.corpus import render
from bastion.sensors import SensorEvent
from bastion.target.exchange import Exchange

# Locations that carry whole documents: raw (unencoded) payloads are worth sending there.
DOCUMENT_LOCATIONS = frozenset({"body", "json", "form", "multipart"})
COMPILE_FILENAME = "<bastion>"


def _encoded_values(doc: dict[str, Any], canary: str, location: str) -> list[tuple[str, str]]:
    """(encoding, value) pairs to send for one document format."""
    if doc["format"] == "marshal":
        return [("base64", base64.b64encode(marshal.dumps(canary)).decode("ascii"))]
    text = render(doc["template"], c=canary)
    out = [("raw", text)] if doc.get("raw") and location in DOCUMENT_LOCATIONS else []
    return [*out, ("base64", base64.b64encode(text.encode("utf-8")).decode("ascii"))]


def loaded_as(event: SensorEvent, canary: str, fmt: str) -> str | None:
    """The format that loaded the probe: `fmt` when its builtins.compile call ran with the canary,
    `marshal` when marshal.loads got bytes carrying it (any document: marshal parses what it gets)."""
    if event.kind == "compile" and event.raw_detail == f"{COMPILE_FILENAME}: {canary}":
        return fmt
    if event.kind == "unmarshal" and canary in event.raw_detail:
        return "marshal"
    return None


@check(id="deserialization.untrusted-data", threat="deserialization.untrusted-data", scope="input",
       locations=("query", "form", "json", "multipart", "body", "cookie"), cost=6.0)
async def insecure_deserialization(ctx: CheckContext) -> AsyncIterator[Finding]:
    """One request per (format, encoding): 7 for document inputs, 4 for the others; stops at the first proof."""
    assert ctx.inp is not None
    if ctx.sensors is None:
        ctx.skip("needs the grey-box sensors (in-process targets)")
        return
    for doc in ctx.payloads.get("deserialization-documents"):
        hit = await _probe_format(ctx, doc)
        if hit is not None:
            yield _finding(ctx, *hit)
            return


async def _probe_format(ctx: CheckContext, doc: dict[str, Any]) -> tuple[str, str, str, Exchange] | None:
    """Send the format's encodings (a fresh canary each); the first one the sensors saw loaded."""
    assert ctx.inp is not None
    for encoding in ("raw", "base64"):
        canary = ctx.canary()
        values = dict(_encoded_values(doc, canary, ctx.inp.location))
        if encoding not in values:
            continue
        ex = await ctx.inject(values[encoding])
        loaded = sorted({fmt for e in ctx.sensor_events(canary) if (fmt := loaded_as(e, canary, doc["format"]))})
        if loaded:
            return loaded[0], encoding, canary, ex
    return None


def _finding(ctx: CheckContext, fmt: str, encoding: str, canary: str, ex: Exchange) -> Finding:
    assert ctx.inp is not None
    how = "base64-encoded " if encoding == "base64" else ""
    call = ("marshal.loads() of bytes carrying" if fmt == "marshal"
            else f"the document's builtins.compile({canary!r}, {COMPILE_FILENAME!r}, 'eval') call with")
    evidence = [*exchange_evidence(ex, f"a {how}{fmt} document sent in {ctx.inp.location} input '{ctx.inp.name}'"),
                note("sensor proof", f"the sensors saw {call} the probe's canary {canary}: the app reconstructed "
                                     "objects from request data (the compiled code was never run)")]
    return ctx.finding(
        title=f"Insecure deserialization ({fmt}) of {ctx.inp.location} input '{ctx.inp.name}'",
        confidence=Confidence.confirmed, evidence=evidence,
        # The response cannot prove a loader ran; the reproduction re-sends the probe.
        proof=proof_from(ex, status_in(ex.status)), url=ex.request.url)
