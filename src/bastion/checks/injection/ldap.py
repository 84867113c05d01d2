"""LDAP filter injection: request data spliced into a search filter without RFC 4515 escaping.

Three techniques, strongest first, each proven before reporting:
- sensor (in-process targets): the search filter the app hands to ldap3 contains `)(cn=<canary>`
  verbatim, i.e. the value's parentheses became filter syntax (an escaped value shows `\\29\\28`);
- error-based: an unbalanced `)` provokes a filter error that a balanced form does not, twice;
- boolean-based: `*)(cn=*` (every entry) and `*)(cn=<canary>` (none) change the response while
  the widened form keeps the baseline's status, reproduced with a second canary.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import body_contains, exchange_evidence, note, proof_from, status_in
from bastion.findings.model import Confidence, Finding
from bastion.payloads.corpus import render
from bastion.payloads.differential import Page, distinguishing, first_proof, page, same
from bastion.payloads.oracles import find_marker
from bastion.target.exchange import Exchange

INPUT_LOCATIONS = ("query", "form", "json", "multipart", "cookie", "path")


@check(id="injection.ldap", threat="injection.ldap", scope="input", locations=INPUT_LOCATIONS)
async def ldap_injection(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Requests per input: 1 baseline, 1 sensor probe (in-process), 1 error probe (+3 to confirm),
    2 boolean (+3 to confirm): about 5 when nothing is found."""
    found = await first_proof(ctx, (_sensor_based, _error_based, _boolean_based))
    if found is not None:
        yield found


def _title(ctx: CheckContext, how: str) -> str:
    assert ctx.inp is not None
    return f"LDAP filter injection in {ctx.inp.location} input '{ctx.inp.name}' ({how})"


async def _sensor_based(ctx: CheckContext, v0: str, base: Exchange) -> Finding | None:
    if ctx.sensors is None:
        return None
    for entry in ctx.payloads.get("ldap-boolean"):
        canary = ctx.canary()
        ex = await ctx.inject(render(entry["impossible"], c=canary))
        marker = render(entry["marker"], c=canary)
        events = [e for e in ctx.sensor_events(canary) if e.kind == "ldap" and marker in e.raw_detail]
        if events:
            evidence = [*exchange_evidence(ex, f"the value {render(entry['impossible'], c=canary)!r}"),
                        note("sensor proof", f"the search filter passed to ldap3 contains {marker!r} unescaped: "
                                             "the value's parentheses became filter syntax (seen by the sensors; "
                                             "the response may not show it)")]
            return ctx.finding(title=_title(ctx, "unescaped in the search filter, seen by the sensors"),
                               confidence=Confidence.confirmed, evidence=evidence,
                               proof=proof_from(ex, status_in(ex.status)), url=ex.request.url)
    return None


def _filter_error(ctx: CheckContext, text: str) -> str | None:
    for pattern in ctx.payloads.get("ldap-error-signatures"):
        fragment = find_marker(re.compile(pattern), text)
        if fragment is not None:
            return fragment
    return None


async def _error_round(ctx: CheckContext, probe: dict[str, Any], value: str) -> tuple[Exchange, str] | None:
    """The broken exchange and its error fragment when `break` errs and every balanced form does not."""
    broken = await ctx.inject(render(probe["break"], v=value))
    fragment = _filter_error(ctx, broken.text)
    if fragment is None:
        return None
    for balanced in probe["balanced"]:
        fixed = await ctx.inject(render(balanced, v=value, c=ctx.canary()))
        if _filter_error(ctx, fixed.text) is not None:
            return None
    return broken, fragment


async def _error_based(ctx: CheckContext, v0: str, base: Exchange) -> Finding | None:
    if _filter_error(ctx, base.text):
        return None
    for probe in ctx.payloads.get("ldap-error-probes"):
        first = await _error_round(ctx, probe, v0)
        if first is None:
            continue
        if await _error_round(ctx, probe, v0 + str(ctx.rng.randint(10000, 99999))) is None:
            continue
        broken, fragment = first
        evidence = [*exchange_evidence(broken, "an unbalanced ')' breaks the search filter", fragment),
                    note("technique", "error-based; the balanced form does not err; reproduced with a second value")]
        return ctx.finding(title=_title(ctx, "error-based"), confidence=Confidence.confirmed, evidence=evidence,
                           proof=proof_from(broken, body_contains(fragment)), url=broken.request.url)
    return None


async def _pair(ctx: CheckContext, entry: dict[str, Any], v0: str) -> tuple[Page, Page]:
    true_payload = entry["widening"]
    false_payload = render(entry["impossible"], c=ctx.canary())
    t_ex = await ctx.inject(true_payload)
    f_ex = await ctx.inject(false_payload)
    return page(t_ex, true_payload, v0), page(f_ex, false_payload, v0)


async def _boolean_based(ctx: CheckContext, v0: str, base: Exchange) -> Finding | None:
    """The widened filter differs from the impossible one, whose page equals the baseline's (twice)."""
    base_page = page(base, None, v0)
    for entry in ctx.payloads.get("ldap-boolean"):
        t1, f1 = await _pair(ctx, entry, v0)
        # OR shape: the impossible condition leaves the baseline page; the wildcard widens it.
        if same(t1, f1) or not same(f1, base_page) or t1.ex.status != base.status:
            continue
        again = page(await ctx.inject(v0), None, v0)
        if not same(again, base_page):
            continue
        t2, f2 = await _pair(ctx, entry, v0)
        if not (same(t2, t1) and same(f2, f1)):
            continue
        evidence = [*exchange_evidence(t1.ex, f"{entry['widening']!r} widens the filter"),
                    *exchange_evidence(f1.ex, "an impossible condition leaves the baseline"),
                    note("technique", "boolean-based; reproduced with a second canary")]
        return ctx.finding(title=_title(ctx, "boolean-based"), confidence=Confidence.confirmed, evidence=evidence,
                           proof=proof_from(t1.ex, *distinguishing(t1, f1)), url=t1.ex.request.url)
    return None
