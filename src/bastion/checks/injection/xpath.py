"""XPath injection: request data spliced into an XPath expression that the app evaluates.

Three techniques, strongest first, each proven before reporting:
- sensor (in-process targets): the payload calls `bastion-sensor('<canary>')`, an XPath extension
  function the sensors register in lxml; the call arriving with the canary proves that the value
  became XPath syntax and was evaluated (confirmed, even when the response shows nothing);
- error-based: a quote provokes an XPath error that a balanced form removes, twice;
- boolean-based: a true/false condition pair changes the response while each side matches the
  baseline's shape, reproduced with a second pair of random numbers.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import body_contains, exchange_evidence, note, proof_from, status_in
from bastion.findings.model import Confidence, Finding
from bastion.payloads.corpus import render
from bastion.payloads.differential import Page, distinguishing, first_proof, page, same, shape_holds
from bastion.payloads.oracles import find_marker
from bastion.target.exchange import Exchange

INPUT_LOCATIONS = ("query", "form", "json", "multipart", "cookie", "path")


@check(id="injection.xpath", threat="injection.xpath", scope="input", locations=INPUT_LOCATIONS, cost=16.0)
async def xpath_injection(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Requests per input: 1 baseline, 4 sensor probes (in-process), 2 error probes (+3 to confirm),
    1 baseline repeat and 1-2 per boolean template (4) (+2 to confirm): about 12 when nothing is found."""
    found = await first_proof(ctx, (_sensor_based, _error_based, _boolean_based))
    if found is not None:
        yield found


def _title(ctx: CheckContext, how: str) -> str:
    assert ctx.inp is not None
    return f"XPath injection in {ctx.inp.location} input '{ctx.inp.name}' ({how})"


async def _sensor_based(ctx: CheckContext, v0: str, base: Exchange) -> Finding | None:
    if ctx.sensors is None:
        return None
    for template in ctx.payloads.get("xpath-sensor"):
        canary = ctx.canary()
        ex = await ctx.inject(render(template, c=canary))
        events = [e for e in ctx.sensor_events(canary) if e.kind == "xpath"]
        if events:
            evidence = [*exchange_evidence(ex, "the payload calls the XPath sensor function"),
                        note("sensor proof", f"lxml evaluated bastion-sensor({canary!r}) from the request: the value "
                                             "became XPath syntax (seen by the sensors; the response may not show it)")]
            return ctx.finding(title=_title(ctx, "evaluated injected XPath, seen by the sensors"),
                               confidence=Confidence.confirmed, evidence=evidence,
                               proof=proof_from(ex, status_in(ex.status)), url=ex.request.url)
    return None


def _xpath_error(ctx: CheckContext, text: str) -> str | None:
    for pattern in ctx.payloads.get("xpath-error-signatures"):
        fragment = find_marker(re.compile(pattern), text)
        if fragment is not None:
            return fragment
    return None


async def _error_based(ctx: CheckContext, v0: str, base: Exchange) -> Finding | None:
    """A quote provokes an XPath error the baseline lacks and a balanced form removes (two values)."""
    if _xpath_error(ctx, base.text):
        return None
    for probe in ctx.payloads.get("xpath-error-probes"):
        broken = await ctx.inject(v0 + probe["break"])
        fragment = _xpath_error(ctx, broken.text)
        if fragment is None:
            continue
        for balanced in probe["balanced"]:
            fixed = await ctx.inject(v0 + balanced)
            if _xpath_error(ctx, fixed.text) is not None:
                continue
            other = v0 + str(ctx.rng.randint(10000, 99999))
            again = await ctx.inject(other + probe["break"])
            again_fixed = await ctx.inject(other + balanced)
            if _xpath_error(ctx, again.text) is None or _xpath_error(ctx, again_fixed.text) is not None:
                continue
            evidence = [*exchange_evidence(broken, f"{probe['break']} breaks the XPath expression", fragment),
                        *exchange_evidence(fixed, f"balanced {balanced!r}: the error is gone"),
                        note("technique", "error-based; reproduced with a second value")]
            return ctx.finding(title=_title(ctx, "error-based"), confidence=Confidence.confirmed,
                               evidence=evidence, proof=proof_from(broken, body_contains(fragment)),
                               url=broken.request.url)
    return None


async def _pair(ctx: CheckContext, template: str, form: str, v0: str, base: Page) -> tuple[Page, Page] | None:
    """The true and false pages of `template`; None as soon as the side that must change does not
    (AND: the false form, OR: the true form), which saves a request on most inputs."""
    # string-length() is XPath-only: a SQL or NoSQL injection answers both forms alike (an error).
    word, a = ctx.canary(ctx.rng.randint(4, 9)), ctx.rng.randint(10000, 99999)
    payloads = {truth: render(template, v=v0, cond=f"string-length('{word}')={len(word) + (not truth)}", a=str(a))
                for truth in (True, False)}
    order = (False, True) if form == "AND" else (True, False)
    pages: dict[bool, Page] = {}
    for truth in order:
        pages[truth] = page(await ctx.inject(payloads[truth]), payloads[truth], v0)
        if truth == order[0] and same(pages[truth], base):
            return None
    return pages[True], pages[False]


async def _boolean_based(ctx: CheckContext, v0: str, base: Exchange) -> Finding | None:
    again = await ctx.inject(v0)
    base_page = page(base, None, v0)
    if not same(base_page, page(again, None, v0)):
        return None  # the page changes on its own: no exact comparison possible
    for tpl in ctx.payloads.get("xpath-boolean"):
        first = await _pair(ctx, tpl["template"], tpl["form"], v0, base_page)
        if first is None or not shape_holds(tpl["form"], *first, base_page):
            continue
        second = await _pair(ctx, tpl["template"], tpl["form"], v0, base_page)
        t1, f1 = first
        if second is None or not (same(second[0], t1) and same(second[1], f1)):
            continue
        evidence = [*exchange_evidence(t1.ex, "condition true"), *exchange_evidence(f1.ex, "condition false"),
                    note("technique", f"boolean-based ({tpl['form']} form); reproduced with a second pair of "
                                      "random numbers")]
        return ctx.finding(title=_title(ctx, "boolean-based"), confidence=Confidence.confirmed, evidence=evidence,
                           proof=proof_from(t1.ex, *distinguishing(t1, f1)), url=t1.ex.request.url)
    return None
