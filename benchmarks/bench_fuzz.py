"""Fuzzer throughput: examples per second on the demo vs a raw httpx loop sending the same requests.

    python benchmarks/bench_fuzz.py [--budget N] [--flaws none|all|ids] [--seed N]

Runs the fuzz checks on the in-process demo, records every fuzzed request (method, path, arguments),
then replays exactly those requests with a bare `httpx.Client(transport=WSGITransport(...))` against
a fresh demo app, anonymously and without sensors, and prints both rates and their ratio. The
difference is Bastion's cost per example: hypothesis generation and shrinking, the thread hop into
the async engine, scope and budget checks, sensors, oracles, role selection and resets. Not a test.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx

from bastion.demo import create_app
from bastion.engine.runner import run_scan
from bastion.fuzz import runner as fuzz_runner
from bastion.fuzz.strategies import build_example_request
from bastion.session import DEMO_BASE_URL, plan_scan


def record_fuzz_requests(budget: int, flaws: str, seed: int) -> tuple[list[tuple[str, str, dict[str, Any]]], float]:
    """Scan the demo with the fuzz checks, returning every fuzzed request and the scan's wall time."""
    sent: list[tuple[str, str, dict[str, Any]]] = []
    original = fuzz_runner.EntryFuzzer.send

    async def recording_send(self: fuzz_runner.EntryFuzzer, example: dict[str, Any]) -> Any:
        spec = build_example_request(self.ep, self.shape, example)
        sent.append((spec.method, spec.path, spec.kwargs()))
        return await original(self, example)

    fuzz_runner.EntryFuzzer.send = recording_send  # type: ignore[method-assign]
    try:
        plan = plan_scan(demo=True, flaws=flaws, checks=["fuzz"], seed=seed, fuzz_budget=budget)
        t0 = time.perf_counter()
        run_scan(plan.target, plan.surface, plan.options)
        elapsed = time.perf_counter() - t0
    finally:
        fuzz_runner.EntryFuzzer.send = original  # type: ignore[method-assign]
    return sent, elapsed


def replay(requests: list[tuple[str, str, dict[str, Any]]], flaws: str) -> float:
    """Send the same requests with a bare httpx client; wall time in seconds."""
    app = create_app(flaws=flaws)
    transport = httpx.WSGITransport(app=app, raise_app_exceptions=False)
    t0 = time.perf_counter()
    with httpx.Client(transport=transport, base_url=DEMO_BASE_URL) as client:
        for method, path, kwargs in requests:
            cookies = kwargs.pop("cookies", None)
            headers = dict(kwargs.pop("headers", None) or {})
            if cookies:
                headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            try:
                client.request(method, path, headers=headers, **{k: v for k, v in kwargs.items() if v is not None})
            except (httpx.HTTPError, UnicodeError, ValueError, TypeError):
                pass  # a request httpx cannot build counts like one Bastion records as unsendable
    return time.perf_counter() - t0


def stateful_throughput(budget: int, flaws: str, seed: int) -> tuple[int, int, float]:
    """Run the stateful checks on the demo: (chain steps sent, chains run, wall seconds)."""
    from bastion.fuzz import stateful

    counts = [0, 0]
    original_send, original_chain = stateful.ChainRunner.send, stateful.ChainRunner.run_chain

    async def counting_send(self: stateful.ChainRunner, *args: Any) -> Any:
        counts[0] += 1
        return await original_send(self, *args)

    async def counting_chain(self: stateful.ChainRunner, *args: Any) -> Any:
        counts[1] += 1
        return await original_chain(self, *args)

    stateful.ChainRunner.send = counting_send  # type: ignore[method-assign]
    stateful.ChainRunner.run_chain = counting_chain  # type: ignore[method-assign]
    try:
        checks = ["fuzz.stateful", "fuzz.state-delete", "fuzz.state-update", "fuzz.state-access"]
        plan = plan_scan(demo=True, flaws=flaws, checks=checks, seed=seed, fuzz_budget=budget)
        t0 = time.perf_counter()
        run_scan(plan.target, plan.surface, plan.options)
        elapsed = time.perf_counter() - t0
    finally:
        stateful.ChainRunner.send = original_send  # type: ignore[method-assign]
        stateful.ChainRunner.run_chain = original_chain  # type: ignore[method-assign]
    return counts[0], counts[1], elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=fuzz_runner.DEFAULT_FUZZ_BUDGET)
    parser.add_argument("--flaws", default="none")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    requests, bastion_s = record_fuzz_requests(args.budget, args.flaws, args.seed)
    raw_s = replay(list(requests), args.flaws)
    n = len(requests)
    print(f"fuzzed examples sent: {n} (budget {args.budget} per entry point, flaws={args.flaws})")
    print(f"bastion fuzz checks : {bastion_s:7.2f} s  {n / bastion_s:8.1f} examples/s (whole scan incl. set-up)")
    print(f"raw httpx loop      : {raw_s:7.2f} s  {n / raw_s:8.1f} requests/s")
    print(f"ratio bastion/raw   : {bastion_s / raw_s:7.2f}x")
    steps, chains, state_s = stateful_throughput(args.budget, args.flaws, args.seed)
    print(f"stateful sequences  : {state_s:7.2f} s  {steps / state_s:8.1f} steps/s ({steps} steps in {chains} chains, "
          "whole scan incl. set-up)")


if __name__ == "__main__":
    main()
