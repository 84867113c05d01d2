"""Server-side template injection: a template expression in the input is evaluated by the server.

The probe multiplies two random numbers in each engine's expression syntax. The product must show
and the literal expression must not: an escaped echo of `{{1234*5678}}` is not SSTI. A second pair
confirms, and string repetition (`'x'*2`, Python and Ruby engines only) names the engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import body_contains, exchange_evidence, note, proof_from
from bastion.findings.model import Confidence, Finding
from bastion.payloads.corpus import render
from bastion.surface.requests import default_value
from bastion.target.exchange import Exchange


@check(id="injection.ssti", threat="injection.ssti", scope="input", cost=5.0)
async def template_injection(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Arithmetic in four expression syntaxes; a second pair confirms, one more probe names the engine.

    When a syntax computes, the bare `x*y` is sent too: an arithmetic evaluator that computes it
    without any template syntax is not a template engine (the code-injection check covers it).
    Requests per input: 1 baseline + 4 syntaxes (+1 control, +1 to confirm, +1 for the engine); ≤ 8.
    """
    assert ctx.inp is not None
    base = await ctx.inject(default_value(ctx.inp))
    if not base.ok:
        return
    for probe in ctx.payloads.get("ssti-probes"):
        shown = await _rendered(ctx, probe["template"], base)
        if shown is None:
            continue
        if await _rendered(ctx, "{x}*{y}", base, literal_ok=True) is not None:
            return  # bare arithmetic is computed too: an expression evaluator, not a template engine
        again = await _rendered(ctx, probe["template"], base)
        if again is None:
            continue
        engine = await _engine(ctx, probe["syntax"], base)
        yield _finding(ctx, probe, engine, shown, again[1])
        return


async def _rendered(ctx: CheckContext, template: str, base: Exchange,
                    literal_ok: bool = False) -> tuple[Exchange, str] | None:
    """Send x*y in this syntax; the exchange and product when it was computed, not echoed."""
    x, y = ctx.rng.randint(1000, 9999), ctx.rng.randint(1000, 9999)
    product, literal = str(x * y), f"{x}*{y}"
    ex = await ctx.inject(render(template, x=str(x), y=str(y)))
    if product in ex.text and (literal_ok or literal not in ex.text) and product not in base.text:
        return ex, product
    return None


async def _engine(ctx: CheckContext, syntax: str, base: Exchange) -> str:
    """The engine's name when string repetition works in this syntax, else the syntax family."""
    for entry in ctx.payloads.get("ssti-engines"):
        if entry["syntax"] != syntax:
            continue
        c = ctx.canary(6)
        ex = await ctx.inject(render(entry["template"], c=c))
        if c + c in ex.text and c + c not in base.text:
            return str(entry["engine"])
        return str(entry["otherwise"])
    return f"{syntax} templates"


def _finding(ctx: CheckContext, probe: dict[str, Any], engine: str, shown: tuple[Exchange, str],
             again: str) -> Finding:
    assert ctx.inp is not None
    ex, product = shown
    summary = f"the template engine computed the product in {probe['syntax']}"
    evidence = [*exchange_evidence(ex, summary, product),
                note("confirmation", f"a second random pair rendered as {again}; engine: {engine}")]
    return ctx.finding(
        title=f"Server-side template injection ({engine}) in {ctx.inp.location} input '{ctx.inp.name}'",
        confidence=Confidence.confirmed, evidence=evidence, proof=proof_from(ex, body_contains(product)),
        url=ex.request.url)
