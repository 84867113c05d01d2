"""Python code injection: input evaluated by eval()/exec() computes a Python-only expression.

Arithmetic alone proves nothing (a safe `ast`-based calculator computes `6*7` too), so every payload
needs string concatenation, a `str()` call or a conditional expression, which such evaluators
reject; the marker `<canary><product>` exists only if Python ran the expression.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import body_contains, elapsed_at_least, exchange_evidence, note, proof_from
from bastion.findings.model import Confidence, Finding
from bastion.payloads.corpus import render
from bastion.payloads.oracles import delay_evidence, find_marker, prove_delay, timing_lock
from bastion.surface.requests import default_value
from bastion.target.exchange import Exchange

SLOW_BASELINE = 1.0  # seconds; a slower baseline makes delays unprovable
FAST = 1.0  # seconds; sleep(0) must answer faster than this


@check(id="injection.code", threat="injection.code", scope="input", cost=7.0)
async def code_injection(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Python-only expressions in four syntactic contexts, a blind sleep, then a SyntaxError hint.

    Requests per input: 1 baseline + 4 payloads (+1 to confirm) + 1 blind sleep (+3 to confirm) +
    1 broken-syntax probe; 7 when nothing is found. Delays are at most 3 s; nothing else runs.
    """
    assert ctx.inp is not None
    v0 = default_value(ctx.inp)
    base = await ctx.inject(v0)
    if not base.ok:
        return
    for entry in ctx.payloads.get("code-eval"):
        shown = await _evaluated(ctx, entry["template"], base)
        if shown is None:
            continue
        again = await _evaluated(ctx, entry["template"], base)
        if again is None:
            continue
        yield _evaluated_finding(ctx, entry, shown, again[1])
        return
    if base.elapsed <= SLOW_BASELINE:
        blind = await _blind(ctx)
        if blind is not None:
            yield blind
            return
    hint = await _syntax_error_hint(ctx, v0, base)
    if hint is not None:
        yield hint


async def _evaluated(ctx: CheckContext, template: str, base: Exchange) -> tuple[Exchange, str] | None:
    """Send the expression with fresh values; the exchange and marker when its result shows."""
    x, y = ctx.rng.randint(1000, 9999), ctx.rng.randint(1000, 9999)
    c = ctx.canary(6)
    marker = f"{c}{x * y}"
    ex = await ctx.inject(render(template, c=c, x=str(x), y=str(y)))
    if marker in ex.text and marker not in base.text:
        return ex, marker
    return None


def _evaluated_finding(ctx: CheckContext, entry: dict[str, Any], shown: tuple[Exchange, str],
                       again: str) -> Finding:
    assert ctx.inp is not None
    ex, marker = shown
    evidence = [*exchange_evidence(ex, f"Python evaluated the payload ({entry['context']})", marker),
                note("confirmation", f"a second expression with other random values produced {again}")]
    return ctx.finding(
        title=f"Python code injection in {ctx.inp.location} input '{ctx.inp.name}' ({entry['context']})",
        confidence=Confidence.confirmed, evidence=evidence, proof=proof_from(ex, body_contains(marker)),
        url=ex.request.url)


async def _blind(ctx: CheckContext) -> Finding | None:
    """`time.sleep(n)` delays the response by n seconds (2 and 3), each with a fast 0 s twin."""
    assert ctx.inp is not None
    async with timing_lock(ctx.memo):
        for entry in ctx.payloads.get("code-blind"):
            template = entry["template"]

            async def send(seconds: int, template: str = template) -> Exchange:
                return await ctx.inject(render(template, n=str(seconds)))

            proof = await prove_delay(send, fast_below=FAST)
            if proof is None:
                continue
            seconds, slow = proof.slowest
            evidence = delay_evidence(proof, f"at least {seconds} s with time.sleep({seconds})",
                                      lambda n: f"sleep({n}) took at least {n} s, sleep(0) under {FAST:g} s")
            return ctx.finding(
                title=f"Blind Python code injection in {ctx.inp.location} input '{ctx.inp.name}' "
                      "(time-based)",
                confidence=Confidence.confirmed, evidence=evidence,
                proof=proof_from(slow, elapsed_at_least(float(seconds))), url=slow.request.url)
    return None


async def _syntax_error_hint(ctx: CheckContext, v0: str, base: Exchange) -> Finding | None:
    """Broken syntax yields a traceback from compiled source ("<string>"): a hint, not a proof."""
    assert ctx.inp is not None
    patterns = [re.compile(p) for p in ctx.payloads.get("code-syntax-signatures")]
    if any(find_marker(p, base.text) for p in patterns):
        return None
    for probe in ctx.payloads.get("code-syntax-probe"):
        ex = await ctx.inject(render(probe, v=v0))
        fragment = next((m for p in patterns if (m := find_marker(p, ex.text))), None)
        if fragment is None:
            continue
        summary = "a SyntaxError from eval()/exec()/compile() of the input"
        evidence = [*exchange_evidence(ex, summary, fragment),
                    note("why tentative", "the input reached Python's compiler, but no expression result was "
                                          "seen; eval of request data is likely")]
        return ctx.finding(
            title=f"Possible Python code injection in {ctx.inp.location} input '{ctx.inp.name}' "
                  "(SyntaxError from compiled input)",
            confidence=Confidence.tentative, evidence=evidence, proof=proof_from(ex, body_contains(fragment)),
            url=ex.request.url)
    return None
