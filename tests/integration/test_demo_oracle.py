"""The demo is the oracle: every planted flaw is found by its checks; the hardened twin scans clean."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion.cli import cli
from bastion.demo.flaws import FLAWS


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.output


def _findings(out: Path) -> dict:
    return json.loads((out / "findings.json").read_text())


@pytest.fixture(scope="module")
def all_flaws_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    # One full scan per test run: xdist spreads this module's tests over its workers, and each worker
    # would otherwise pay for the same scan; the first one scans, the others read its reports.
    base = tmp_path_factory.getbasetemp()
    out = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "oracle-all-flaws"
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = out / "exit-code"
        if not done.exists():
            out.mkdir(exist_ok=True)
            code, _ = _run(["scan", "--demo", "--flaws", "all", "--seed", "7", "-q",
                            "--format", "json,sarif,junit,html,md", "--out", str(out)])
            done.write_text(str(code))
    return int(done.read_text()), out


def test_all_flaws_scan_exits_1_and_writes_every_report(all_flaws_run: tuple[int, Path]) -> None:
    code, out = all_flaws_run
    assert code == 1
    for name in ("findings.json", "bastion.sarif", "junit.xml", "report.html", "report.md"):
        assert (out / name).stat().st_size > 0, name


@pytest.mark.parametrize("flaw_id", sorted(FLAWS))
def test_every_flaw_is_found_by_its_checks(all_flaws_run: tuple[int, Path], flaw_id: str) -> None:
    _, out = all_flaws_run
    found = {f["check_id"] for f in _findings(out)["findings"]}
    missing = set(FLAWS[flaw_id].checks) - found
    assert not missing, f"{flaw_id} ({FLAWS[flaw_id].location}) not found by {sorted(missing)}"


def test_no_check_errors_on_the_demo(all_flaws_run: tuple[int, Path]) -> None:
    _, out = all_flaws_run
    errors = {c["id"]: c["errors"] for c in _findings(out)["run"]["checks"] if c.get("errors")}
    assert not errors


def test_hardened_twin_scans_clean(tmp_path: Path) -> None:
    code, output = _run(["scan", "--demo", "--flaws", "none", "-q", "--fail-on", "low",
                         "--format", "json", "--out", str(tmp_path)])
    doc = _findings(tmp_path)
    above_info = [(f["check_id"], f["location"]) for f in doc["findings"] if f["severity"] != "info"]
    assert above_info == []
    assert code == 0, output
    assert not [c for c in doc["run"]["checks"] if c.get("errors")]


TIMING_CHECKS = frozenset({"injection.sql", "injection.command", "injection.code", "authn.user-enumeration"})


def test_same_seed_gives_identical_findings(all_flaws_run: tuple[int, Path], tmp_path: Path) -> None:
    _, first = all_flaws_run
    _run(["scan", "--demo", "--flaws", "all", "--seed", "7", "-q", "--format", "json", "--out", str(tmp_path)])
    a, b = _findings(first), _findings(tmp_path)
    assert a["findings"] == b["findings"]
    # Checks with a timing oracle re-send a probe when a response is slow: their request counts follow the
    # machine's load, not the seed. Every other check must send exactly the same requests.
    def counts(doc: dict) -> list[tuple[str, int]]:
        return [(c["id"], c["requests"]) for c in doc["run"]["checks"] if c["id"] not in TIMING_CHECKS]

    assert counts(a) == counts(b)


def test_reports_never_carry_the_targets_secrets(all_flaws_run: tuple[int, Path]) -> None:
    """The exposed .env and the live session cookies are evidence, but their values are masked."""
    import re

    from bastion.demo.workspace import PROJECT_FILES

    env_values = [line.split("=", 1)[1] for line in PROJECT_FILES[".env"].splitlines()
                  if line.split("=", 1)[0].endswith(("KEY", "URL", "PASSWORD"))]
    assert env_values
    _, out = all_flaws_run
    for report in sorted(out.iterdir()):
        text = report.read_text(encoding="utf-8")
        for secret in env_values:
            assert secret not in text, (report.name, secret)
        assert "demo-db-password" not in text, report.name
        assert not re.search(r"session_id=(?!\*\*\*)[A-Za-z0-9_-]{8,}", text), report.name
