"""fuzz.latency: the statistics on synthetic samples, re-timing with a fake clock, one scan with virtual time.

Nothing here depends on real time: elapsed values are assigned per request (the test apps report a
virtual cost in `X-Test-Cost`, and a test-only wrapper around the client turns it into `elapsed`).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, jsonify, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.fuzz.latency import FLOOR_S, RETIMES, median_absolute_deviation, retime, slow_threshold, suspects
from bastion.surface.discover import discover_surface
from bastion.target.client import ProbeClient
from bastion.target.target import Target

COST_HEADER = "X-Test-Cost"


def test_threshold_is_robust_and_floored() -> None:
    fast = [0.010, 0.012, 0.011, 0.013, 0.009]
    assert median_absolute_deviation(fast) == pytest.approx(0.001)
    assert slow_threshold(fast) == FLOOR_S  # 10× a 11 ms median is below the absolute floor
    slower = [0.2, 0.21, 0.19, 0.2]
    assert slow_threshold(slower) == pytest.approx(2.0)  # 10× the median
    # One huge outlier barely moves the median and the MAD.
    assert slow_threshold([*fast, 30.0]) < 1.0


def test_suspects_are_the_outliers_slowest_first() -> None:
    timings = [(f"e{i}", 0.01) for i in range(20)] + [("slow", 3.0), ("slower", 9.0), ("also", 2.0)]
    assert [e for e, _ in suspects(timings)] == ["slower", "slow"]
    assert suspects([(f"e{i}", 0.3) for i in range(10)]) == []  # uniformly slow is not an outlier
    assert suspects([("only", 5.0)]) == []  # never one sample
    assert suspects([("a", 0.01), ("b", 0.4)]) == []  # below the absolute floor


def _fake_send(costs: dict[str, list[float]]) -> Any:
    """A send() whose exchanges carry the next virtual elapsed time listed for the example."""

    async def send(example: str) -> Any:
        return SimpleNamespace(ok=True, elapsed=costs[example].pop(0))

    return send


def test_retime_needs_every_resend_slow_and_every_baseline_fast() -> None:
    slow_every_time = _fake_send({"valid": [0.01] * 6, "evil": [2.0] * RETIMES})
    verdict = asyncio.run(retime(slow_every_time, "evil", "valid", [0.01]))
    assert verdict is not None and verdict.suspect_s == [2.0] * RETIMES and verdict.threshold == FLOOR_S
    hiccup = _fake_send({"valid": [0.01] * 6, "evil": [2.0, 0.01, 2.0]})  # one slow sample was noise
    assert asyncio.run(retime(hiccup, "evil", "valid", [0.01])) is None
    machine_slow = _fake_send({"valid": [0.01] * 3 + [3.0] * 3, "evil": [3.0] * 3})  # everything slowed down
    assert asyncio.run(retime(machine_slow, "evil", "valid", [0.01])) is None


def _app(quadratic: bool) -> Flask:
    """An e-mail validator: the flawed one costs quadratic (virtual) time in the input's length."""
    app = Flask("validator")

    @app.get("/api/validate")
    def validate() -> Any:
        email = request.args.get("email", "")
        cost = 1e-6 * len(email) ** 2 if quadratic else 1e-7 * len(email)
        return jsonify(valid="@" in email[:254]), 200, {COST_HEADER: f"{0.002 + cost:.6f}"}

    return app


@pytest.fixture
def virtual_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test-only: every exchange's elapsed is the cost the app reported, not wall time."""
    original = ProbeClient.request

    async def request(self: ProbeClient, *args: Any, **kwargs: Any) -> Any:
        ex = await original(self, *args, **kwargs)
        if ex.header(COST_HEADER):
            ex.elapsed = float(ex.header(COST_HEADER) or 0)
        return ex

    monkeypatch.setattr(ProbeClient, "request", request)


def _scan(app: Flask, seed: int = 1) -> ScanResult:
    target = Target.from_app(app, spec="tests.fuzz:app", base_url="http://testserver")
    surface = discover_surface(target, crawl=False)
    return run_scan(target, surface, ScanOptions(checks=["fuzz.latency"], seed=seed, fuzz_budget=24))


def test_latency_outlier_found_with_a_virtual_clock(virtual_clock: None) -> None:
    result = _scan(_app(quadratic=True))
    assert not [c.errors for c in result.checks if c.errors]
    [found] = result.findings
    assert (found.check_id, found.location.path, found.cwe) == ("fuzz.latency", "/api/validate", 407)
    timings = next(e.content for e in found.evidence if e.summary == "timings")
    assert f"re-sent {RETIMES} times" in timings
    assert "email" in found.reproduction.curl


def test_latency_silent_on_linear_handler_and_deterministic(virtual_clock: None) -> None:
    assert _scan(_app(quadratic=False)).findings == []
    first, again = _scan(_app(quadratic=True), seed=4), _scan(_app(quadratic=True), seed=4)
    assert [f.model_dump(mode="json") for f in first.findings] == [f.model_dump(mode="json") for f in again.findings]
