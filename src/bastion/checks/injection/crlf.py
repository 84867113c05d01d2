"""CRLF injection / HTTP response splitting: a request value starts a new response header.

Each payload tries to add a header named `X-Bst-<canary>`. Proof is that header arriving as a
header of its own (the split happened on the wire), or — in-process, where transports pass header
values through untouched — a header value that contains CR/LF followed by `X-Bst-<canary>:`. A
reflection in the body is never enough. Every hit is repeated with a second canary.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, header_matches, note, proof_from
from bastion.findings.model import Confidence, Finding, ProofCondition
from bastion.payloads.corpus import render
from bastion.target.exchange import Exchange

# Inputs that travel inside a request header: raw CR/LF would end that header on a real wire.
_HEADER_BORNE = ("header", "cookie")


@dataclass(frozen=True)
class Injected:
    header: str  # the response header that carries (or is) the injected one
    split: bool  # True: a header of its own; False: CR/LF inside another header's value

    def condition(self, canary: str) -> ProofCondition:
        if self.split:
            return header_matches(self.header, "^")
        return header_matches(self.header, rf"(?i)[\r\n]\s*x-bst-{re.escape(canary)}\s*:")


def injected_header(ex: Exchange, canary: str) -> Injected | None:
    """The response header showing that our `X-Bst-<canary>` line became (part of) the header block."""
    name = f"x-bst-{canary}"
    value_re = re.compile(rf"[\r\n]\s*{re.escape(name)}\s*:", re.I)
    for key, value in ex.headers:
        if key.strip().lower() == name:
            return Injected(key, split=True)
        if value_re.search(value):
            return Injected(key, split=False)
    return None


def payloads_for(ctx: CheckContext, location: str) -> list[str]:
    templates = ctx.payloads.get("crlf")
    if location in _HEADER_BORNE:
        return [t for t in templates if "\r" not in t and "\n" not in t]
    return templates


async def _attempt(ctx: CheckContext, template: str) -> tuple[Exchange, Injected, str, str] | None:
    canary = ctx.canary()
    payload = render(template, canary=canary)
    ex = await ctx.inject(payload)
    hit = injected_header(ex, canary) if ex.ok else None
    return (ex, hit, payload, canary) if hit else None


@check(id="injection.crlf", threat="injection.crlf", scope="input",
       locations=("query", "path", "form", "cookie", "header"))
async def crlf_injection(ctx: CheckContext) -> AsyncIterator[Finding]:
    """CRLF injection into response headers.

    Bound per input: at most 6 payloads + 1 confirmation = 7 requests.
    """
    assert ctx.inp is not None
    for template in payloads_for(ctx, ctx.inp.location):
        first = await _attempt(ctx, template)
        if first is None:
            continue
        second = await _attempt(ctx, template)
        if second is None:
            return  # not reproducible with a second canary: unstable, do not report
        ex, hit, payload, canary = second
        how = ("arrived as a header of its own" if hit.split
               else f"sits after CR/LF inside the {hit.header} header value")
        inp = ctx.inp
        yield ctx.finding(
            title=f"CRLF injection into response headers via {inp.location} input '{inp.name}'"
                  + ("" if hit.split else f" ({hit.header})"),
            confidence=Confidence.confirmed,
            evidence=[*exchange_evidence(ex, f"{payload!r}: header X-Bst-{canary} {how}", f"X-Bst-{canary}"),
                      note("confirmed twice with different canaries",
                           f"X-Bst-{first[3]} then X-Bst-{canary} {how}")],
            proof=proof_from(ex, hit.condition(canary)),
            url=ex.request.url,
        )
        return
