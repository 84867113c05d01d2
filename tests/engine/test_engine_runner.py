"""The engine with small fake checks: stats, determinism, errors, budgets, exclusions, redaction."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from bastion.catalog.loader import Threat
from bastion.checks import registry
from bastion.checks.registry import REGISTRY, check
from bastion.engine import CheckContext, ScanOptions, run_scan
from bastion.findings.evidence import body_contains, exchange_evidence, proof_from
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target import Limits, Target

SECRET = "s3cr3t-api-key-for-engine-test"


class App:
    """A plain ASGI app: echoes query and headers, redirects, and records every path it is asked for."""

    def __init__(self) -> None:
        self.hits: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        self.hits.append(path)
        query = scope["query_string"].decode()
        # Yield a request-dependent number of times so concurrent units interleave differently.
        for _ in range(hashlib.sha256(query.encode()).digest()[0] % 7):
            await asyncio.sleep(0)
        if path == "/redirect":
            await send({"type": "http.response.start", "status": 302, "headers": [(b"location", b"/items")]})
            await send({"type": "http.response.body", "body": b""})
            return
        values = [v for vs in parse_qs(query).values() for v in vs]
        headers = [v.decode() for k, v in scope["headers"] if k.startswith(b"x-")]
        body = f"<p>{path} {' '.join(values)} {' '.join(headers)}</p>".encode()
        html = [(b"content-type", b"text/html")]
        await send({"type": "http.response.start", "status": 200, "headers": html})
        await send({"type": "http.response.body", "body": body})


def surface() -> Surface:
    return Surface([
        EntryPoint("GET", "/items", [Input("query", "q"), Input("query", "sort"),
                                     Input("header", "X-Trace")]),
        EntryPoint("GET", "/search", [Input("query", "term")]),
        EntryPoint("GET", "/admin", [Input("query", "x")]),
        EntryPoint("GET", "/admin/users/{id}", [Input("path", "id"), Input("query", "fields")]),
        EntryPoint("POST", "/login", [Input("form", "username"), Input("form", "password")]),
        EntryPoint("GET", "/redirect"),
    ])


@pytest.fixture
def fake_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register this module's checks against a fake threat; remove them afterwards."""
    threat = Threat(id="enginetest.threat", title="Engine test threat", stride=["tampering"], cwe=79,
                    severity="medium", owasp=["A03:2021"], summary="s", why="w", mitigation="Fix it.")
    monkeypatch.setattr(registry, "get_threat", lambda _id: threat)
    monkeypatch.setattr(registry, "_loaded", True)  # only our checks: others' modules are not our oracle
    before = set(REGISTRY)

    @check(id="enginetest.reflect", threat="enginetest.threat", scope="input", locations=("query", "header"))
    async def reflect(ctx: CheckContext) -> AsyncIterator[Any]:
        canary = ctx.canary()
        ex = await ctx.inject(canary)
        if canary in ex.text:
            yield ctx.finding(title="Input reflected", evidence=exchange_evidence(ex, "reflected", canary),
                              proof=proof_from(ex, body_contains(canary)))

    @check(id="enginetest.count", threat="enginetest.threat", scope="entry", methods=("GET",))
    async def count(ctx: CheckContext) -> AsyncIterator[Any]:
        await ctx.baseline()
        await ctx.baseline()
        return
        yield

    @check(id="enginetest.boom", threat="enginetest.threat", scope="entry")
    async def boom(ctx: CheckContext) -> AsyncIterator[Any]:
        assert ctx.ep is not None
        if ctx.ep.path == "/search":
            raise ValueError("check bug on purpose")
        yield ctx.finding(title="entry seen")

    @check(id="enginetest.redirect", threat="enginetest.threat", scope="target")
    async def redirect(ctx: CheckContext) -> AsyncIterator[Any]:
        ex = await ctx.send("GET", "/redirect", follow_redirects=True)
        assert ex.status == 200 and len(ex.history) == 1
        return
        yield

    @check(id="enginetest.budget", threat="enginetest.threat", scope="entry")
    async def spend(ctx: CheckContext) -> AsyncIterator[Any]:
        yield ctx.finding(title="before spending")
        for _ in range(3):
            await ctx.baseline()
        yield ctx.finding(title="never reached when the budget is small", location=ctx.location(path="/late"))

    @check(id="enginetest.secret", threat="enginetest.threat", scope="target")
    async def secret(ctx: CheckContext) -> AsyncIterator[Any]:
        ex = await ctx.send("GET", "/items", params={"note": SECRET}, headers={"x-api": SECRET})
        yield ctx.finding(title="echoes a secret", evidence=exchange_evidence(ex, "echo"),
                          proof=proof_from(ex, body_contains(SECRET)))

    @check(id="enginetest.fence", threat="enginetest.threat", scope="target")
    async def fence(ctx: CheckContext) -> AsyncIterator[Any]:
        ex = await ctx.send("GET", "/admin/users/1")
        yield ctx.finding(title=f"fence {','.join(ex.events)}")

    yield
    for cid in set(REGISTRY) - before:
        del REGISTRY[cid]


