"""`bastion scan` with history, baselines and suppressions, end to end through the CLI."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner

from bastion.cli import cli

BANNER = ["--checks", "config.version-banner", "-q"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_toggling_a_flaw_off_shows_it_fixed_in_the_history(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    first = invoke("scan", "--demo", "--flaws", "version_banner", *BANNER, "--db", db, "--fail-on", "none")
    assert first.exit_code == 0 and "2 new" in first.output, first.output
    second = invoke("scan", "--demo", "--flaws", "none", *BANNER, "--db", db, "--fail-on", "none")
    assert second.exit_code == 0 and "2 fixed" in second.output, second.output
    report = json.loads(invoke("history", "--db", db, "--format", "json").output)
    assert [r["total"] for r in report["open_by_severity"]] == [2, 0]


def test_baseline_gates_only_new_findings(tmp_path: Path) -> None:
    out = tmp_path / "out"
    base = tmp_path / "bastion-baseline.json"
    args = ["scan", "--demo", "--flaws", "version_banner", *BANNER, "--no-history", "--fail-on", "low"]
    assert invoke(*args, "--format", "json,sarif", "--out", str(out)).exit_code == 1
    created = invoke("baseline", "create", "--from", str(out / "findings.json"), "--out", str(base))
    assert created.exit_code == 0, created.output
    again = invoke(*args, "--baseline", str(base), "--format", "sarif", "--out", str(out))
    assert again.exit_code == 0, again.output
    results = json.loads((out / "bastion.sarif").read_text())["runs"][0]["results"]
    assert {r["baselineState"] for r in results} == {"unchanged"}


def test_accepted_risks_suppress_until_they_expire(tmp_path: Path) -> None:
    def config(until: date) -> Path:
        cfg = tmp_path / f"bastion-{until}.yaml"
        cfg.write_text("target:\n  app: \"bastion.demo:create_app(flaws='version_banner')\"\n"
                       "checks: { include: [config.version-banner] }\n"
                       f"accepted:\n  - {{ threat: config.version-banner, reason: legacy proxy, until: {until},"
                       " owner: ops }\n")
        return cfg

    future, past = date.today() + timedelta(days=30), date.today() - timedelta(days=1)
    active = invoke("scan", "--config", str(config(future)), "-q", "--no-history", "--fail-on", "low")
    assert active.exit_code == 0, active.output
    assert "baselined or suppressed" in active.output
    expired = invoke("scan", "--config", str(config(past)), "-q", "--no-history", "--fail-on", "low")
    assert expired.exit_code == 1
    assert "expired" in expired.output and "legacy proxy" in expired.output
