"""History store throughput: insert 100k findings (SQLite, PostgreSQL) and `bastion history` over a year.

    python benchmarks/bench_history.py [--findings 100000] [--runs 365] [--per-run 200] [--pg-url URL]

Prints rows/s for recording one run with N findings (each finding is a `findings` row plus a
`run_findings` row) on SQLite and on PostgreSQL (`--pg-url`, else a throw-away cluster when initdb and
pg_ctl are found, else skipped), then the wall time and peak RSS of `bastion history --format json`
over R daily runs × P findings (targets: < 5 s, < 300 MB). Not a test: it never fails, it measures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "history"))  # the throw-away PostgreSQL cluster helper

from bastion.engine.context import CheckStats  # noqa: E402
from bastion.engine.runner import ScanResult  # noqa: E402
from bastion.findings.model import Confidence, Evidence, Finding, InputRef, Location, Severity  # noqa: E402
from bastion.history import open_store, record_run  # noqa: E402
from bastion.surface.model import Surface  # noqa: E402
from bastion.target.target import Target  # noqa: E402

CHECKS = ("injection.sql", "injection.xss-reflected", "headers.csp-missing", "config.stack-trace")
SEVERITIES = list(Severity)
START = datetime(2025, 1, 1, 6, 0, tzinfo=UTC)


def finding(i: int) -> Finding:
    """A distinct finding per index (its path holds the index), spread over checks and severities."""
    check = CHECKS[i % len(CHECKS)]
    return Finding(check_id=check, threat_id=check, title=f"{check} at /r/{i}", severity=SEVERITIES[i % 5],
                   confidence=Confidence.firm,
                   location=Location(method="GET", path=f"/r/{i}", url=f"http://127.0.0.1:9/r/{i}",
                                     input=InputRef(**{"in": "query", "name": "q"})),
                   evidence=[Evidence(kind="request", summary=f"probe {i}", content="GET /r HTTP/1.1")])


def result(found: list[Finding], started: datetime) -> ScanResult:
    stats = [CheckStats(check_id=c, requests=50, duration_s=0.5, units=[f"GET /r/{k} [query:q]" for k in range(20)])
             for c in CHECKS]
    return ScanResult(target=Target(kind="url", base_url="http://127.0.0.1:9", spec="bench:app"),
                      surface=Surface(), seed=0, started_at=started.isoformat(), duration_s=60.0, requests=200,
                      checks=stats, findings=found)


def bench_insert(url: str, label: str, count: int, pool: list[Finding]) -> None:
    engine = open_store(url)
    began = time.perf_counter()
    record_run(result(pool[:count], START), engine=engine)
    elapsed = time.perf_counter() - began
    engine.dispose()
    rows = count * 2
    print(f"{label:<11} insert {count} findings in one run: {elapsed:7.2f} s  {rows / elapsed:10.0f} rows/s "
          f"({count / elapsed:.0f} findings/s)")


@contextmanager
def postgres(url: str | None) -> Iterator[str | None]:
    if url:
        yield url
        return
    try:
        from pg_cluster import find_pg_bin, remove_cluster, start_cluster
    except ImportError:
        yield None
        return
    bin_dir = find_pg_bin()
    if bin_dir is None:
        yield None
        return
    cluster = start_cluster(bin_dir)
    try:
        yield cluster.database_url("bench")
    finally:
        remove_cluster(cluster)


def fill_year(url: str, runs: int, per_run: int, pool: list[Finding]) -> float:
    """Daily runs with a sliding window of findings: some fixed and some new every day."""
    engine = open_store(url)
    began = time.perf_counter()
    for day in range(runs):
        offset = day * (per_run // 20)  # 5% turnover per day
        record_run(result(pool[offset:offset + per_run], START + timedelta(days=day)), engine=engine)
    engine.dispose()
    return time.perf_counter() - began


# Runs the CLI in a child that reports its peak RSS (VmHWM, KiB) as the last stderr line at exit. Not
# getrusage: on Linux ru_maxrss survives exec, so the child would report this (large) parent's peak.
CLI_WITH_RSS = ("import atexit, re, sys; atexit.register(lambda: print(re.search(r'VmHWM:\\s+(\\d+)', "
                "open('/proc/self/status').read()).group(1), file=sys.stderr)); from bastion.cli import main; main()")


def bench_history_command(url: str) -> None:
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CLI_WITH_RSS, "history", "--db", url, "--format", "json"],
                         capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    last = out.stderr.strip().rsplit("\n", 1)[-1]
    rss_mb = int(last) / 1024 if last.isdigit() else float("nan")
    status = "ok" if out.returncode == 0 else f"exit {out.returncode}: {out.stderr.strip()[:200]}"
    print(f"bastion history --format json: {elapsed:6.2f} s (target < 5 s), peak RSS {rss_mb:6.1f} MB "
          f"(target < 300 MB), {len(out.stdout)} bytes, {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--per-run", type=int, default=200)
    parser.add_argument("--pg-url", default=None, help="PostgreSQL URL (an empty database) instead of a temp cluster")
    args = parser.parse_args()
    pool_size = max(args.findings, args.per_run + args.runs * (args.per_run // 20))
    began = time.perf_counter()
    pool = [finding(i) for i in range(pool_size)]
    print(f"built {pool_size} findings in {time.perf_counter() - began:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        bench_insert(str(Path(tmp) / "insert.db"), "SQLite", args.findings, pool)
        with postgres(args.pg_url) as pg_url:
            if pg_url is None:
                print("PostgreSQL  skipped (no --pg-url and no initdb/pg_ctl found)")
            else:
                bench_insert(pg_url, "PostgreSQL", args.findings, pool)
        year = str(Path(tmp) / "year.db")
        filled = fill_year(year, args.runs, args.per_run, pool)
        print(f"recorded {args.runs} runs x {args.per_run} findings in {filled:.1f} s "
              f"({args.runs / filled:.1f} runs/s)")
        bench_history_command(year)


if __name__ == "__main__":
    main()
