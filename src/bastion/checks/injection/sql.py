"""SQL injection: error-based, boolean-based blind and time-based blind, each proven before reporting.

Like sqlmap, a technique counts only when the difference it relies on is reproduced with fresh
random values: a DB error that a quote provokes and a balanced quote removes (twice), a true/false
condition pair whose responses differ while each side stays stable (two pairs), or a delay the
payload controls (2 s and 3 s, each with a fast zero-delay twin).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import quote, quote_plus

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import (
    body_contains,
    body_matches,
    elapsed_at_least,
    exchange_evidence,
    note,
    proof_from,
    status_in,
)
from bastion.findings.model import Confidence, Evidence, Finding, ProofCondition
from bastion.payloads.corpus import render
from bastion.payloads.oracles import delay_evidence, encodings, find_marker, prove_delay, timing_lock
from bastion.surface.requests import default_value
from bastion.target.exchange import Exchange

# OR conditions widen a WHERE clause to every row: never send them where that could write.
_NO_OR_METHODS = frozenset({"PUT", "PATCH", "DELETE"})
SAME_RATIO = 0.98  # pages whose responses vary on their own: "same" above this similarity
SLOW_BASELINE = 1.0  # seconds; a slower baseline makes delays unprovable
FAST = 1.0  # seconds; the zero-delay twin of a delay payload must answer faster than this
TIME_CANDIDATES = 3  # delay payloads tried per input (one request each unless it sleeps)
_MAX_COMPARE = 50_000
_MAX_DIFF = 20_000  # opcodes are quadratic: only the head of a huge page is searched for a fragment


@check(id="injection.sql", threat="injection.sql", scope="input", cost=11.0)
async def sql_injection(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Error, boolean and time techniques in turn; stops at the first proof.

    Requests per input: 1 baseline; error-based 1 (up to 6 when an error shows); boolean-based 2 per
    template (3-5 templates), +1 baseline repeat when a pair differs, +2 to confirm, +≤5 to name the
    DBMS; time-based 1 per candidate (≤3) +3 to confirm. A clean string input costs about 11.
    An unbalanced DB error alone is reported as `firm` only when no other technique confirms.
    """
    assert ctx.inp is not None
    v0 = default_value(ctx.inp)
    base = await ctx.inject(v0)
    if not base.ok:
        return
    probe = _SqlProbe(ctx, v0, base)
    error_finding = await probe.error_based()
    if error_finding is not None and error_finding.confidence == Confidence.confirmed:
        yield error_finding
        return
    for technique in (probe.boolean_based, probe.time_based):
        found = await technique()
        if found is not None:
            if error_finding is not None:
                found.evidence.extend(error_finding.evidence[:2])
            yield found
            return
    if error_finding is not None:
        yield error_finding
        return
    blind = await sensor_only_sql(ctx, v0)
    if blind is not None:
        yield blind


def _literal_starts(sql: str) -> list[int]:
    """For each character of `sql`, where the string literal holding it was opened (-1: outside).

    Quotes double to escape (SQL standard) and a backslash escapes the next character (MySQL): an
    escaping app keeps the payload's quotes inside its own literal either way.
    """
    starts = [-1] * len(sql)
    quote, start, i = "", -1, 0
    while i < len(sql):
        ch = sql[i]
        if not quote:
            if ch in "'\"":
                quote, start = ch, i
        elif ch == "\\":
            starts[i] = start
            i += 1
        elif ch == quote:
            if sql[i + 1:i + 2] == quote:
                starts[i] = start
                i += 1
            else:
                quote = ""
        if quote and i < len(sql):
            starts[i] = start
        i += 1
    return starts


def payload_quote_is_syntax(sql: str, marker: str, canary: str) -> bool:
    """The marker is in the statement and the literal holding its canary was opened by one of the
    marker's own quotes: the payload's quotes are SQL syntax, not data inside the app's literal."""
    at = sql.find(marker)
    if at < 0:
        return False
    starts = _literal_starts(sql)
    spot = sql.find(canary, at, at + len(marker))
    return spot >= 0 and at <= starts[spot] < spot


