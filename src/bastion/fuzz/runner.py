"""Fuzz one entry point: an explicit edge-case sweep, then hypothesis generation and shrinking.

Hypothesis is synchronous, the engine is async: the search runs in a worker thread whose condition
sends each example through the check context on the engine's loop (`run_coroutine_threadsafe`), so the
scope guard, budgets, role credentials and sensor tagging apply to every fuzzed request. Outcomes are
cached per example: hypothesis replays examples while shrinking, the target sees each one once.

Budget: `budget` examples per entry point (half the explicit sweep, the rest generated), plus at most
SHRINK_REQUESTS to shrink a generated failure.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, find, settings
from hypothesis.errors import NoSuchExample

from bastion.engine.context import CheckContext
from bastion.errors import BudgetExhausted
from bastion.fuzz.contract import Operation
from bastion.fuzz.oracles import (
    StackSignature,
    has_lone_surrogate,
    is_crash,
    leaked_stack,
    sink_events,
    sql_breaks_out,
    without_surrogates,
)
from bastion.fuzz.shape import RequestShape
from bastion.fuzz.strategies import (
    Example,
    base_example,
    build_example_request,
    example_key,
    example_strategy,
    sweep_examples,
)
from bastion.payloads.corpus import render
from bastion.sensors import SensorEvent
from bastion.surface.model import EntryPoint
from bastion.target.exchange import Exchange

DEFAULT_FUZZ_BUDGET = 24
SHRINK_REQUESTS = 64
# Order in which a generated example's failures are pinned for shrinking (the most severe first).
KIND_ORDER = ("crash", "sink", "contract")
_DENIED = (401, 403)
# Requests at most spent per entry point to confirm that text reaching SQL breaks out of its literal.
SQL_CONFIRM_REQUESTS = 6


@dataclass
class Outcome:
    example: Example
    ex: Exchange
    failures: dict[str, str] = field(default_factory=dict)  # kind -> what went wrong
    events: list[SensorEvent] = field(default_factory=list)


@dataclass
class Failure:
    kind: str  # crash | sink | contract
    detail: str
    example: Example
    ex: Exchange
    # "sweep": an explicit edge case (one field away from a valid request); "shrunk": hypothesis'
    # minimal example.
    origin: str
    events: list[SensorEvent] = field(default_factory=list)
    reruns: list[Exchange] = field(default_factory=list)


@dataclass
class EntryReport:
    ep: EntryPoint
    role: str | None
    examples: int = 0
    failures: dict[str, Failure] = field(default_factory=dict)
    shape: RequestShape | None = None
    # (example, elapsed seconds) of every answered example, in send order: the latency oracle's samples.
    timings: list[tuple[Example, float]] = field(default_factory=list)


class EntryFuzzer:
    """Sends examples for one entry point as one role and records the first failure of each kind."""

    def __init__(self, ctx: CheckContext, ep: EntryPoint, shape: RequestShape, op: Operation | None,
                 role: str | None, sigs: list[StackSignature]) -> None:
        self.ctx, self.ep, self.shape, self.op, self.role, self.sigs = ctx, ep, shape, op, role, sigs
        self.cache: dict[str, Outcome] = {}
        self.report = EntryReport(ep, role, shape=shape)
        self.baseline_text: str | None = None  # the base request's response, for stack-trace comparison
        self.stopped: BudgetExhausted | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        # Field sets whose lone surrogates got a 4xx once replaced: the framework's own error handler failed.
        self.surrogate_verdicts: dict[frozenset[str], bool] = {}
        self.sql_probed: set[str] = set()  # fields already tried with the SQL breakout probes
        self.sql_requests = 0

    async def send(self, example: Example) -> Exchange:
        spec = build_example_request(self.ep, self.shape, example)
        return await self.ctx.send(spec.method, spec.path, as_role=self.role or "anonymous", **spec.kwargs())

    async def run(self, example: Example) -> Outcome:
        """The example's outcome (sent once; later calls read the cache)."""
        key = example_key(example)
        if key in self.cache:
            return self.cache[key]
        before = len(self.ctx.sensor_events(self.shape.canary)) if self.shape.canary else 0
        ex = await self.send(example)
        events = self.ctx.sensor_events(self.shape.canary)[before:] if self.shape.canary else []
        if self.baseline_text is None:
            self.baseline_text = ex.text
        out = Outcome(example, ex, events=events)
        if ex.ok:
            self.report.timings.append((example, ex.elapsed))
        self._judge(out)
        if "crash" in out.failures and await self._framework_surrogate_error(example):
            del out.failures["crash"]
        if "sink" in out.failures and not await self._sink_confirmed(out):
            del out.failures["sink"]
        self.cache[key] = out
        return out

    async def _framework_surrogate_error(self, example: Example) -> bool:
        """Whether a crash on lone surrogates is the framework's: with each such value replaced by a plain
        wrong-type value the request is refused (4xx), so only the validation error's encoding failed."""
        fields = frozenset(k for k, v in example.items() if has_lone_surrogate(v))
        if not fields:
            return False
        if fields not in self.surrogate_verdicts:
            plain = {k: (without_surrogates(v) if k in fields else v) for k, v in example.items()}
            ex = await self.send(plain)
            self.surrogate_verdicts[fields] = ex.ok and 400 <= ex.status < 500
        return self.surrogate_verdicts[fields]

    async def _sink_confirmed(self, out: Outcome) -> bool:
        """A shell or unpickler sink stands; fuzzed text in SQL must break out of its quoted literal (some
        tracers expand bound parameters into the statement as escaped literals): probe the fields it carries."""
        sinks = sink_events(out.events)
        if any(e.kind != "sql" for e in sinks):
            return True
        if "sink" in self.report.failures:
            return True  # already confirmed on this entry point
        canary = self.shape.canary
        reached = [k for k, v in out.example.items() if isinstance(v, str) and canary and canary in v
                   and k not in self.sql_probed and any(v in e.raw_detail for e in sinks)]
        for key in reached:
            self.sql_probed.add(key)
            for entry in self.ctx.payloads.get("sql-sensor"):
                if entry["context"] == "numeric" or self.sql_requests >= SQL_CONFIRM_REQUESTS:
                    continue
                if await self._sql_probe(out.example, key, entry, canary):
                    return True
        return False

    async def _sql_probe(self, example: Example, key: str, entry: dict[str, str], canary: str) -> bool:
        """Send the example with one field carrying a quote-breaking marker; record it as the sink if it broke out."""
        probe = {**example, key: render(entry["template"], v=example[key], c=canary)}
        before = len(self.ctx.sensor_events(canary))
        self.sql_requests += 1
        ex = await self.send(probe)
        events = [e for e in self.ctx.sensor_events(canary)[before:] if e.kind == "sql"]
        if not ex.ok or not sql_breaks_out(events, render(entry["marker"], c=canary), canary):
            return False
        detail = "sql sensor saw the fuzzed value's quotes as SQL syntax"
        self.report.failures["sink"] = Failure("sink", detail, probe, ex, "sweep", events)
        return True

    def _judge(self, out: Outcome) -> None:
        ex = out.ex
        if not ex.ok:
            return  # not sendable, or no answer: nothing to judge
        leaked = leaked_stack(ex, self.baseline_text or "", self.sigs)
        if is_crash(ex) or leaked:
            out.failures["crash"] = f"HTTP {ex.status}" + (f" with a {leaked}" if leaked else "")
        sinks = sink_events(out.events)
        if sinks:
            out.failures["sink"] = f"{sinks[0].kind} sensor saw the fuzzed value"
        if self.op is not None:
            violation = self.op.violation(ex)
            if violation:
                out.failures["contract"] = violation

    def _record(self, out: Outcome, origin: str) -> None:
        for kind, detail in out.failures.items():
            if kind not in self.report.failures:
                self.report.failures[kind] = Failure(kind, detail, out.example, out.ex, origin, out.events)

    async def sweep(self, limit: int) -> None:
        """Explicit edge cases, each one field (or the body's form) away from the base request."""
        for example in sweep_examples(self.shape)[:limit]:
            out = await self.run(example)
            self.report.examples += 1
            self._record(out, "sweep")

    async def search(self, max_examples: int, seed: int) -> None:
        """Hypothesis generation; a failure of a kind not seen yet is shrunk to a minimal example."""
        if max_examples <= 0:
            return
        self.loop = asyncio.get_running_loop()
        found = await asyncio.to_thread(self._find, max_examples, seed)
        if self.stopped is not None:
            raise self.stopped
        if found is not None:
            self._record_pinned(found)

    def _record_pinned(self, found: tuple[str, Example]) -> None:
        kind, example = found
        out = self.cache[example_key(example)]
        if kind not in self.report.failures:
            self.report.failures[kind] = Failure(kind, out.failures[kind], example, out.ex, "shrunk", out.events)

    def _find(self, max_examples: int, seed: int) -> tuple[str, Example] | None:
        pinned: list[str] = []
        generated = [0]
        shrinking = [0]

        def condition(example: Example) -> bool:
            key = example_key(example)
            if key not in self.cache:
                if self.stopped is not None:
                    return False
                counter = shrinking if pinned else generated
                if counter[0] >= (SHRINK_REQUESTS if pinned else max_examples):
                    return False  # over budget: not sent, so not a failure
                counter[0] += 1
            out = self._run_sync(example)
            if out is None:
                return False
            if pinned:
                return pinned[0] in out.failures
            new = [k for k in KIND_ORDER if k in out.failures and k not in self.report.failures]
            if new:
                pinned.append(new[0])
                return True
            return False

        config = settings(database=None, deadline=None, max_examples=max_examples, derandomize=False,
                          phases=[Phase.generate, Phase.shrink], verbosity=Verbosity.quiet,
                          suppress_health_check=list(HealthCheck))
        try:
            example = find(example_strategy(self.shape), condition, settings=config, random=random.Random(seed))
        except NoSuchExample:
            return None
        finally:
            self.report.examples += generated[0]
        return (pinned[0], example) if pinned else None

    def _run_sync(self, example: Example) -> Outcome | None:
        assert self.loop is not None
        try:
            return asyncio.run_coroutine_threadsafe(self.run(example), self.loop).result()
        except BudgetExhausted as exc:
            self.stopped = exc
            return None


