"""Property-based fuzzing: crashes, contract violations and sensor sinks per entry point.

The three checks share one fuzzing pass per entry point and run (the first of them to reach an entry
point runs it, the others read the result): fuzzing is the expensive part, the oracles are cheap.
Budget: `--fuzz-budget N` examples per entry point (see bastion/fuzz/runner.py for what else is sent).
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.engine.writes import READ_ONLY_METHODS
from bastion.findings.evidence import body_matches, exchange_evidence, note, proof_from, status_in
from bastion.findings.model import Confidence, Evidence, Finding, Reproduction
from bastion.findings.reproduce import curl_command
from bastion.fuzz.contract import document_candidates, find_operation, load_local, parse_served
from bastion.fuzz.latency import Verdict, retime, suspects
from bastion.fuzz.oracles import StackSignature
from bastion.fuzz.runner import EntryReport, Failure, access_score, choose_role, describe, fuzz_entry_point
from bastion.fuzz.shape import shape_from_inputs, with_json_schema
from bastion.fuzz.stateful import (
    ChainFailure,
    ResourceReport,
    chain_curl,
    chain_pytest,
    describe_chain,
    discover_resources,
    failing_operation,
    flaw_signs,
    fuzz_resource,
)
from bastion.fuzz.strategies import base_example, build_example_request, example_key
from bastion.surface.openapi import OpenAPIDocument
from bastion.target.client import ProbeClient


@dataclass
class _FuzzRun:
    """One scan's fuzzing results, shared by the fuzz checks (keyed by the scan's client)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    docs: list[OpenAPIDocument] | None = None
    reports: dict[str, EntryReport | str] = field(default_factory=dict)  # ep key -> report or skip reason


_RUNS: weakref.WeakKeyDictionary[ProbeClient, _FuzzRun] = weakref.WeakKeyDictionary()


async def _documents(ctx: CheckContext) -> list[OpenAPIDocument]:
    files, served = document_candidates(ctx.surface)
    docs = [d for d in (load_local(f) for f in files) if d is not None]
    for path in served:
        doc = parse_served(await ctx.send("GET", path, as_role="anonymous"))
        if doc is not None:
            docs.append(doc)
    return docs


async def entry_report(ctx: CheckContext) -> EntryReport | str:
    """The fuzzing report for the unit's entry point (run once per scan), or why it was not fuzzed."""
    assert ctx.ep is not None
    if ctx.fuzz_budget <= 0:
        return "fuzzing disabled (--fuzz-budget 0)"
    run = _RUNS.setdefault(ctx.client, _FuzzRun())
    async with run.lock:  # one entry point at a time: resets and sensor attribution stay exact
        if ctx.ep.key not in run.reports:
            if run.docs is None:
                run.docs = await _documents(ctx)
            run.reports[ctx.ep.key] = await _fuzz(ctx, run.docs)
    return run.reports[ctx.ep.key]


async def _fuzz(ctx: CheckContext, docs: list[OpenAPIDocument]) -> EntryReport | str:
    ep = ctx.ep
    assert ep is not None
    writes = ep.method not in READ_ONLY_METHODS
    if writes and not ctx.may_write(ep.method, ep.path):
        return "writes not allowed"
    op = find_operation(docs, ep)
    shape = shape_from_inputs(ep)
    body = op.request_body() if op is not None else None
    if body is not None:
        shape = with_json_schema(shape, body)
    shape.canary = ctx.canary()
    sigs = [StackSignature(s["name"], s["regex"]) for s in ctx.payloads.get("config_stack_signatures")]
    role, score = await choose_role(ctx, ep, shape)
    try:
        report = await fuzz_entry_point(ctx, ep, shape, op, sigs, ctx.fuzz_budget, role)
        for failure in report.failures.values():
            await _confirm(ctx, report, failure, shape_request=(ep, shape))
    finally:
        if writes or (role is not None and await _lost_access(ctx, ep, shape, role, score)):
            await ctx.reset()
    return report


async def _lost_access(ctx: CheckContext, ep: Any, shape: Any, role: str, score: int) -> bool:
    """Whether fuzzing ended the role's session (a logout route, a lockout): its base request fares worse."""
    spec = build_example_request(ep, shape, base_example(shape))
    return access_score(await ctx.send(spec.method, spec.path, as_role=role, **spec.kwargs())) > score


