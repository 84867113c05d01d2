"""What the resilience checks share: the callers to try, the entry points a dependency protects, switching a
fault on a wired double, and telling a denial, an answer with protected content, and a leak apart."""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bastion.doubles.faults import FAULT_MESSAGE, ActiveFault, FaultInjector
from bastion.engine.context import CheckContext
from bastion.findings.model import Finding
from bastion.fuzz.oracles import StackSignature, leaked_stack
from bastion.identity.jwt import forge
from bastion.resilience.wiring import Wired, WiredDoubles, doubles_for
from bastion.surface.model import EntryPoint
from bastion.surface.requests import build_request
from bastion.target.exchange import Exchange

# Faults a dependency gets in turn while its entry points are probed (latency has its own check).
FAULTS = ("outage", "errors")
# Statuses that deny a caller; a redirect (to a login page) denies too.
DENIALS = frozenset({401, 403})
# The subject of the tokens Bastion issues at the IdP double for its probes.
PROBE_SUBJECT = "bastion-probe"
# A response under a fault "shows protected content" when it is this close to the allowed caller's answer.
SIMILARITY = 0.6
# Exception names and phrases of client libraries that, in a response, describe the failed dependency.
_CLIENT_ERRORS = re.compile(
    r"ConnectionRefusedError|ConnectionResetError|ConnectError|ConnectTimeout|ReadTimeout|RemoteDisconnected|"
    r"NewConnectionError|MaxRetryError|Max retries exceeded|QueueUnavailable|InjectedError|"
    r"Connection refused|Connection reset by peer|\[Errno -?\d+\]|Name or service not known")


@dataclass(frozen=True)
class Caller:
    """Who a probe is sent as: a role, or anonymous with extra headers (a token from the IdP double)."""

    label: str
    role: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Whether this caller holds a credential the dependency itself vouches for (it must work again after).
    genuine: bool = False


def wired_doubles(ctx: CheckContext) -> WiredDoubles | None:
    """The scan's doubles, when faults may be switched on this target; records why not otherwise."""
    wired = doubles_for(ctx.target)
    if wired is None:
        ctx.skip("no dependency wired to a Bastion double (dependencies: ... double: true)")
        return None
    cfg = ctx.config
    if not ctx.target.in_process and not (cfg is not None and cfg.target.allow_destructive):
        ctx.skip("URL target without allow_destructive: true")
        return None
    return wired


def dependency_config(ctx: CheckContext, name: str) -> Any:
    return ctx.config.dependencies[name] if ctx.config is not None else None


def entry_points(ctx: CheckContext, specs: list[str]) -> list[EntryPoint]:
    """The surface's entry points named by 'METHOD /path' specs, in the given order."""
    by_key = {ep.key: ep for ep in ctx.surface.entry_points}
    return [by_key[s] for s in specs if s in by_key]


def protected_entries(ctx: CheckContext, dep: Any) -> list[EntryPoint]:
    """What depends on the dependency: its `protects` list, else the queue consumer's trigger."""
    specs = list(dep.protects) or ([dep.consume] if dep.consume else [])
    return entry_points(ctx, specs)


def idp_tokens(ctx: CheckContext, wired: Wired, dep: Any) -> dict[str, str]:
    """Tokens for probing an IdP-protected entry point: one the IdP vouches for, a forged twin, a malformed one.

    Each is new (its own id): an app may remember tokens, and one probe must not decide the next.
    """
    idp = wired.double
    audience = dep.audience or None
    valid = idp.issue(PROBE_SUBJECT, audience=audience)
    unique = ctx.canary()
    claims = {"iss": idp.issuer, "sub": PROBE_SUBJECT, "aud": audience or idp.issuer, "scope": "openid",
              "jti": unique}
    return {"valid": valid, "forged": forge(claims, alg="none"), "garbage": f"bastion-not-a-token-{unique}"}


def callers(ctx: CheckContext, wired: Wired, dep: Any) -> list[Caller]:
    """Anonymous, every logged-in role, and for an IdP a genuine, a forged and a garbage bearer token."""
    out = [Caller("anonymous")]
    out += [Caller(f"role {name}", role=name) for name in sorted(ctx.roles)]
    if wired.kind == "oidc":
        tokens = idp_tokens(ctx, wired, dep)
        out += [Caller("a token the IdP issued", headers={"Authorization": f"Bearer {tokens['valid']}"},
                       genuine=True),
                Caller("a forged unsigned token", headers={"Authorization": f"Bearer {tokens['forged']}"}),
                Caller("a malformed token", headers={"Authorization": f"Bearer {tokens['garbage']}"})]
    return out


