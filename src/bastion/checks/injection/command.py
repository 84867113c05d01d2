"""OS command injection: the shell computes something a reflection cannot produce, or sleeps on request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import body_contains, elapsed_at_least, exchange_evidence, note, proof_from
from bastion.findings.model import Confidence, Finding
from bastion.payloads.corpus import render
from bastion.payloads.oracles import delay_evidence, prove_delay, timing_lock
from bastion.surface.requests import default_value
from bastion.target.exchange import Exchange

SLOW_BASELINE = 1.0  # seconds; a slower baseline makes delays unprovable
FAST = 1.0  # seconds; `sleep 0` must answer faster than this


@check(id="injection.command", threat="injection.command", scope="input")
async def command_injection(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Reflected arithmetic after each shell separator, then a blind sleep fallback.

    Requests per input: 1 baseline + 8 separators (+1 to confirm) + 3 blind (+3 to confirm a delay);
    12 when nothing is found. Nothing destructive runs: only `echo` and `sleep` (at most 3 s).
    """
    assert ctx.inp is not None
    v0 = default_value(ctx.inp)
    base = await ctx.inject(v0)
    if not base.ok:
        return
    for entry in ctx.payloads.get("command-reflected"):
        shown = await _computed(ctx, v0, entry["template"], base)
        if shown is None:
            continue
        again = await _computed(ctx, v0, entry["template"], base)
        if again is None:
            continue
        yield _reflected_finding(ctx, entry, shown, again)
        return
    if base.elapsed <= SLOW_BASELINE:
        found = await _blind(ctx, v0)
        if found is not None:
            yield found


async def _computed(ctx: CheckContext, v0: str, template: str, base: Exchange) -> tuple[Exchange, str] | None:
    """Send the payload with fresh numbers; the exchange and marker when the shell's result shows."""
    x, y = ctx.rng.randint(1000, 9999), ctx.rng.randint(1000, 9999)
    a, b = ctx.canary(6), ctx.canary(6)
    marker = f"{a}{x * y}{b}"
    ex = await ctx.inject(v0 + render(template, a=a, b=b, x=str(x), y=str(y)))
    if marker in ex.text and marker not in base.text:
        return ex, marker
    return None


def _reflected_finding(ctx: CheckContext, entry: dict[str, Any], shown: tuple[Exchange, str],
                       again: tuple[Exchange, str]) -> Finding:
    assert ctx.inp is not None
    ex, marker = shown
    evidence = [*exchange_evidence(ex, f"the shell computed $((x*y)) after {entry['separator']!r}", marker),
                note("confirmation", f"a second payload with other random numbers printed {again[1]}")]
    return ctx.finding(
        title=f"OS command injection in {ctx.inp.location} input '{ctx.inp.name}' "
              f"(separator {entry['separator']})",
        confidence=Confidence.confirmed, evidence=evidence, proof=proof_from(ex, body_contains(marker)),
        url=ex.request.url)


async def _blind(ctx: CheckContext, v0: str) -> Finding | None:
    """`sleep n` delays the response by n seconds (2 and 3), each with a fast `sleep 0` twin."""
    assert ctx.inp is not None
    async with timing_lock(ctx.memo):
        for entry in ctx.payloads.get("command-blind"):
            template = entry["template"]

            async def send(seconds: int, template: str = template) -> Exchange:
                return await ctx.inject(v0 + render(template, n=str(seconds)))

            proof = await prove_delay(send, fast_below=FAST)
            if proof is None:
                continue
            seconds, slow = proof.slowest
            evidence = delay_evidence(proof, f"at least {seconds} s with `sleep {seconds}`",
                                      lambda n: f"sleep {n} took at least {n} s, sleep 0 under {FAST:g} s")
            return ctx.finding(
                title=f"Blind OS command injection in {ctx.inp.location} input '{ctx.inp.name}' "
                      f"(separator {entry['separator']}, time-based)",
                confidence=Confidence.confirmed, evidence=evidence,
                proof=proof_from(slow, elapsed_at_least(float(seconds))), url=slow.request.url)
    return None