async def _confirm(ctx: CheckContext, report: EntryReport, failure: Failure, shape_request: Any) -> None:
    """Send a crash's or contract violation's minimal example once more: it must fail the same way."""
    if failure.kind not in ("crash", "contract"):
        return
    ep, shape = shape_request
    spec = build_example_request(ep, shape, failure.example)
    again = await ctx.send(spec.method, spec.path, as_role=report.role or "anonymous", **spec.kwargs())
    if again.status == failure.ex.status:
        failure.reruns.append(again)


def _example_text(report: EntryReport, failure: Failure) -> str:
    return json.dumps(describe(failure.example), sort_keys=True, default=repr, ensure_ascii=True)[:2000]


def _changed_fields(failure: Failure, report: EntryReport) -> str:
    """What the minimal example sets, in a few words (the fields besides the body mode)."""
    items = [f"{k}={json.dumps(v, default=repr, ensure_ascii=True)[:60]}" for k, v in describe(failure.example).items()
             if k != "~mode"]
    mode = failure.example.get("~mode", "normal")
    text = ", ".join(items[:4]) + (" …" if len(items) > 4 else "")
    return (f"{mode.replace('_', ' ')} body; " if mode != "normal" else "") + (text or "no fields")


def _evidence(report: EntryReport, failure: Failure, summary: str) -> list[Evidence]:
    origin = {"sweep": "explicit edge case (one field away from a valid request)",
              "shrunk": "hypothesis' shrunk minimal example"}[failure.origin]
    evidence = [*exchange_evidence(failure.ex, summary),
                note(f"minimal example ({origin}), as {report.role or 'anonymous'}", _example_text(report, failure))]
    if failure.reruns:
        evidence.append(note("reproduced: the same request failed the same way again",
                             f"HTTP {failure.reruns[0].status}"))
    return evidence


def _finding(ctx: CheckContext, report: EntryReport, failure: Failure, title: str,
             confidence: Confidence) -> Finding:
    ex = failure.ex
    if failure.kind == "crash":
        conditions = [status_in(ex.status)] if ex.status >= 500 else []
        leaked = next((s for s in ctx.payloads.get("config_stack_signatures")
                       if s["name"] in failure.detail), None)
        if leaked is not None:
            conditions.append(body_matches(leaked["regex"]))
        proof = proof_from(ex, *conditions)
    elif failure.kind == "contract":
        proof = proof_from(ex, status_in(ex.status))
    else:
        proof = None  # a sensor event: the HTTP response alone does not show it
    found = ctx.finding(title=title, confidence=confidence, evidence=_evidence(report, failure, failure.detail),
                        proof=proof, location=ctx.location(url=ex.request.url))
    if found.role is None and report.role is not None:
        found = found.model_copy(update={"role": report.role})
    if proof is None:
        found = found.model_copy(update={"reproduction": Reproduction(curl=curl_command(proof_from(ex), ctx.target))})
    return found


async def _failure(ctx: CheckContext, kind: str) -> tuple[EntryReport, Failure] | None:
    report = await entry_report(ctx)
    if isinstance(report, str):
        ctx.skip(report)
        return None
    failure = report.failures.get(kind)
    return (report, failure) if failure is not None else None


