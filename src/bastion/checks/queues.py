"""Queues and inter-service calls: unsafe deserialization in consumers, poison messages lost instead of
dead-lettered, dead letters without their trace id, replayed and unsigned messages processed, and service
tokens accepted with the wrong audience, expired or unsigned.

Bastion publishes to the broker double the target's consumer reads (`dependencies:` with `kind: queue`,
`double: true`, `topic`, `consume`, and for effects `effect` and `sample`; docs/resilience.md), runs the
consumer through its `consume` entry point and judges by what it can observe: the grey-box sensors, the
broker's dead-letter queue and the consumer's declared effect listing. Service tokens come from the IdP
double (`kind: oidc` with `audience` and `protects`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import jwt

from bastion.checks.registry import check
from bastion.doubles.oidc import OIDCProvider
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, note, proof_from, status_in
from bastion.findings.model import Confidence, Finding
from bastion.identity.jwt import forge
from bastion.payloads.corpus import render
from bastion.resilience.probing import (
    PROBE_SUBJECT,
    Caller,
    allowed,
    call,
    denied,
    dependency_config,
    entry_points,
    shows_content_of,
    stabilized,
    wired_doubles,
)
from bastion.resilience.queueing import (
    EXTRA_RUNS,
    QueueTarget,
    dead_lettered,
    effect_count,
    queue_targets,
    run_consumer,
    sample_body,
    signature,
    signed_headers,
    sweep,
)
from bastion.surface.model import EntryPoint
from bastion.target.exchange import Exchange

# Content types a consumer may pick an object loader by; each probe document is published under each.
CONTENT_TYPES = {
    "pickle": ("application/python-pickle", "application/x-python-pickle", "application/octet-stream"),
    "yaml": ("application/x-yaml", "application/yaml", "text/yaml"),
    "jsonpickle": ("application/json",),
}
COMPILE_FILENAME = "<bastion>"
# Messages no consumer can process: bytes that are no text, and a JSON document of no known shape.
POISON: tuple[tuple[str, Callable[[str], bytes]], ...] = (
    ("an undecodable body", lambda c: b"\xff\xfe\x00bastion-poison " + c.encode() + b" {"),
    ("a JSON document of the wrong shape", lambda c: json.dumps({"bastion_poison": c}).encode()),
)
OTHER_AUDIENCE = "bastion-other-service"
WRONG_KEY = "bastion-not-the-producers-key"


@check(id="queues.unsafe-deserialization", threat="queues.unsafe-deserialization", scope="target", needs=("queue",))
@stabilized
async def unsafe_deserialization(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Publish object-loader documents (pickle, YAML, jsonpickle) calling compile(canary); the sensor decides."""
    if ctx.sensors is None:
        ctx.skip("needs the grey-box sensors (in-process targets)")
        return
    for qt in await queue_targets(ctx):
        published: list[tuple[str, str, str]] = []
        for doc in ctx.payloads.get("deserialization-documents"):
            for content_type in CONTENT_TYPES.get(doc["format"], ()):
                canary = ctx.canary()
                body = render(doc["template"], c=canary).encode("utf-8")
                qt.queue.publish(qt.topic, body, headers=signed_headers(qt, body, {"content-type": content_type}))
                published.append((doc["format"], content_type, canary))
        ex = await run_consumer(ctx, qt)
        sweep(qt, [c for _, _, c in published])
        for fmt, content_type, canary in published:
            if any(e.kind == "compile" and e.raw_detail == f"{COMPILE_FILENAME}: {canary}"
                   for e in ctx.sensor_events(canary)):
                yield _deserialization_finding(ctx, qt, fmt, content_type, canary, ex)
                break


def _deserialization_finding(ctx: CheckContext, qt: QueueTarget, fmt: str, content_type: str, canary: str,
                             ex: Exchange | None) -> Finding:
    evidence = [note("published", f"a {fmt} document (content-type {content_type}) on topic '{qt.topic}' whose "
                                  f"loading calls builtins.compile({canary!r}, {COMPILE_FILENAME!r}, 'eval')"),
                note("sensor proof", f"running the consumer ({qt.consume.key}), the sensors saw that compile call "
                                     "with the canary: the consumer rebuilt objects from the message (the compiled "
                                     "code was never run)")]
    if ex is not None:
        evidence = [*evidence, *exchange_evidence(ex, "the consumer run")]
    return ctx.finding(title=f"Queue consumer of '{qt.topic}' loads {fmt} messages ({content_type})",
                       confidence=Confidence.confirmed, evidence=evidence, location=ctx.location(ep=qt.consume),
                       proof=proof_from(ex, status_in(ex.status)) if ex is not None else None)