async def sensor_only_sql(ctx: CheckContext, v0: str) -> Finding | None:
    """Blind SQL injection that no response shows: the payload's marker verbatim in a statement the SQL
    sensor saw (in-process targets only; 1 request per input unless the value reaches SQL text)."""
    if ctx.sensors is None:
        return None
    assert ctx.inp is not None
    numeric = _is_numeric(v0)
    for entry in ctx.payloads.get("sql-sensor"):
        if entry["context"] == "numeric" and not numeric:
            continue
        canary = ctx.canary()
        ex = await ctx.inject(render(entry["template"], v=v0, c=canary))
        marker = render(entry["marker"], c=canary)
        reached = [e for e in ctx.sensor_events(canary) if e.kind == "sql"]
        if not reached:
            return None  # the value never reaches SQL text (bound, or unused): other contexts cannot either
        if not any(payload_quote_is_syntax(e.raw_detail, marker, canary) for e in reached):
            continue
        evidence = [*exchange_evidence(ex, "the response shows no error, no reflection and no difference"),
                    note("blind (seen only by the sensors)",
                         f"the SQL sensor saw {marker!r} verbatim in a statement: the value was spliced into the SQL "
                         f"text ({entry['context']} context) and its quotes stayed SQL syntax")]
        return ctx.finding(
            title=f"SQL injection in {ctx.inp.location} input '{ctx.inp.name}' (blind, seen only by the sensors)",
            confidence=Confidence.confirmed, evidence=evidence, proof=proof_from(ex, status_in(ex.status)),
            url=ex.request.url)
    return None


@cache
def _signatures(raw: tuple[tuple[str, str], ...]) -> list[tuple[str, re.Pattern[str]]]:
    return [(dbms, re.compile(pattern)) for dbms, pattern in raw]


def _is_numeric(value: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?", value.strip()) is not None


@dataclass
class _Page:
    """A response reduced for comparison: status and normalised text."""

    ex: Exchange
    text: str

    @property
    def status(self) -> int:
        return self.ex.status


# Content that changes on every response: tokens/nonces, clock times, epoch-like numbers, UUIDs.
_DYNAMIC = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                      r"|[A-Za-z0-9+/_\-]{16,}={0,2}|\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?|\d{9,}")


def _mask(text: str) -> str:
    return _DYNAMIC.sub("#", text)


def similarity(a: str, b: str) -> float:
    """difflib similarity of two normalised bodies (1.0 when equal)."""
    if a == b:
        return 1.0
    matcher = difflib.SequenceMatcher(None, a[:_MAX_COMPARE], b[:_MAX_COMPARE])
    quick = matcher.quick_ratio()
    return quick if quick < SAME_RATIO else matcher.ratio()


