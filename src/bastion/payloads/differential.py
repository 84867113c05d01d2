"""Exact response comparison for true/false payload pairs (boolean-based injection oracles).

A response is reduced to its status and text with the reflected payload put back to the benign
value (in every encoding it may be reflected in), so a page that only echoes the payload compares
equal to the baseline. Shared by the XPath and LDAP checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from bastion.findings.evidence import body_contains, status_in
from bastion.findings.model import ProofCondition
from bastion.payloads.oracles import encodings
from bastion.target.exchange import Exchange

if TYPE_CHECKING:
    from bastion.engine.context import CheckContext
    from bastion.findings.model import Finding

# A technique gets the unit's benign value and its baseline response; it returns a finding or None.
Technique = Callable[["CheckContext", str, Exchange], Awaitable["Finding | None"]]


async def first_proof(ctx: CheckContext, techniques: Sequence[Technique]) -> Finding | None:
    """Baseline the unit's input at its benign default, then try each technique until one proves the flaw."""
    from bastion.surface.requests import default_value

    assert ctx.inp is not None
    benign = default_value(ctx.inp)
    base = await ctx.inject(benign)
    if not base.ok:
        return None
    for technique in techniques:
        found = await technique(ctx, benign, base)
        if found is not None:
            return found
    return None


@dataclass
class Page:
    """A response reduced for comparison."""

    ex: Exchange
    text: str


def page(ex: Exchange, payload: str | None, benign: str) -> Page:
    """The response with the reflected `payload` replaced by `benign`."""
    text = ex.text
    if payload is not None:
        for enc in (lambda s: s, quote, quote_plus):
            for form, value in zip(encodings(enc(payload)), encodings(enc(benign)), strict=True):
                if form:
                    text = text.replace(form, value)
    return Page(ex, text)


def same(a: Page, b: Page) -> bool:
    return a.ex.status == b.ex.status and a.text == b.text


def shape_holds(form: str, true_page: Page, false_page: Page, base: Page) -> bool:
    """AND form: true matches the baseline and false differs; OR form: false matches, true differs."""
    if same(true_page, false_page):
        return False
    return same(true_page, base) if form == "AND" else same(false_page, base)


def distinguishing(true_page: Page, false_page: Page) -> list[ProofCondition]:
    """Conditions that hold on the true response and not on the false one."""
    t, f = true_page.ex, false_page.ex
    if t.status == f.status:
        for line in true_page.text.splitlines():
            fragment = line.strip()[:80]
            if len(fragment) >= 3 and fragment in t.text and fragment not in f.text:
                return [status_in(t.status), body_contains(fragment)]
    return [status_in(t.status)]