@check(id="fuzz.crash", threat="fuzz.crash", scope="entry", cost=0.1, shard="family")
async def fuzz_crash(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A fuzzed example (edge case or shrunk hypothesis example) answered with a 5xx or a stack trace."""
    got = await _failure(ctx, "crash")
    if got is None:
        return
    report, failure = got
    confidence = Confidence.confirmed if failure.reruns else Confidence.firm
    yield _finding(ctx, report, failure, f"Crash ({failure.detail}) on {_changed_fields(failure, report)}",
                   confidence)


@check(id="fuzz.contract", threat="fuzz.contract", scope="entry", cost=16.0, shard="family")
async def fuzz_contract(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A fuzzed example answered outside the OpenAPI contract (undeclared success status, body off-schema)."""
    got = await _failure(ctx, "contract")
    if got is None:
        return
    report, failure = got
    confidence = Confidence.confirmed if failure.reruns else Confidence.firm
    yield _finding(ctx, report, failure, f"Contract violation: {failure.detail}", confidence)


@check(id="fuzz.sink", threat="fuzz.sink", scope="entry", cost=0.1, shard="family")
async def fuzz_sink(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A fuzzed value (carrying the run's canary) seen by the sensors inside SQL, a command, code or pickle."""
    got = await _failure(ctx, "sink")
    if got is None:
        return
    report, failure = got
    kind = failure.events[0].kind if failure.events else "sensor"
    yield _finding(ctx, report, failure, f"Fuzzed value reached a {kind} sink as text", Confidence.confirmed)


# --- latency outliers (bastion/fuzz/latency.py) --------------------------------------------------


@check(id="fuzz.latency", threat="fuzz.latency", scope="entry", cost=0.1, shard="family")
async def fuzz_latency(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A fuzzed example that is slow every time it is re-sent while the valid request stays fast."""
    report = await entry_report(ctx)
    if isinstance(report, str):
        ctx.skip(report)
        return
    shape = report.shape
    candidates = suspects(report.timings) if shape is not None else []
    if shape is None or not candidates:
        return
    ep = report.ep
    base = base_example(shape)
    prior = [t for e, t in report.timings if example_key(e) == example_key(base)]

    async def send(example: dict[str, Any]) -> Any:
        spec = build_example_request(ep, shape, example)
        return await ctx.send(spec.method, spec.path, as_role=report.role or "anonymous", **spec.kwargs())

    verdict = None
    async with _RUNS.setdefault(ctx.client, _FuzzRun()).lock:  # alone on the target: timings stay clean
        try:
            for example, _ in candidates:
                if example_key(example) != example_key(base):
                    verdict = await retime(send, example, base, prior)
                    if verdict is not None:
                        break
        finally:
            if ep.method not in READ_ONLY_METHODS:
                await ctx.reset()
    if verdict is not None:
        yield _latency_finding(ctx, report, verdict)


def _latency_finding(ctx: CheckContext, report: EntryReport, verdict: Verdict[dict[str, Any]]) -> Finding:
    slowest = max(verdict.exchanges, key=lambda ex: ex.elapsed)
    times = ", ".join(f"{t:.2f}s" for t in verdict.suspect_s)
    summary = (f"re-sent {len(verdict.suspect_s)} times: {times}; the valid request interleaved: median "
               f"{verdict.baseline_median * 1000:.0f} ms (threshold {verdict.threshold:.2f}s)")
    example = json.dumps(describe(verdict.example), sort_keys=True, default=repr, ensure_ascii=True)[:2000]
    evidence = [*exchange_evidence(slowest, summary),
                note(f"slow example, as {report.role or 'anonymous'}", example), note("timings", summary)]
    found = ctx.finding(title=f"Input makes the handler slow ({min(verdict.suspect_s):.1f}s or more vs "
                              f"{verdict.baseline_median * 1000:.0f} ms for a valid request)",
                        confidence=Confidence.firm, evidence=evidence, location=ctx.location(url=slowest.request.url))
    return found.model_copy(update={"role": report.role,
                                    "reproduction": Reproduction(curl=curl_command(proof_from(slowest), ctx.target))})


# --- stateful sequences (bastion/fuzz/stateful.py) ----------------------------------------------


@dataclass
class _StatefulRun:
    """One scan's stateful results, shared by the fuzz.state* checks (the first to run computes them)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    reports: list[ResourceReport] | None = None


_STATEFUL: weakref.WeakKeyDictionary[ProbeClient, _StatefulRun] = weakref.WeakKeyDictionary()


async def stateful_reports(ctx: CheckContext) -> list[ResourceReport] | str:
    """The chains' results per resource (run once per scan), or why there are none."""
    if ctx.fuzz_budget <= 0:
        return "fuzzing disabled (--fuzz-budget 0)"
    run = _STATEFUL.setdefault(ctx.client, _StatefulRun())
    async with run.lock:
        if run.reports is None:
            fuzz_run = _RUNS.setdefault(ctx.client, _FuzzRun())
            async with fuzz_run.lock:
                if fuzz_run.docs is None:
                    fuzz_run.docs = await _documents(ctx)
            resources = discover_resources(fuzz_run.docs or [], ctx.surface)
            sigs = [StackSignature(s["name"], s["regex"]) for s in ctx.payloads.get("config_stack_signatures")]
            reports: list[ResourceReport] = []
            try:
                for res in resources:
                    reports.append(await fuzz_resource(ctx, res, ctx.fuzz_budget, sigs, ctx.rng.getrandbits(64),
                                                       fuzz_run.docs or []))
            finally:
                if any(r.requests for r in reports):
                    await ctx.reset()
            run.reports = reports
    if not run.reports:
        return "no resource with a create operation and an item route"
    return run.reports


def _chain_finding(ctx: CheckContext, rep: ResourceReport, failure: ChainFailure, confidence: Confidence) -> Finding:
    res = rep.resource
    last = failure.steps[-1]
    created = failure.steps[0].body
    written = next((r.body for r in reversed(failure.steps) if r.step.action == "update"), None)
    chain = describe_chain(failure)
    bodies = {f"{r.step.action} as {r.role}": describe(r.body) for r in failure.steps if r.body}
    evidence = [*exchange_evidence(last.ex, failure.detail, marker=failure.marker or None),
                note(f"minimal sequence ({res.origin}; id from {failure.id_expression})", chain),
                note("generated bodies (hypothesis, shrunk)",
                     json.dumps(bodies, sort_keys=True, default=repr, ensure_ascii=True)[:2000])]
    ep = failing_operation(failure, res)
    found = ctx.finding(title=f"{failure.detail} ({chain})"[:300], confidence=confidence, evidence=evidence,
                        location=ctx.location(ep=ep, url=last.ex.request.url))
    name = "test_" + re.sub(r"[^a-z0-9]+", "_", f"{ctx.spec.id}_{ep.path}".lower()).strip("_")[:60] + "_is_fixed"
    signs = flaw_signs(failure, written, created)
    return found.model_copy(update={
        "role": last.role if last.role != "anonymous" else rep.owner,
        "reproduction": Reproduction(curl=chain_curl(failure, ctx.target),
                                     pytest=chain_pytest(failure, ctx.target, name, signs))})


async def _chain_failures(ctx: CheckContext, kinds: tuple[str, ...]) -> AsyncIterator[tuple[ResourceReport,
                                                                                             ChainFailure]]:
    reports = await stateful_reports(ctx)
    if isinstance(reports, str):
        ctx.skip(reports)
        return
    for rep in reports:
        for kind in kinds:
            if kind in rep.failures:
                yield rep, rep.failures[kind]


@check(id="fuzz.stateful", threat="fuzz.stateful", scope="target", cost=1.0, shard="family")
async def fuzz_stateful(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A create → read → update → delete sequence that crashes a handler or reaches a sink."""
    async for rep, failure in _chain_failures(ctx, ("crash", "sink")):
        yield _chain_finding(ctx, rep, failure, Confidence.confirmed if failure.kind == "sink" else Confidence.firm)


@check(id="fuzz.state-delete", threat="fuzz.state-delete", scope="target", cost=0.1, shard="family")
async def fuzz_state_delete(ctx: CheckContext) -> AsyncIterator[Finding]:
    """The owner's DELETE answered 200/204, yet the resource (with its content) is still readable."""
    async for rep, failure in _chain_failures(ctx, ("delete",)):
        yield _chain_finding(ctx, rep, failure, Confidence.confirmed)


@check(id="fuzz.state-update", threat="fuzz.state-update", scope="target", cost=0.1, shard="family")
async def fuzz_state_update(ctx: CheckContext) -> AsyncIterator[Finding]:
    """An update answered 2xx, yet reading the resource back shows the old value."""
    async for rep, failure in _chain_failures(ctx, ("update",)):
        yield _chain_finding(ctx, rep, failure, Confidence.firm)


@check(id="fuzz.state-access", threat="fuzz.state-access", scope="target", cost=0.1, shard="family")
async def fuzz_state_access(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Another role or anonymous read or changed a created resource the access policy reserves to others."""
    async for rep, failure in _chain_failures(ctx, ("access",)):
        yield _chain_finding(ctx, rep, failure, Confidence.confirmed)