class _SqlProbe:
    """State of one input under test: its benign value, baseline and page stability."""

    def __init__(self, ctx: CheckContext, v0: str, base: Exchange) -> None:
        self.ctx = ctx
        self.v0 = v0
        self.base = base
        self._stable: bool | None = None
        self._masked = False  # compare with tokens, timestamps and long numbers masked
        self._noise = 1.0  # similarity of two identical requests

    # --- shared -----------------------------------------------------------------------------
    def _number(self) -> int:
        return self.ctx.rng.randint(10000, 99999)

    def _page(self, ex: Exchange, payload: str | None, numbers: tuple[int, ...] = ()) -> _Page:
        """Normalise: the reflected payload becomes the benign value, random numbers become `~`."""
        text = ex.text
        if payload is not None:
            for enc in (lambda s: s, quote, quote_plus):
                for form, benign in zip(encodings(enc(payload)), encodings(enc(self.v0)), strict=True):
                    if form:
                        text = text.replace(form, benign)
        for n in numbers:
            text = text.replace(str(n), "~")
        return _Page(ex, text)

    async def _stability(self) -> None:
        """Send the baseline again: decides between exact equality (maybe masked) and a similarity ratio."""
        if self._stable is not None:
            return
        again = await self.ctx.inject(self.v0)
        a, b = self._page(self.base, None).text, self._page(again, None).text
        same_status = again.status == self.base.status
        self._stable = a == b and same_status
        if not self._stable and same_status and _mask(a) == _mask(b):
            self._stable = self._masked = True  # only CSRF tokens, timestamps and the like change
        self._noise = similarity(a, b)

    def _text(self, page: _Page) -> str:
        return _mask(page.text) if self._masked else page.text

    def same(self, a: _Page, b: _Page) -> bool:
        if a.status != b.status:
            return False
        if self._stable:
            return self._text(a) == self._text(b)
        return similarity(a.text, b.text) >= min(SAME_RATIO, self._noise - 0.02)

    def different(self, a: _Page, b: _Page) -> bool:
        if a.status != b.status:
            return True
        if self._stable:
            return self._text(a) != self._text(b)
        return similarity(a.text, b.text) < min(SAME_RATIO, self._noise) - 0.1

    def _finding(self, title: str, confidence: Confidence, evidence: list[Evidence], ex: Exchange,
                 *conditions: ProofCondition) -> Finding:
        inp = self.ctx.inp
        assert inp is not None
        return self.ctx.finding(
            title=f"SQL injection in {inp.location} input '{inp.name}' ({title})",
            confidence=confidence, evidence=evidence, proof=proof_from(ex, *conditions), url=ex.request.url)

    # --- error-based ------------------------------------------------------------------------
    def _db_error(self, text: str) -> tuple[str, str] | None:
        raw = tuple((s["dbms"], s["pattern"]) for s in self.ctx.payloads.get("sql-error-signatures"))
        for dbms, pattern in _signatures(raw):
            fragment = find_marker(pattern, text)
            if fragment is not None:
                return dbms, fragment
        return None

    async def error_based(self) -> Finding | None:
        """A quote provokes a DB error that the baseline lacks and a balanced quote removes (twice)."""
        ctx = self.ctx
        if self._db_error(self.base.text):
            return None
        if not await self._screen():
            return None
        for probe in ctx.payloads.get("sql-error-probes"):
            broken = await ctx.inject(self.v0 + probe["break"])
            error = self._db_error(broken.text)
            if error is None:
                continue
            for balanced in probe["balanced"]:
                fixed = await ctx.inject(self.v0 + balanced)
                if not fixed.ok or self._db_error(fixed.text):
                    continue
                again = await self._error_round(probe["break"], balanced)
                if again is None:
                    continue
                dbms, fragment = error
                evidence = [*exchange_evidence(broken, f"{probe['break']} breaks the query: {dbms} error",
                                               fragment),
                            *exchange_evidence(fixed, f"balanced {balanced}: the error is gone"),
                            note("technique", f"error-based; DBMS: {dbms}; reproduced with a second value")]
                return self._finding(f"error-based, {dbms}", Confidence.confirmed, evidence, broken,
                                     body_contains(fragment))
            dbms, fragment = error
            evidence = [*exchange_evidence(broken, f"{probe['break']} provokes a {dbms} error", fragment),
                        note("technique", "error-based; no balanced form removed the error "
                                          "(numeric context or a filter), so not confirmed")]
            return self._finding(f"error-based, {dbms}", Confidence.firm, evidence, broken,
                                 body_contains(fragment))
        return None

    async def _screen(self) -> bool:
        """One cheap request with both quotes: no DB error means no error-based test is worth it."""
        for suffix in self.ctx.payloads.get("sql-error-screen"):
            if self._db_error((await self.ctx.inject(self.v0 + suffix)).text) is not None:
                return True
        return False

    async def _error_round(self, breaker: str, balanced: str) -> Exchange | None:
        """Repeat break/balance with a different value; the broken exchange when it still holds."""
        value = self.v0 + str(self._number())
        broken = await self.ctx.inject(value + breaker)
        if self._db_error(broken.text) is None:
            return None
        fixed = await self.ctx.inject(value + balanced)
        return broken if fixed.ok and self._db_error(fixed.text) is None else None

    # --- boolean-based ----------------------------------------------------------------------
    async def _pair(self, template: str) -> tuple[_Page, _Page, str, str]:
        """Send the true and the false form of `template` with fresh random numbers."""
        x, y, a = self._number(), self._number(), self._number()
        while y == x:
            y = self._number()
        t_payload = render(template, v=self.v0, cond=f"{x}={x}", a=str(a))
        f_payload = render(template, v=self.v0, cond=f"{x}={y}", a=str(a))
        # One after the other: a stateful target sees them in a fixed order, so runs stay identical.
        t_ex = await self.ctx.inject(t_payload)
        f_ex = await self.ctx.inject(f_payload)
        nums = (x, y, a)
        return self._page(t_ex, t_payload, nums), self._page(f_ex, f_payload, nums), t_payload, f_payload

    async def _verdict(self, t: _Page, f: _Page) -> str | None:
        """'AND' when the false form changes the page, 'OR' when the true form does, else None."""
        if t.text == f.text and t.status == f.status:
            return None
        await self._stability()
        base = self._page(self.base, None)
        if not self.different(t, f):
            return None
        if self.same(t, base):
            return "AND"
        if self.same(f, base):
            return "OR"
        return None

    async def boolean_based(self) -> Finding | None:
        """A true/false condition pair changes the response, reproduced with a second pair."""
        ctx = self.ctx
        assert ctx.ep is not None
        numeric = _is_numeric(self.v0)
        for tpl in ctx.payloads.get("sql-boolean"):
            if tpl["context"] == "numeric" and not numeric:
                continue
            if tpl["form"] == "OR" and ctx.ep.method in _NO_OR_METHODS:
                continue
            t1, f1, t_payload, _ = await self._pair(tpl["template"])
            shape = await self._verdict(t1, f1)
            if shape is None:
                continue
            t2, f2, _, _ = await self._pair(tpl["template"])
            if not (self.same(t2, t1) and self.same(f2, f1) and self.different(t2, f2)):
                continue
            dbms = await self._fingerprint(tpl["template"], t1)
            return self._boolean_finding(tpl, t1, f1, dbms)
        return None

    async def _fingerprint(self, template: str, true_page: _Page) -> str:
        """The DBMS whose own function keeps the condition true, or 'DBMS unknown'."""
        for entry in self.ctx.payloads.get("sql-dbms-conditions"):
            a = self._number()
            payload = render(template, v=self.v0, cond=entry["cond"], a=str(a))
            page = self._page(await self.ctx.inject(payload), payload, (a,))
            if self.same(page, true_page):
                return str(entry["dbms"])
        return "DBMS unknown"

    def _boolean_finding(self, tpl: dict[str, Any], t: _Page, f: _Page, dbms: str) -> Finding:
        evidence = [*exchange_evidence(t.ex, "condition true"), *exchange_evidence(f.ex, "condition false"),
                    note("technique", f"boolean-based blind ({tpl['form']} form, {tpl['context']} context); "
                                      f"{dbms}; reproduced with a second pair of random numbers")]
        return self._finding(f"boolean-based blind, {dbms}", Confidence.confirmed, evidence, t.ex,
                             *_distinguishing(t, f, self._text))

    # --- time-based -------------------------------------------------------------------------
    async def time_based(self) -> Finding | None:
        """The payload's delay shows in the response time (2 s and 3 s, each with a fast 0 s twin)."""
        ctx = self.ctx
        if self.base.elapsed > SLOW_BASELINE:
            return None
        numeric = _is_numeric(self.v0)
        candidates = [c for c in ctx.payloads.get("sql-time") if c["context"] != "numeric" or numeric]
        if numeric:  # numeric contexts first: a string-context payload cannot parse there
            candidates.sort(key=lambda c: c["context"] != "numeric")
        async with timing_lock(ctx.memo):
            for cand in candidates[:TIME_CANDIDATES]:
                template = cand["template"]

                async def send(seconds: int, template: str = template) -> Exchange:
                    return await ctx.inject(render(template, v=self.v0, n=str(seconds)))

                proof = await prove_delay(send, fast_below=FAST)
                if proof is None:
                    continue
                seconds, slow = proof.slowest
                evidence = delay_evidence(
                    proof, f"at least {seconds} s with a {seconds} s delay",
                    lambda n: f"delay {n} s took at least {n} s, the zero-delay twin under {FAST:g} s",
                    prefix=f"baseline under {SLOW_BASELINE:g} s; ")
                return self._finding(f"time-based blind, {cand['dbms']}", Confidence.confirmed, evidence,
                                     slow, elapsed_at_least(float(seconds)))
        return None


