"""Resilience: with each dependency the threat model declares broken in turn (its Bastion double down, then
answering errors), decisions must fail secure, errors must not leak the dependency, the service must recover,
retries must be bounded and a hung dependency must be given up on.

The dependencies are `dependencies:` entries with `double: true` (docs/resilience.md): Bastion started their
doubles and wired the in-process app to them, so it can switch faults on and count what the app sent. The
entry points probed are each dependency's `protects` list (a queue's `consume` entry otherwise), as
anonymous, as every role, and for an IdP with a token it issued, a forged unsigned one and a malformed one.
A caller is judged against its own healthy answer: only a caller denied while the dependency is healthy can
"fail open", only a caller allowed while it is healthy must "recover".

Databases and caches count too: a cache with `double: true` is a redis-server behind Bastion's fault proxy;
a sqlite `path`, a postgresql/cache `url` or a `fault_hook` give an in-process outage (resilience/outage.py)
that fails the app's new connections to the store. URL targets (`allow_destructive: true`) are tested only
through doubles listening on a port the running service was wired to; anything else is skipped, with why.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from bastion.checks.registry import check
from bastion.doubles.faults import FaultInjector
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, note, proof_from, status_in
from bastion.findings.model import Confidence, Finding
from bastion.resilience.probing import (
    FAULTS,
    Caller,
    allowed,
    call,
    callers,
    denied,
    dependency_config,
    fault,
    fault_label,
    injections,
    leak_in,
    protected_entries,
    shows_content_of,
    stabilized,
    stack_signatures,
    wired_doubles,
)
from bastion.resilience.wiring import Wired
from bastion.surface.model import EntryPoint
from bastion.target.exchange import Exchange

# Calls to a failing dependency one request may cause; more is a retry storm (a login may legitimately
# fetch discovery, keys and userinfo: a small handful).
MAX_ATTEMPTS = 4
# Tries after the dependency is back before "did not recover".
RECOVERY_ATTEMPTS = 3
# A dependency silent this long must have been given up on; replies are held at most HOLD_S (bounded).
LATENCY_S = 3.0
HOLD_S = 30.0
# Doubles reached over the network (an in-process fake has no timeout to honour).
NETWORK_KINDS = ("oidc", "vault")
# URL targets: how long Bastion waits to see a double's port answer before it skips that dependency.
REACH_TIMEOUT_S = 2.0
_HOST_PORT = re.compile(r"[\w.\-\[\]:]+:\d+")


async def _targets(ctx: CheckContext) -> list[tuple[Wired, object, list[EntryPoint]]]:
    """(double, dependency config, protected entry points) for every wired dependency, by name."""
    wired = wired_doubles(ctx)
    if wired is None:
        return []
    out, unusable = [], []
    for name in sorted(wired.deps):
        dep = dependency_config(ctx, name)
        eps = [ep for ep in protected_entries(ctx, dep) if ctx.may_write(ep.method, ep.path)]
        why_not = None if ctx.target.in_process or not eps else await _unusable_remotely(wired.deps[name])
        if why_not is not None:
            unusable.append(f"{name}: {why_not}")
        elif eps:
            out.append((wired.deps[name], dep, eps))
    if unusable:
        ctx.skip("URL target: " + "; ".join(unusable))
    elif not out:
        ctx.skip("no dependency names entry points it protects (protects: / consume:)")
    return out


async def _unusable_remotely(item: Wired) -> str | None:
    """Why a fault on this dependency cannot reach a service running elsewhere (None: it can).

    Only a double listening on a port (behind Bastion's fault proxy) can be broken for another process: an
    in-process outage (audit hook) or the in-memory queue exists only inside Bastion.
    """
    if getattr(item.double, "in_process_only", False):
        return "its outage is injected inside Bastion's process, which the running service is not"
    ports = [a for a in item.addresses if _HOST_PORT.fullmatch(a)]
    if not ports:
        return "its double lives inside Bastion's process; the running service cannot be wired to it"
    host, _, port = ports[0].rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), REACH_TIMEOUT_S)
    except (OSError, TimeoutError):
        return "its double does not answer (stopped?)"
    writer.close()
    return None


async def _baseline(ctx: CheckContext, ep: EntryPoint, who: list[Caller]) -> dict[str, Exchange]:
    return {c.label: await call(ctx, ep, c) for c in who}


def _reference(who: list[Caller], base: dict[str, Exchange]) -> Exchange | None:
    """An allowed caller's healthy answer (the IdP's own token first): what protected content looks like."""
    for c in sorted(who, key=lambda c: not c.genuine):
        if allowed(base[c.label]):
            return base[c.label]
    return None


def _broken_thing(wired: Wired, kind: str) -> str:
    """What Bastion broke: a double it runs, or the app's new connections to a store (in-process outage)."""
    if getattr(wired.double, "in_process_only", False):
        return f"Bastion made the app's new connections to its {wired.kind} store fail"
    return f"Bastion's {wired.kind} double was {fault_label(kind)}"


