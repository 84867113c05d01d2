"""Property-based fuzzing: crashes, contract violations and sensor sinks per entry point.

The three checks share one fuzzing pass per entry point and run (the first of them to reach an entry
point runs it, the others read the result): fuzzing is the expensive part, the oracles are cheap.
Budget: `--fuzz-budget N` examples per entry point (see bastion/fuzz/runner.py for what else is sent).
"""

from __future__ import annotations

import asyncio
import json
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
from bastion.fuzz.oracles import StackSignature
from bastion.fuzz.runner import EntryReport, Failure, access_score, choose_role, describe, fuzz_entry_point
from bastion.fuzz.shape import shape_from_inputs, with_json_schema
from bastion.fuzz.strategies import base_example, build_example_request
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
