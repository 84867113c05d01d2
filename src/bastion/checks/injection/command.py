"""OS command injection: the shell computes something a reflection cannot produce, or sleeps on request."""

from __future__ import annotations

import re
import shlex
from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import (
    body_contains,
    elapsed_at_least,
    exchange_evidence,
    note,
    proof_from,
    status_in,
)
from bastion.findings.model import Confidence, Finding
from bastion.payloads.corpus import render
from bastion.payloads.oracles import delay_evidence, prove_delay, timing_lock
from bastion.surface.requests import default_value
from bastion.target.exchange import Exchange

SLOW_BASELINE = 1.0  # seconds; a slower baseline makes delays unprovable
FAST = 1.0  # seconds; `sleep 0` must answer faster than this


@check(id="injection.command", threat="injection.command", scope="input", cost=12.0)
async def command_injection(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Reflected arithmetic after each shell separator, then a blind sleep fallback.

    Requests per input: 1 baseline + 8 separators (+1 to confirm) + 3 blind (+3 to confirm a delay),
    + 1 sensor probe with sensors on (2 when a shell sees the value quoted); 13-14 when nothing is found.
    Nothing destructive runs: only `echo` and `sleep` (at most 3 s).
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
            return
    sensed = await sensor_only_command(ctx, v0)
    if sensed is not None:
        yield sensed


_SHELL_C = re.compile(r"^(?:/usr)?/bin/(?:ba|da|z|k)?sh -c ")
_SEPARATORS = frozenset({";", "&&", "||", "|", "&"})


def live_separator(command_line: str, canary: str) -> bool:
    """Whether a `/bin/sh -c` command line runs `echo <canary>` after a separator that is shell syntax
    (not inside a quoted word, as `shlex.quote` or a list argv would keep it)."""
    m = _SHELL_C.match(command_line)
    if m is None:
        return False
    lexer = shlex.shlex(command_line[m.end():], posix=True, punctuation_chars=True)
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: the shell would refuse it too
        return False
    return any(tokens[i] in _SEPARATORS and tokens[i + 1:i + 3] == ["echo", canary] for i in range(len(tokens)))


async def sensor_only_command(ctx: CheckContext, v0: str) -> Finding | None:
    """Command injection with no output and no delay: the subprocess sensor saw the shell command line
    run `echo <canary>` after a live separator (in-process targets only; 1 request per input, 2 when a
    shell sees the value inside quotes: the second closes the app's quote first)."""
    if ctx.sensors is None:
        return None
    entries = ctx.payloads.get("command-sensor")
    entry: dict[str, Any] | None = entries[0]  # unquoted context
    while entry is not None:
        canary = ctx.canary()
        ex = await ctx.inject(render(entry["template"], v=v0, c=canary))
        shells = [e.raw_detail for e in ctx.sensor_events(canary)
                  if e.kind == "subprocess" and _SHELL_C.match(e.raw_detail)]
        if any(live_separator(line, canary) for line in shells):
            return _sensor_finding(ctx, entry, canary, ex)
        if entry is not entries[0]:
            break
        # No shell saw the value (an argv list, or unused): no quote context can help either.
        entry = _quoted_context(entries, shells, render(entry["template"], v=v0, c=canary))
    return None


def _quoted_context(entries: list[dict[str, Any]], shells: list[str], sent: str) -> dict[str, Any] | None:
    """The payload that closes the quote the app put around the value (the character before it)."""
    for line in shells:
        at = line.find(sent)
        quote = line[at - 1] if at > 0 else ""
        if quote in ("'", '"'):
            return next((e for e in entries if e["separator"] == quote + ";"), None)
    return None


def _sensor_finding(ctx: CheckContext, entry: dict[str, Any], canary: str, ex: Exchange) -> Finding:
    assert ctx.inp is not None
    evidence = [*exchange_evidence(ex, "the response shows no command output and no delay"),
                note("blind (seen only by the sensors)",
                     f"the subprocess sensor saw the shell run `echo {canary}` after {entry['separator']!r}: "
                     "the value was spliced into a shell command line")]
    return ctx.finding(
        title=f"OS command injection in {ctx.inp.location} input '{ctx.inp.name}' "
              f"(separator {entry['separator']}, blind, seen only by the sensors)",
        confidence=Confidence.confirmed, evidence=evidence, proof=proof_from(ex, status_in(ex.status)),
        url=ex.request.url)


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
