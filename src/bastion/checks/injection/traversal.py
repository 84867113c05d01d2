"""Path traversal: a file name built from input reaches a well-known file outside the intended folder.

The proof is the file's content signature (`root:x:0:0:` of /etc/passwd, `[fonts]` of win.ini) in
the response, absent from the baseline. Path-segment inputs also get raw variants: the request
builder percent-encodes `/` (fine for werkzeug and starlette, which decode it), but some servers
route on the raw path, so `%2e%2e/` segments (which survive httpx's dot-segment removal) are sent too.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import body_contains, exchange_evidence, note, proof_from
from bastion.findings.model import Confidence, Finding
from bastion.payloads.corpus import render
from bastion.payloads.oracles import find_marker
from bastion.surface.requests import build_request, default_value
from bastion.target.exchange import Exchange


@check(id="injection.path-traversal", threat="injection.path-traversal", scope="input", cost=9.0)
async def path_traversal(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Relative, absolute, filter-evading and encoded paths to well-known files.

    Requests per input: 1 baseline + 8 variants (+1 raw variant for path segments); at most 10.
    """
    assert ctx.inp is not None
    base = await ctx.inject(default_value(ctx.inp))
    files = {f["os"]: f for f in ctx.payloads.get("traversal-files")
             if find_marker(re.compile(f["signature"]), base.text) is None}
    for variant in ctx.payloads.get("traversal-variants"):
        target = files.get(variant["os"])
        if target is None:
            continue
        ex = await ctx.inject(_value(variant["template"], target))
        found = _read(ex, target)
        if found is not None:
            yield _finding(ctx, ex, target, found, variant["template"])
            return
    if ctx.inp.location != "path":
        return
    for variant in ctx.payloads.get("traversal-raw-path"):
        target = files.get(variant["os"])
        if target is None:
            continue
        ex = await _send_raw_segment(ctx, _value(variant["template"], target))
        found = _read(ex, target)
        if found is not None:
            yield _finding(ctx, ex, target, found, variant["template"] + " (raw path segment)")
            return


def _value(template: str, target: dict[str, Any]) -> str:
    return render(template, file=target["file"], file_slash=target["file"].replace("\\", "/"))


def _read(ex: Exchange, target: dict[str, Any]) -> str | None:
    """The signature text of the target file when the response holds it."""
    if not ex.ok:
        return None
    return find_marker(re.compile(target["signature"]), ex.text)


async def _send_raw_segment(ctx: CheckContext, raw: str) -> Exchange:
    """Send the unit's path parameter as `raw`, without percent-encoding its slashes."""
    assert ctx.ep is not None and ctx.inp is not None
    token = ctx.canary()
    spec = build_request(ctx.ep, ctx.inp, token)
    spec.path = spec.path.replace(quote(token, safe=""), raw)
    return await ctx.send_spec(spec)


def _finding(ctx: CheckContext, ex: Exchange, target: dict[str, Any], signature: str, how: str) -> Finding:
    assert ctx.inp is not None
    shown = "/" + target["file"] if target["os"] == "unix" else target["file"]
    evidence = [*exchange_evidence(ex, f"the response holds {shown}", signature),
                note("payload", f"variant {how!r}; signature {signature!r} absent from the baseline")]
    return ctx.finding(
        title=f"Path traversal in {ctx.inp.location} input '{ctx.inp.name}' reads {shown}",
        confidence=Confidence.confirmed, evidence=evidence, proof=proof_from(ex, body_contains(signature)),
        url=ex.request.url)
