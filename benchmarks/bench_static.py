"""Static scan speed: `bastion static` vs bandit's CLI on the same tree, in the same run.

    python benchmarks/bench_static.py [--tree DIR] [--max-files N] [--repeat N] [--no-secrets]

The default tree is a bounded copy of installed packages (bandit, detect-secrets, jinja2, httpx, ...)
taken from this environment's site-packages — the issue's "large tree" — capped at --max-files
Python files, so the run stays in minutes. Each tool runs in its own subprocess, alternately
(bastion, bandit, bastion, bandit, ...), and the benchmark prints each side's best wall time, peak
RSS (from wait4), files per second and the ratio bastion/bandit. Bastion does more per file (its own
AST and taint rules, bandit itself as a library, secrets unless --no-secrets), so a ratio near or
above 1 is expected; the number to watch is how it moves. Not a test: it never fails, it measures.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ("bandit", "detect_secrets", "jinja2", "httpx", "click", "yaml", "sqlalchemy", "pydantic", "rich")


def build_tree(dest: Path, max_files: int) -> int:
    """Copy up to `max_files` Python files of well-known installed packages into `dest`."""
    copied = 0
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            if copied >= max_files:
                return copied
            if "__pycache__" in path.parts or path.stat().st_size > 1024 * 1024:
                continue
            target = dest / name / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied += 1
    return copied


def timed(cmd: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in MiB, exit code) of one subprocess."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss // 1024
    return elapsed, rss_kib // 1024, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", help="Tree to scan (default: a bounded copy of installed packages).")
    parser.add_argument("--max-files", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-secrets", action="store_true", help="Bastion without detect-secrets (SAST only).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-static-") as tmp:
        tree = Path(args.tree) if args.tree else Path(tmp) / "tree"
        files = sum(1 for _ in tree.rglob("*.py")) if args.tree else build_tree(tree, args.max_files)
        out = Path(tmp) / "out"
        bastion = [sys.executable, "-m", "bastion.cli", "static", str(tree), "--format", "json", "--out", str(out),
                   "--fail-on", "none", *(["--no-secrets"] if args.no_secrets else [])]
        if importlib.util.find_spec("bastion.cli") is None:
            sys.exit("bastion is not installed in this interpreter (pip install -e .)")
        bandit = [sys.executable, "-m", "bandit", "-r", str(tree), "-q", "-f", "json", "-o", str(Path(tmp) / "b.json")]
        runs: dict[str, list[tuple[float, int, int]]] = {"bastion": [], "bandit": []}
        for _ in range(max(1, args.repeat)):
            runs["bastion"].append(timed(bastion))
            runs["bandit"].append(timed(bandit))
        print(f"tree: {tree} ({files} Python files), best of {args.repeat}:")
        best = {}
        for name, samples in runs.items():
            wall = min(s[0] for s in samples)
            rss = max(s[1] for s in samples)
            best[name] = wall
            print(f"  {name:8s} {wall:7.2f} s  {files / wall:7.0f} files/s  peak RSS {rss} MiB  "
                  f"exit {samples[-1][2]}")
        print(f"  ratio bastion/bandit: {best['bastion'] / best['bandit']:.2f}")


if __name__ == "__main__":
    main()
