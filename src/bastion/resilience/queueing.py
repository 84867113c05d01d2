"""What the queue checks share: the declared queue dependency wired to Bastion's broker double, publishing
(signed like the producers when the model says they sign), running the consumer through its declared entry
point, and reading the consumer's effects."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from bastion.engine.context import CheckContext
from bastion.resilience.probing import Caller, allowed, call, entry_points, wired_doubles
from bastion.resilience.wiring import Wired
from bastion.surface.model import EntryPoint
from bastion.target.exchange import Exchange

# Consumer runs per probe: enough for a nacked message to use up the broker's deliveries and be dead-lettered.
EXTRA_RUNS = 1
# Messages the leftover sweep takes off the topic at most.
SWEEP_MAX = 100
PROBE_CONSUMER = "bastion-probe"


@dataclass
class QueueTarget:
    """A queue dependency ready for probing."""

    wired: Wired
    dep: Any
    topic: str
    consume: EntryPoint
    effect: EntryPoint | None
    caller: Caller

    @property
    def queue(self) -> Any:
        return self.wired.double

    @property
    def signing_key(self) -> str | None:
        return self.wired.raw.get("QUEUE_SIGNING_KEY") if self.dep.signing is not None else None


async def queue_targets(ctx: CheckContext) -> list[QueueTarget]:
    """Every wired queue with a topic and a consume entry point, and a caller the consumer runs for."""
    wired = wired_doubles(ctx)
    if wired is None:
        return []
    out = []
    for name in sorted(wired.deps):
        item = wired.deps[name]
        dep = ctx.config.dependencies[name]
        if item.kind != "queue" or not dep.topic or not dep.consume:
            continue
        consume = next(iter(entry_points(ctx, [dep.consume])), None)
        if consume is None or not ctx.may_write(consume.method, consume.path):
            continue
        effect = next(iter(entry_points(ctx, [dep.effect] if dep.effect else [])), None)
        caller = await _consumer_caller(ctx, consume)
        if caller is not None:
            out.append(QueueTarget(item, dep, dep.topic, consume, effect, caller))
    if not out:
        ctx.skip("no queue dependency with a double, a topic and a consume entry point Bastion may call")
    return out


async def _consumer_caller(ctx: CheckContext, consume: EntryPoint) -> Caller | None:
    """The first caller (anonymous, then roles) the consume entry point answers 2xx."""
    for caller in [Caller("anonymous"), *(Caller(f"role {n}", role=n) for n in sorted(ctx.roles))]:
        if allowed(await call(ctx, consume, caller)):
            return caller
    return None


def render_sample(value: Any, canary: str) -> Any:
    """The model's sample message with `{canary}` replaced in every string."""
    if isinstance(value, str):
        return value.replace("{canary}", canary)
    if isinstance(value, dict):
        return {k: render_sample(v, canary) for k, v in value.items()}
    if isinstance(value, list):
        return [render_sample(v, canary) for v in value]
    return value


def sample_body(qt: QueueTarget, canary: str) -> bytes | None:
    if qt.dep.sample is None:
        return None
    return json.dumps(render_sample(qt.dep.sample, canary), sort_keys=True).encode()


def signature(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(qt: QueueTarget, body: bytes, headers: dict[str, str] | None = None) -> dict[str, str]:
    """`headers` plus the producers' signature header when the model says they sign."""
    out = dict(headers or {})
    key = qt.signing_key
    if key:
        out[qt.dep.signing.header] = signature(key, body)
    return out


async def run_consumer(ctx: CheckContext, qt: QueueTarget, runs: int = 1) -> Exchange | None:
    """Call the consume entry point `runs` times; the last answer."""
    ex = None
    for _ in range(runs):
        ex = await call(ctx, qt.consume, qt.caller)
    return ex


async def effect_count(ctx: CheckContext, qt: QueueTarget, canary: str) -> tuple[int, Exchange] | None:
    """How often the consumer's effect listing shows `canary`; None without an effect entry point."""
    if qt.effect is None:
        return None
    ex = await call(ctx, qt.effect, qt.caller)
    return (ex.text.count(canary), ex) if allowed(ex) else None


def sweep(qt: QueueTarget, canaries: list[str]) -> set[str]:
    """Take our probe messages still on the topic off it; the canaries that were still there."""
    found: set[str] = set()
    for delivery in qt.queue.consume(qt.topic, consumer=PROBE_CONSUMER, count=SWEEP_MAX):
        mine = [c for c in canaries if c.encode() in delivery.body]
        found.update(mine)
        if mine:
            qt.queue.ack(delivery)
        else:
            qt.queue.nack(delivery, reason="not Bastion's: handed back")
    return found


def dead_lettered(qt: QueueTarget, canary: str) -> list[Any]:
    return [d for d in qt.queue.dead_letters(qt.topic) if canary.encode() in d.message.body]
