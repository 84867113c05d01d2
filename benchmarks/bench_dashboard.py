"""Risk dashboard over a year of history: `bastion dashboard` time and peak RSS, and shard planning cost.

    python benchmarks/bench_dashboard.py [--runs 365] [--per-run 200] [--db PATH]

Fills a SQLite history with R daily runs × P findings (the history benchmark's sliding window: some
fixed, some new every day; skipped with --db pointing at an existing file), then times
`bastion dashboard` in a child process and reads its peak RSS (targets: < 5 s, < 300 MB). It also
times planning a 3-way shard split of a large synthetic plan. Not a test: it prints, never fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # the history benchmark's data generator and RSS-reporting CLI runner

from bench_history import CLI_WITH_RSS, fill_year, finding  # noqa: E402

from bastion.checks.registry import select_checks  # noqa: E402
from bastion.engine.runner import plan_units  # noqa: E402
from bastion.engine.shard import Shard, shard_plans  # noqa: E402
from bastion.surface.model import EntryPoint, Input, Surface  # noqa: E402
from bastion.target.scope import Scope  # noqa: E402


def bench_dashboard(db: str, out: Path) -> None:
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CLI_WITH_RSS, "dashboard", "--db", db, "--out", str(out)],
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    last = proc.stderr.strip().rsplit("\n", 1)[-1]
    rss_mb = int(last) / 1024 if last.isdigit() else float("nan")
    status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip()[:200]}"
    size = out.stat().st_size / 1024 if out.exists() else 0.0
    print(f"bastion dashboard: {elapsed:6.2f} s (target < 5 s), peak RSS {rss_mb:6.1f} MB (target < 300 MB), "
          f"page {size:.0f} KiB, {status}")


def bench_shard_planning(entries: int = 500) -> None:
    eps = [EntryPoint(m, f"/api/r{i}/{{id}}", inputs=[Input("path", "id"), Input("query", "q"), Input("json", "v")])
           for i in range(entries) for m in ("GET", "POST")]
    surface = Surface(entry_points=eps)
    scope = Scope.for_base_url("http://127.0.0.1:9", [], [])
    plans = [(spec, [(ep, inp, None) for ep, inp in plan_units(spec, surface, scope)]) for spec in select_checks(None)]
    units = sum(len(u) for _, u in plans)
    began = time.perf_counter()
    records = [shard_plans(plans, Shard(i, 3))[1] for i in (1, 2, 3)]
    elapsed = time.perf_counter() - began
    loads = records[0].loads
    print(f"shard planning: {units} units into 3 shards in {elapsed / 3 * 1000:.0f} ms per shard; "
          f"estimated loads {loads} (max/mean {max(loads) / (sum(loads) / len(loads)):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--per-run", type=int, default=200)
    parser.add_argument("--db", default=None, help="An existing history to render instead of a generated one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if db is None:
            db = str(Path(tmp) / "year.db")
            pool = [finding(i) for i in range(args.per_run + args.runs * (args.per_run // 20))]
            filled = fill_year(db, args.runs, args.per_run, pool)
            print(f"recorded {args.runs} runs x {args.per_run} findings in {filled:.1f} s")
        bench_dashboard(db, Path(tmp) / "dash.html")
    bench_shard_planning()


if __name__ == "__main__":
    main()
