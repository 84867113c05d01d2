"""Sensor overhead: the same demo scan with and without grey-box sensors, in one process.

    python benchmarks/bench_sensors.py [--flaws all|none|a,b] [--checks injection,headers] [--repeat N]

Runs the scans alternately (off, on, off, on, ...) so warm-up and caches favour neither side, and
prints each side's best time, requests per second, the sensor events recorded and the ratio
on/off (target: <= 1.15). Not a test: it never fails, it measures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bastion.engine.runner import ScanResult, run_scan  # noqa: E402
from bastion.session import plan_scan  # noqa: E402


def scan_once(flaws: str, checks: list[str] | None, sensors: bool) -> tuple[float, ScanResult]:
    """One full demo scan (fresh app and surface, so neither side reuses the other's state)."""
    plan = plan_scan(demo=True, flaws=flaws, checks=checks)
    plan.options.sensors = sensors
    t0 = time.perf_counter()
    result = run_scan(plan.target, plan.surface, plan.options)
    return time.perf_counter() - t0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flaws", default="all")
    parser.add_argument("--checks", default=None, help="comma-separated check ids or prefixes")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    checks = args.checks.split(",") if args.checks else None
    times: dict[bool, list[float]] = {False: [], True: []}
    last: dict[bool, ScanResult] = {}
    scan_once(args.flaws, checks, True)  # warm-up: imports, the audit hook, template caches
    for _ in range(max(1, args.repeat)):
        for sensors in (False, True):
            elapsed, last[sensors] = scan_once(args.flaws, checks, sensors)
            times[sensors].append(elapsed)
    off, on = min(times[False]), min(times[True])
    confirmed = [f for f in last[True].findings if any(e.kind == "sensor" for e in f.evidence)]
    print(f"demo scan (flaws={args.flaws}, checks={args.checks or 'all'}), best of {args.repeat}:")
    print(f"  sensors off: {off:.2f} s, {last[False].requests / off:.0f} requests/s")
    print(f"  sensors on:  {on:.2f} s, {last[True].requests / on:.0f} requests/s, "
          f"{len(confirmed)} findings with sensor evidence")
    print(f"  ratio on/off: {on / off:.3f} (target <= 1.15)")


if __name__ == "__main__":
    main()
