"""Subprocess for crash and concurrency tests: records fake runs in a loop, printing progress.

Usage: python history_writer.py DB_PATH RUNS FINDINGS_PER_RUN TARGET
Each run stores `requests` = its number of findings so the test can check every run is complete.
With BASTION_TEST_BARRIER=1 it prints "ready" once the store is open and waits for a line on stdin, so a
test can release several writers at the same moment.
"""

from __future__ import annotations

import os
import sys

from history_fakes import make_finding, make_result

from bastion.history import open_store, record_run


def main() -> None:
    db, runs, per_run, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    engine = open_store(db)
    if os.environ.get("BASTION_TEST_BARRIER") == "1":
        print("ready", flush=True)
        sys.stdin.readline()
    for i in range(runs):
        # A sliding window of paths: each run drops some findings and adds new ones.
        count = per_run + i % 3
        found = [make_finding(path=f"/r{j}") for j in range(i, i + count)]
        result = make_result(found, checks=["injection.sql"], requests=count, target=target,
                             started_at=f"2026-01-01T00:00:{i % 60:02d}+00:00")
        print("writing", i, flush=True)
        record_run(result, engine=engine)
        print("done", i, flush=True)
    engine.dispose()


if __name__ == "__main__":
    main()