def access_score(ex: Exchange) -> int:
    """0: served, 1: redirected or refused for the input, 2: refused for lack of credentials."""
    return 2 if ex.status in _DENIED or not ex.ok else (1 if ex.status >= 300 else 0)


async def choose_role(ctx: CheckContext, ep: EntryPoint, shape: RequestShape) -> tuple[str | None, int]:
    """Anonymous if the base request is served, else the role it works best for, with the access score."""
    spec = build_example_request(ep, shape, base_example(shape))
    score = access_score
    anon = await ctx.send(spec.method, spec.path, as_role="anonymous", **spec.kwargs())
    best, best_score = None, score(anon)
    for role in ctx.roles if best_score else ():
        ex = await ctx.send(spec.method, spec.path, as_role=role, **spec.kwargs())
        if score(ex) < best_score:
            best, best_score = role, score(ex)
            if not best_score:
                break
    return best, best_score


async def fuzz_entry_point(ctx: CheckContext, ep: EntryPoint, shape: RequestShape, op: Operation | None,
                           sigs: list[StackSignature], budget: int, role: str | None) -> EntryReport:
    """Sweep and search one entry point; the report holds the first failure of each kind."""
    fuzzer = EntryFuzzer(ctx, ep, shape, op, role, sigs)
    sweep_share = (budget + 1) // 2
    await fuzzer.sweep(sweep_share)
    await fuzzer.search(budget - fuzzer.report.examples, ctx.rng.getrandbits(64))
    return fuzzer.report


def describe(example: Example) -> dict[str, Any]:
    """An example as shown in evidence: field -> value (bytes and omitted fields spelled out)."""
    from bastion.fuzz.strategies import OMIT

    return {k: ("<omitted>" if v is OMIT else v) for k, v in example.items()}