async def _publish_poison(ctx: CheckContext, qt: QueueTarget) -> list[tuple[str, str, str]]:
    """Publish every poison message with a trace id of ours, run the consumer; (label, canary, trace id)."""
    sent = []
    for label, make in POISON:
        canary = ctx.canary()
        trace = f"bastion-{canary}"
        body = make(canary)
        qt.queue.publish(qt.topic, body, headers=signed_headers(qt, body), trace_id=trace)
        sent.append((label, canary, trace))
    # A nacked message comes back until the broker's delivery limit dead-letters it.
    await run_consumer(ctx, qt, runs=qt.queue.max_deliveries + EXTRA_RUNS)
    return sent


@check(id="queues.poison-lost", threat="queues.poison-lost", scope="target", needs=("queue",))
@stabilized
async def poison_lost(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A message the consumer cannot process must end in the dead-letter queue, not vanish."""
    for qt in await queue_targets(ctx):
        sent = await _publish_poison(ctx, qt)
        queued = sweep(qt, [c for _, c, _ in sent])
        for label, canary, _trace in sent:
            effect = await effect_count(ctx, qt, canary)
            if effect is None and label != POISON[0][0]:
                continue  # without an effect listing only bytes no consumer can read are surely unprocessed
            if canary in queued or dead_lettered(qt, canary) or (effect is not None and effect[0] > 0):
                continue
            evidence = [note("published", f"{label} on topic '{qt.topic}' (canary {canary})"),
                        note("broker double", f"after {qt.queue.max_deliveries + EXTRA_RUNS} consumer runs "
                                              f"({qt.consume.key}) the message is neither queued, nor in the "
                                              "dead-letter queue, nor among the consumer's effects: it was "
                                              "acknowledged and dropped")]
            yield ctx.finding(title=f"Consumer of '{qt.topic}' drops {label} instead of dead-lettering it",
                              confidence=Confidence.confirmed, evidence=evidence, location=ctx.location(ep=qt.consume))
            break


@check(id="queues.dlq-trace", threat="queues.dlq-trace", scope="target", needs=("queue",))
@stabilized
async def dlq_trace(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A dead-lettered message must carry the trace id it was published with."""
    for qt in await queue_targets(ctx):
        sent = await _publish_poison(ctx, qt)
        sweep(qt, [c for _, c, _ in sent])
        for label, canary, trace in sent:
            lost_trace = [d for d in dead_lettered(qt, canary) if d.message.trace_id != trace]
            if not lost_trace:
                continue
            dead = lost_trace[0]
            trace_state = "with another trace id" if dead.message.trace_id else "without a trace id"
            evidence = [note("published", f"{label} on topic '{qt.topic}' with trace id {trace}"),
                        note("dead letter", f"dead-lettered after {dead.deliveries} deliveries ({dead.reason}) "
                                            f"{trace_state}; its headers: {', '.join(sorted(dead.message.headers))}")]
            yield ctx.finding(title=f"Dead letters of '{qt.topic}' lose the trace id they were published with",
                              confidence=Confidence.confirmed, evidence=evidence, location=ctx.location(ep=qt.consume))
            break


async def _processed(ctx: CheckContext, qt: QueueTarget, body: bytes, headers: dict[str, str], canary: str,
                     copies: int = 1) -> tuple[int, Exchange] | None:
    for _ in range(copies):
        qt.queue.publish(qt.topic, body, headers=headers, trace_id=f"bastion-{canary}")
    await run_consumer(ctx, qt, runs=1 + EXTRA_RUNS)
    sweep(qt, [canary])
    return await effect_count(ctx, qt, canary)


@check(id="queues.replay-accepted", threat="queues.replay-accepted", scope="target", needs=("queue",))
@stabilized
async def replay_accepted(ctx: CheckContext) -> AsyncIterator[Finding]:
    """The model's sample message, signed and published twice as is, must have its effect once."""
    for qt in await queue_targets(ctx):
        canary = ctx.canary()
        body = sample_body(qt, canary)
        if body is None or qt.effect is None:
            ctx.skip("the queue dependency declares no sample message or effect entry point")
            continue
        seen = await _processed(ctx, qt, body, signed_headers(qt, body), canary, copies=2)
        if seen is None or seen[0] < 2:
            continue
        count, ex = seen
        evidence = [note("published", f"the same {'signed ' if qt.signing_key else ''}sample message twice on "
                                      f"topic '{qt.topic}' (canary {canary})"),
                    *exchange_evidence(ex, f"the consumer's effects list it {count} times", marker=canary)]
        yield ctx.finding(title=f"Consumer of '{qt.topic}' processes a replayed message again",
                          confidence=Confidence.confirmed, evidence=evidence, location=ctx.location(ep=qt.consume),
                          proof=proof_from(ex, status_in(ex.status)), url=ex.request.url)


@check(id="queues.unsigned-accepted", threat="queues.unsigned-accepted", scope="target", needs=("queue",))
@stabilized
async def unsigned_accepted(ctx: CheckContext) -> AsyncIterator[Finding]:
    """With signing declared, the sample message without a signature or with a wrong one must have no effect."""
    for qt in await queue_targets(ctx):
        if qt.signing_key is None or qt.effect is None or qt.dep.sample is None:
            ctx.skip("the queue dependency declares no signing, sample message or effect entry point")
            continue
        canary = ctx.canary()
        body = sample_body(qt, canary)
        assert body is not None
        control = await _processed(ctx, qt, body, signed_headers(qt, body), canary)
        if control is None or control[0] == 0:
            continue  # the correctly signed sample has no effect: nothing to compare with
        header = qt.dep.signing.header
        accepted = []
        last: Exchange | None = None
        for label in ("without a signature", "signed with another key"):
            canary = ctx.canary()
            body = sample_body(qt, canary)
            assert body is not None
            headers = {header: signature(WRONG_KEY, body)} if label == "signed with another key" else {}
            seen = await _processed(ctx, qt, body, headers, canary)
            if seen is not None and seen[0] > 0:
                accepted.append(label)
                last = seen[1]
        if accepted and last is not None:
            evidence = [note("published", f"the sample message on topic '{qt.topic}' "
                                          f"{' and '.join(accepted)}"),
                        *exchange_evidence(last, "the consumer's effects list it")]
            yield ctx.finding(title=f"Consumer of '{qt.topic}' processes messages {' and '.join(accepted)}",
                              confidence=Confidence.confirmed, evidence=evidence,
                              location=ctx.location(ep=qt.consume), proof=proof_from(last, status_in(last.status)),
                              url=last.request.url)


@check(id="queues.service-token", threat="queues.service-token", scope="target", needs=("oidc",))
@stabilized
async def service_token(ctx: CheckContext) -> AsyncIterator[Finding]:
    """IdP tokens for another audience, expired, or unsigned must not open a service-to-service entry point."""
    wired = wired_doubles(ctx)
    if wired is None:
        return
    for name in sorted(wired.deps):
        item = wired.deps[name]
        dep = dependency_config(ctx, name)
        if item.kind != "oidc" or not dep.audience:
            continue
        for ep in entry_points(ctx, list(dep.protects)):
            finding = await _token_probe(ctx, item.double, dep.audience, ep)
            if finding is not None:
                yield finding


async def _token_probe(ctx: CheckContext, idp: OIDCProvider, audience: str, ep: EntryPoint) -> Finding | None:
    valid = idp.issue(PROBE_SUBJECT, audience=audience)
    good = await call(ctx, ep, _bearer("a token for this audience", valid))
    anonymous = await call(ctx, ep, Caller("anonymous"))
    if not allowed(good) or not denied(anonymous):
        return None  # the entry point does not take IdP tokens, or takes anyone
    claims = jwt.decode(valid, options={"verify_signature": False})
    variants = {
        f"issued for another audience ({OTHER_AUDIENCE})": idp.issue(
            PROBE_SUBJECT, audience=OTHER_AUDIENCE),
        "expired": idp.expire(valid),
        "unsigned (alg none)": forge(claims, alg="none"),
    }
    accepted: list[tuple[str, Exchange]] = []
    for label, token in variants.items():
        ex = await call(ctx, ep, _bearer(label, token))
        if shows_content_of(ex, good):
            accepted.append((label, ex))
    if not accepted:
        return None
    labels = ", ".join(label for label, _ in accepted)
    ex = accepted[0][1]
    evidence = [*exchange_evidence(anonymous, "without a token: denied"),
                *exchange_evidence(ex, f"with a token {accepted[0][0]}: allowed"),
                note("tokens", f"the IdP double issued the tokens; accepted: {labels}")]
    return ctx.finding(title=f"{ep.key} accepts service tokens {labels}",
                       confidence=Confidence.confirmed, evidence=evidence,
                       location=ctx.location(ep=ep),
                       proof=proof_from(ex, status_in(ex.status)), url=ex.request.url)


def _bearer(label: str, token: str) -> Caller:
    return Caller(label, headers={"Authorization": f"Bearer {token}"})