def _distinguishing(t: _Page, f: _Page, view: Callable[[_Page], str]) -> list[ProofCondition]:
    """Conditions that hold on the true response and not on the false one (dynamic parts masked)."""
    if t.status != f.status:
        return [status_in(t.status)]
    fragment = _fragment_only_in(t, f, view)
    if fragment is not None:
        return [status_in(t.status), body_contains(fragment)]
    fragment = _fragment_only_in(f, t, view)
    if fragment is not None:
        return [status_in(t.status), body_matches(r"\A(?![\s\S]*" + re.escape(fragment) + ")")]
    return [status_in(t.status)]


def _fragment_only_in(a: _Page, b: _Page, view: Callable[[_Page], str]) -> str | None:
    """The longest text of `a`'s raw body (≤ 80 chars) absent from `b`'s, outside payload and noise."""
    a_text, b_text = view(a)[:_MAX_DIFF], view(b)[:_MAX_DIFF]
    opcodes = difflib.SequenceMatcher(None, a_text, b_text, autojunk=False).get_opcodes()
    segments = sorted((a_text[i1:i2] for op, i1, i2, _, _ in opcodes if op in ("replace", "delete")),
                      key=len, reverse=True)
    for seg in segments:
        frag = seg.strip()[:80]
        if "~" in frag or "#" in frag or len(frag) < 3:
            continue
        if frag in a.ex.text and frag not in b.ex.text:
            return frag
    return None