async def call(ctx: CheckContext, ep: EntryPoint, caller: Caller) -> Exchange:
    spec = build_request(ep)
    kwargs = spec.kwargs()
    if caller.headers:
        kwargs["headers"] = {**(kwargs.get("headers") or {}), **caller.headers}
    return await ctx.send(spec.method, spec.path, as_role=caller.role or "anonymous", **kwargs)


def denied(ex: Exchange) -> bool:
    return ex.ok and (ex.status in DENIALS or 300 <= ex.status < 400)


def allowed(ex: Exchange) -> bool:
    return ex.ok and 200 <= ex.status < 300


def _json_keys(ex: Exchange) -> frozenset[str] | None:
    try:
        doc = json.loads(ex.text)
    except ValueError:
        return None
    return frozenset(doc) if isinstance(doc, dict) else None


def shows_content_of(ex: Exchange, reference: Exchange) -> bool:
    """A 2xx whose body looks like the allowed caller's: same JSON keys, or similar text."""
    if not allowed(ex):
        return False
    keys, ref_keys = _json_keys(ex), _json_keys(reference)
    if keys is not None and ref_keys is not None:
        return bool(keys) and keys == ref_keys
    return difflib.SequenceMatcher(None, ex.text[:4000], reference.text[:4000]).quick_ratio() >= SIMILARITY


def leak_in(ex: Exchange, baseline: Exchange, wired: Wired, sigs: list[StackSignature]) -> str | None:
    """What a response under a fault gives away about the dependency (absent from the healthy baseline)."""
    text, before = ex.text, baseline.text
    for address in wired.addresses:
        if address and address in text and address not in before:
            return f"the dependency's address {address}"
    if FAULT_MESSAGE in text:
        return f"the dependency's own error text ({FAULT_MESSAGE!r})"
    stack = leaked_stack(ex, before, sigs)
    if stack is not None:
        return f"a {stack}"
    match = _CLIENT_ERRORS.search(text)
    if match is not None and not _CLIENT_ERRORS.search(before):
        return f"the client library's error ({match.group(0)!r})"
    return None


def stack_signatures(ctx: CheckContext) -> list[StackSignature]:
    return [StackSignature(s["name"], s["regex"]) for s in ctx.payloads.get("config_stack_signatures")]


@contextmanager
def fault(wired: Wired, kind: str, injector: FaultInjector | None = None) -> Iterator[ActiveFault]:
    """Switch `kind` (outage, errors, reset, latency) on the double while the block runs."""
    injector = injector or FaultInjector()
    switch = {"outage": injector.outage, "errors": injector.errors, "reset": injector.reset}
    handle = switch[kind](wired.double)
    try:
        yield handle
    finally:
        handle.restore()


def injections(wired: Wired) -> int:
    """How many injected faults hit the double's clients so far (each one a request or connection)."""
    return int(wired.double.fault_state.count())


def fault_label(kind: str) -> str:
    return {"outage": "down (connections refused)", "errors": "answering with errors (HTTP 503)",
            "reset": "resetting connections", "latency": "hanging (replies held back)"}.get(kind, kind)


def stable(finding: Finding, wired: WiredDoubles | None) -> Finding:
    """The finding with each double's address (an ephemeral port) named instead: equal runs, equal findings."""
    if wired is None:
        return finding

    def clean(text: str) -> str:
        for item in wired.deps.values():
            for address in sorted(item.addresses, key=len, reverse=True):
                text = text.replace(address, f"<{item.name} double>")
        return text

    evidence = [e.model_copy(update={"summary": clean(e.summary), "content": clean(e.content)})
                for e in finding.evidence]
    return finding.model_copy(update={"title": clean(finding.title), "evidence": evidence})


def stabilized(check: Callable[[CheckContext], AsyncIterator[Finding]]) -> Callable[[CheckContext],
                                                                                  AsyncIterator[Finding]]:
    """Apply `stable` to every finding of a check (put it under `@check`)."""

    @functools.wraps(check)
    async def wrapper(ctx: CheckContext) -> AsyncIterator[Finding]:
        async for finding in check(ctx):
            yield stable(finding, doubles_for(ctx.target))

    return wrapper