def scan(checks: list[str], app: App | None = None, **options: Any):
    app = app or App()
    result = run_scan(Target.from_app(app), surface(), ScanOptions(checks=checks, **options))
    return result, app


def stats_of(result: Any, cid: str) -> Any:
    return next(c for c in result.checks if c.check_id == cid)


def test_per_check_requests_and_units_are_recorded(fake_checks: None) -> None:
    result, app = scan(["enginetest.count", "enginetest.redirect", "enginetest.reflect"])
    count = stats_of(result, "enginetest.count")
    assert count.units == ["GET /admin", "GET /admin/users/{id}", "GET /items", "GET /redirect",
                           "GET /search"]
    assert count.requests == 10
    redirect = stats_of(result, "enginetest.redirect")
    assert redirect.units == ["target"] and redirect.requests == 2  # the hop counts
    reflect = stats_of(result, "enginetest.reflect")
    assert reflect.units == ["GET /admin [query:x]", "GET /admin/users/{id} [query:fields]",
                             "GET /items [header:X-Trace]", "GET /items [query:q]", "GET /items [query:sort]",
                             "GET /search [query:term]"]
    assert reflect.requests == 6
    assert result.requests == 18 == len(app.hits)
    assert [c.check_id for c in result.checks] == ["enginetest.count", "enginetest.redirect",
                                                   "enginetest.reflect"]
    info = result.run_info()
    assert info["requests"] == 18
    assert [(c["id"], c["requests"], c["units"]) for c in info["checks"]] == [
        ("enginetest.count", 10, 5), ("enginetest.redirect", 2, 1), ("enginetest.reflect", 6, 6)]


def test_same_seed_same_findings_regardless_of_concurrency(fake_checks: None) -> None:
    dumps = []
    for concurrency in (1, 3, 8):
        result, _ = scan(["enginetest.reflect"], seed=7, limits=Limits(concurrency=concurrency))
        dumps.append([f.model_dump_json() for f in result.findings])
    assert dumps[0] == dumps[1] == dumps[2]
    assert len(dumps[0]) == 6
    other, _ = scan(["enginetest.reflect"], seed=8)
    assert [f.fingerprint for f in other.findings] == [f.fingerprint for f in result.findings]
    assert [f.model_dump_json() for f in other.findings] != dumps[0]  # canaries follow the seed


def test_canaries_are_unique_per_unit(fake_checks: None) -> None:
    result, _ = scan(["enginetest.reflect"])
    canaries = [f.proof.conditions[0].value for f in result.findings if f.proof]
    assert len(canaries) == 6 == len(set(canaries))
    pairs = zip(canaries, result.findings, strict=True)
    assert all(c.startswith("bst") and c in f.evidence[0].content for c, f in pairs)


def test_a_check_that_raises_is_recorded_and_the_scan_continues(fake_checks: None) -> None:
    result, _ = scan(["enginetest.boom", "enginetest.count"])
    boom = stats_of(result, "enginetest.boom")
    assert len(boom.errors) == 1
    assert boom.errors[0].startswith("GET /search: ValueError: check bug on purpose")
    assert len([f for f in result.findings if f.check_id == "enginetest.boom"]) == 5  # the other units
    assert stats_of(result, "enginetest.count").requests == 10  # later checks still ran
    assert result.run_info()["checks"][0]["errors"] == boom.errors


def test_budget_exhausted_stops_the_scan_early(fake_checks: None) -> None:
    result, app = scan(["enginetest.budget", "enginetest.count"],
                       limits=Limits(max_requests=2, concurrency=2))
    assert result.events == ["scan stopped early: request budget of 2 spent"]
    assert result.requests == 2 == len(app.hits)
    assert [c.check_id for c in result.checks] == ["enginetest.budget"]  # count never started
    titles = {f.title for f in result.findings}
    assert titles == {"before spending"}  # what was found before the stop is kept


def test_exclude_paths_skips_entry_points_and_requests(fake_checks: None) -> None:
    result, app = scan(["enginetest.count", "enginetest.fence"], exclude_paths=["/admin"])
    assert stats_of(result, "enginetest.count").units == ["GET /items", "GET /redirect", "GET /search"]
    assert not any(h.startswith("/admin") for h in app.hits)
    (fence,) = [f for f in result.findings if f.check_id == "enginetest.fence"]
    assert fence.title == "fence excluded-path"


def test_scan_secrets_are_redacted_from_findings(fake_checks: None) -> None:
    result, app = scan(["enginetest.secret"], secrets=[SECRET])
    (finding,) = result.findings
    assert app.hits == ["/items"]
    dumped = finding.model_dump_json()
    assert SECRET not in dumped
    assert SECRET not in finding.reproduction.curl and SECRET not in finding.reproduction.pytest
    assert "***" in finding.evidence[1].content
    compile(finding.reproduction.pytest, "repro.py", "exec")