def _title_dep(wired: Wired) -> str:
    return f"dependency '{wired.name}' ({wired.kind})"


@check(id="resilience.fail-open", threat="resilience.fail-open", scope="target", needs=("dependencies",))
@stabilized
async def fail_open(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Callers denied while the dependency is healthy must stay denied while it is down or erroring."""
    for wired, dep, eps in await _targets(ctx):
        for ep in eps:
            who = callers(ctx, wired, dep)
            base = await _baseline(ctx, ep, who)
            reference = _reference(who, base)
            refused = [c for c in who if denied(base[c.label])]
            if reference is None or not refused:
                continue
            hit = await _first_fail_open(ctx, wired, ep, refused, reference)
            if hit is not None:
                kind, caller, ex = hit
                yield _fail_open_finding(ctx, wired, ep, kind, caller, base[caller.label], ex)


async def _first_fail_open(ctx: CheckContext, wired: Wired, ep: EntryPoint, refused: list[Caller],
                           reference: Exchange) -> tuple[str, Caller, Exchange] | None:
    for kind in FAULTS:
        with fault(wired, kind):
            for caller in refused:
                ex = await call(ctx, ep, caller)
                if shows_content_of(ex, reference):
                    return kind, caller, ex
    return None


def _fail_open_finding(ctx: CheckContext, wired: Wired, ep: EntryPoint, kind: str, caller: Caller,
                       before: Exchange, ex: Exchange) -> Finding:
    evidence = [*exchange_evidence(before, f"{_title_dep(wired)} healthy: {caller.label} is denied"),
                *exchange_evidence(ex, f"{_title_dep(wired)} {fault_label(kind)}: {caller.label} is let in"),
                note("fault", f"{_broken_thing(wired, kind)}; the entry point answered {ex.status} with the "
                              "content an allowed caller gets")]
    return ctx.finding(title=f"{ep.key} fails open when {_title_dep(wired)} is {kind}: {caller.label} let in",
                       confidence=Confidence.confirmed, evidence=evidence, location=ctx.location(ep=ep),
                       proof=proof_from(ex, status_in(ex.status)), url=ex.request.url)


@check(id="resilience.error-leak", threat="resilience.error-leak", scope="target", needs=("dependencies",))
@stabilized
async def error_leak(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Answers given while the dependency fails must not name it, quote its errors or show a stack trace."""
    sigs = stack_signatures(ctx)
    for wired, dep, eps in await _targets(ctx):
        for ep in eps:
            who = callers(ctx, wired, dep)
            base = await _baseline(ctx, ep, who)
            hit = await _first_leak(ctx, wired, ep, who, base, sigs)
            if hit is not None:
                kind, caller, ex, what = hit
                evidence = [*exchange_evidence(ex, f"{_title_dep(wired)} {fault_label(kind)}: answer to "
                                                   f"{caller.label}"),
                            note("leak", f"the answer shows {what}; the healthy answer did not")]
                yield ctx.finding(title=f"{ep.key} leaks {_title_dep(wired)} internals when it is {kind}",
                                  confidence=Confidence.confirmed, evidence=evidence, location=ctx.location(ep=ep),
                                  proof=proof_from(ex, status_in(ex.status)), url=ex.request.url)


async def _first_leak(ctx: CheckContext, wired: Wired, ep: EntryPoint, who: list[Caller],
                      base: dict[str, Exchange], sigs: list) -> tuple[str, Caller, Exchange, str] | None:
    for kind in FAULTS:
        with fault(wired, kind):
            for caller in who:
                if not base[caller.label].ok:
                    continue
                ex = await call(ctx, ep, caller)
                what = leak_in(ex, base[caller.label], wired, sigs) if ex.ok else None
                if what is not None:
                    return kind, caller, ex, what
    return None


@check(id="resilience.no-recovery", threat="resilience.no-recovery", scope="target", needs=("dependencies",))
@stabilized
async def no_recovery(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Callers allowed before a dependency failure must be allowed again once it is back."""
    for wired, dep, eps in await _targets(ctx):
        for ep in eps:
            who = callers(ctx, wired, dep)
            base = await _baseline(ctx, ep, who)
            welcome = [c for c in who if allowed(base[c.label])]
            for kind in FAULTS:
                stuck = await _stuck_after(ctx, wired, ep, welcome, kind)
                if stuck is not None:
                    caller, ex = stuck
                    evidence = [*exchange_evidence(base[caller.label], f"before: {caller.label} allowed"),
                                *exchange_evidence(ex, f"after {_title_dep(wired)} was {fault_label(kind)} and "
                                                       f"healed: still refused after {RECOVERY_ATTEMPTS} tries")]
                    yield ctx.finding(title=f"{ep.key} does not recover after {_title_dep(wired)} was {kind}",
                                      confidence=Confidence.firm, evidence=evidence, location=ctx.location(ep=ep),
                                      proof=proof_from(ex, status_in(ex.status)), url=ex.request.url)
                    break


async def _stuck_after(ctx: CheckContext, wired: Wired, ep: EntryPoint, welcome: list[Caller],
                       kind: str) -> tuple[Caller, Exchange] | None:
    with fault(wired, kind):
        for caller in welcome:
            await call(ctx, ep, caller)  # the app meets the failure with this caller's credentials
    for caller in welcome:
        ex = None
        for _ in range(RECOVERY_ATTEMPTS):
            ex = await call(ctx, ep, caller)
            if allowed(ex):
                break
        if ex is not None and ex.ok and not allowed(ex):
            return caller, ex
    return None


@check(id="resilience.retry-storm", threat="resilience.retry-storm", scope="target", needs=("dependencies",))
@stabilized
async def retry_storm(ctx: CheckContext) -> AsyncIterator[Finding]:
    """One request may not make the app call an erroring dependency more than MAX_ATTEMPTS times."""
    for wired, dep, eps in await _targets(ctx):
        for ep in eps:
            who = callers(ctx, wired, dep)
            with fault(wired, "errors"):
                for caller in who:
                    before = injections(wired)
                    ex = await call(ctx, ep, caller)
                    attempts = injections(wired) - before
                    if attempts > MAX_ATTEMPTS:
                        evidence = [*exchange_evidence(ex, f"one request as {caller.label}"),
                                    note("double's log", f"Bastion's {wired.kind} double answered {attempts} calls "
                                                         f"with an error during this one request (limit "
                                                         f"{MAX_ATTEMPTS})")]
                        yield ctx.finding(title=f"{ep.key} calls failing {_title_dep(wired)} {attempts} times "
                                                "per request", confidence=Confidence.confirmed, evidence=evidence,
                                          location=ctx.location(ep=ep), proof=proof_from(ex, status_in(ex.status)),
                                          url=ex.request.url)
                        break


@check(id="resilience.timeout", threat="resilience.timeout", scope="target", needs=("dependencies",))
@stabilized
async def timeout_honoured(ctx: CheckContext) -> AsyncIterator[Finding]:
    """With the dependency hung, the app must answer before Bastion lets the dependency reply (LATENCY_S)."""
    for wired, dep, eps in await _targets(ctx):
        if wired.kind not in NETWORK_KINDS:
            continue
        for ep in eps:
            who = callers(ctx, wired, dep)
            base = await _baseline(ctx, ep, who)
            welcome = sorted((c for c in who if allowed(base[c.label])), key=lambda c: not c.genuine)
            if not welcome:
                continue
            waited = await _waited_for_hung(ctx, wired, ep, welcome[0])
            if waited is not None:
                evidence = [*exchange_evidence(waited, f"as {welcome[0].label}, {_title_dep(wired)} hung"),
                            note("double's log", f"Bastion's {wired.kind} double held its replies; the app only "
                                                 f"answered after Bastion released them ({LATENCY_S:g} s later): it "
                                                 "has no timeout of its own")]
                yield ctx.finding(title=f"{ep.key} waits for hung {_title_dep(wired)} without a timeout",
                                  confidence=Confidence.firm, evidence=evidence, location=ctx.location(ep=ep),
                                  proof=proof_from(waited, status_in(waited.status)), url=waited.request.url)


async def _waited_for_hung(ctx: CheckContext, wired: Wired, ep: EntryPoint, caller: Caller) -> Exchange | None:
    """The answer when the app only answered after the latency fault ended; None when it gave up first."""
    handle = FaultInjector().latency(wired.double, HOLD_S)
    held_before = wired.double.fault_state.count("latency")
    # The fault ends after LATENCY_S whatever happens: an app without a timeout is released then.
    timer = asyncio.get_running_loop().call_later(LATENCY_S, handle.restore)
    try:
        ex = await call(ctx, ep, caller)
        answered_while_hung = handle.state.active is handle.fault
    finally:
        timer.cancel()
        handle.restore()
    reached = wired.double.fault_state.count("latency") > held_before
    if not ex.ok or not reached or answered_while_hung:
        return None
    return ex
