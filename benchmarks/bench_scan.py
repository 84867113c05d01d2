"""Engine overhead: scan the demo in-process, then replay the very same requests with raw httpx.

    python benchmarks/bench_scan.py [--flaws all|none|a,b] [--checks injection,headers] [--repeat N]

Prints the engine time, the raw-replay time, their ratio (target: engine/raw <= 1.10), the engine's
requests per second and the peak RSS. Not a test: it never fails, it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import resource
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import httpx  # noqa: E402

from bastion.engine import run_scan  # noqa: E402
from bastion.engine.context import CheckContext  # noqa: E402
from bastion.engine.runner import unit_label  # noqa: E402
from bastion.session import ScanPlan, plan_scan  # noqa: E402
from bastion.target.client import ProbeClient, _RecordingClient  # noqa: E402

# (check id, unit label) of the check sending the current request.
_current_unit: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar("current_unit",
                                                                             default=("?", "?"))


@dataclass(frozen=True)
class Recorded:
    check_id: str
    unit: str
    method: str
    url: str
    headers: list[tuple[bytes, bytes]]
    body: bytes


def instrument(recorded: list[Recorded]) -> None:
    """Record every request the engine sends (after it was sent, so the engine's path is unchanged)."""
    orig_send = ProbeClient._send
    orig_ctx_send = CheckContext.send

    async def _send(self: ProbeClient, request: httpx.Request) -> Any:
        exchange = await orig_send(self, request)
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = b""
        recorded.append(Recorded(*_current_unit.get(), request.method, str(request.url),
                                 list(request.headers.raw), body))
        return exchange

    async def ctx_send(self: CheckContext, method: str, path_or_url: str, **kwargs: Any) -> Any:
        token = _current_unit.set((self.spec.id, unit_label(self.ep, self.inp)))
        try:
            return await orig_ctx_send(self, method, path_or_url, **kwargs)
        finally:
            _current_unit.reset(token)

    ProbeClient._send = _send  # type: ignore[method-assign]
    CheckContext.send = ctx_send  # type: ignore[method-assign]


async def replay(plan: ScanPlan, requests: list[Recorded],
                 per_check: dict[str, float] | None = None) -> float:
    """Send `requests` as the engine scheduled them, with raw httpx; read every body fully.

    Checks run one after another; a check's units run concurrently (up to the engine's concurrency);
    a unit's requests run in order, because a check's next probe depends on the previous answer
    (a time-based SQL probe waits for its slow twin). Replaying them all at once would measure a
    schedule no check can have.
    """
    limits = plan.options.limits
    by_check: dict[str, dict[str, list[Recorded]]] = defaultdict(lambda: defaultdict(list))
    for r in requests:
        by_check[r.check_id][r.unit].append(r)
    sem = asyncio.Semaphore(limits.concurrency)
    transport = plan.target.transport(limits.max_response_bytes)
    # httpx's own client, with only the redirect-parsing guard ProbeClient also has (a probe's junk
    # Location header would otherwise raise before the response can be read).
    async with plan.target.running(), _RecordingClient(transport=transport, base_url=plan.target.base_url,
                                                        trust_env=False, follow_redirects=False,
                                                        timeout=limits.request_timeout) as client:

        async def unit(rs: list[Recorded]) -> None:
            async with sem:
                for r in rs:
                    request = client.build_request(r.method, r.url, headers=r.headers, content=r.body or None)
                    response = await client.send(request, stream=True)
                    try:
                        await response.aread()
                    finally:
                        await response.aclose()

        t0 = time.perf_counter()
        for check_id, units in by_check.items():
            c0 = time.perf_counter()
            await asyncio.gather(*(unit(rs) for rs in units.values()))
            if per_check is not None:
                per_check[check_id] = time.perf_counter() - c0
        return time.perf_counter() - t0


def fresh_plan(args: argparse.Namespace) -> ScanPlan:
    checks = [c.strip() for c in args.checks.split(",") if c.strip()] if args.checks else None
    return plan_scan(demo=True, flaws=args.flaws, framework=args.framework, checks=checks, seed=args.seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flaws", default="all", help="demo flaws: all, none or a comma list")
    parser.add_argument("--checks", default="", help="check ids or families, comma-separated (default: all)")
    parser.add_argument("--framework", default="flask", choices=["flask", "fastapi"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="timed rounds; the best of each side is kept")
    parser.add_argument("--per-check", action="store_true", help="also print per-check times")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up scan")
    args = parser.parse_args(argv)

    recorded: list[Recorded] = []
    instrument(recorded)
    if not args.no_warmup:  # imports, template compilation and regex caches: paid once, not measured
        plan = fresh_plan(args)
        run_scan(plan.target, plan.surface, plan.options)
    engine_times: list[float] = []
    # CPU seconds of the whole process (all threads): steadier than wall time on a loaded machine,
    # where other processes take the cores.
    engine_cpu: list[float] = []
    raw_times: list[float] = []
    result = None
    requests: list[Recorded] = []
    raw_per_check: dict[str, float] = {}
    for _ in range(max(1, args.repeat)):
        plan = fresh_plan(args)  # a fresh app: the demo keeps state (stored entries) between requests
        recorded.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        result = run_scan(plan.target, plan.surface, plan.options)
        engine_times.append(time.perf_counter() - t0)
        engine_cpu.append(time.process_time() - c0)
        requests = list(recorded)
        raw_per_check: dict[str, float] = {}
        raw_times.append(asyncio.run(replay(fresh_plan(args), requests, raw_per_check)))
    assert result is not None
    engine, raw = min(engine_times), min(raw_times)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"target        {result.target.spec}")
    print(f"checks        {len(result.checks)}   findings {len(result.findings)}   requests {len(requests)}"
          f" (engine counted {result.requests})")
    print(f"engine time   {engine:8.3f} s")
    print(f"raw time      {raw:8.3f} s")
    ratio = engine / raw if raw else float("inf")
    print(f"overhead      {ratio:8.3f} x   (target <= 1.10 x){'' if ratio <= 1.10 else '   ABOVE TARGET'}")
    print(f"engine rate   {len(requests) / engine:8.1f} requests/s")
    print(f"raw rate      {len(requests) / raw:8.1f} requests/s   (same requests, raw httpx, same process)"
          if raw else "raw rate           n/a")
    print(f"engine CPU    {min(engine_cpu):8.3f} s   ({len(requests) / max(min(engine_cpu), 1e-9):.1f} requests"
          " per CPU second; compare this one on a busy machine)")
    print(f"peak RSS      {rss_mb:8.1f} MiB")
    if args.per_check:
        print("\nper check (last round): engine s / raw s / requests")
        for stats in sorted(result.checks, key=lambda c: -c.duration_s):
            raw_s = raw_per_check.get(stats.check_id, 0.0)
            print(f"  {stats.check_id:36} {stats.duration_s:7.3f} {raw_s:7.3f}"
                  f" {stats.requests:6}")


if __name__ == "__main__":
    main()
