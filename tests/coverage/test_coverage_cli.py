"""`bastion coverage`: exit codes, formats, --from a findings.json, --tests merge, --detail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion.catalog import load_catalog
from bastion.cli import cli

CHECKS = "headers.csp-missing"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["coverage", *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def findings_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scan")
    result = CliRunner().invoke(cli, ["scan", "--demo", "--checks", CHECKS, "--format", "json", "--out", str(out),
                                      "--no-history", "-q", "--fail-on", "none"])
    assert result.exit_code == 0, result.output
    return out / "findings.json"


def test_demo_json_lists_every_threat(tmp_path: Path) -> None:
    out = tmp_path / "coverage.json"
    code, output = _run("--demo", "--checks", CHECKS, "--format", "json", "--out", str(out), "-q")
    assert code == 0, output
    doc = json.loads(out.read_text())
    assert {t["id"] for t in doc["threats"]} >= set(load_catalog())
    assert all(t["status"] in ("finding", "tested", "not tested") for t in doc["threats"])
    csp = next(t for t in doc["threats"] if t["id"] == CHECKS)
    assert csp["status"] == "finding"


def test_from_findings_file_with_tests_and_detail(findings_file: Path, tmp_path: Path) -> None:
    tests = tmp_path / "tests.json"
    tests.write_text(json.dumps({"schema": "bastion-test-coverage/1", "tests": {
        "t.py::test_bola": {"outcome": "passed", "threats": ["authz.bola"], "roles": ["alice"]},
        "t.py::test_typo": {"outcome": "passed", "threats": ["authz.bolla"], "roles": []}}}))
    code, output = _run("--from", str(findings_file), "--tests", str(tests), "--format", "md", "--detail")
    assert code == 0, output
    assert "# Threat coverage" in output and "## authz.bola" in output.replace("\\", "")
    assert "user test: t.py::test\\_bola" in output
    assert "authz.bolla" in output  # the warning names the unknown id and the test


def test_console_summary(findings_file: Path) -> None:
    code, output = _run("--from", str(findings_file))
    assert code == 0, output
    assert "Threat coverage" in output and CHECKS in output


@pytest.mark.parametrize("content", ["not json", json.dumps({"schema": "bastion-findings/1", "findings": []}),
                                     json.dumps({"schema": "something-else"})])
def test_bad_from_file_exits_2(tmp_path: Path, content: str) -> None:
    path = tmp_path / "findings.json"
    path.write_text(content)
    code, output = _run("--from", str(path))
    assert code == 2 and "findings.json" in output


def test_usage_errors_exit_2(findings_file: Path, tmp_path: Path) -> None:
    assert _run("--from", str(findings_file), "--demo")[0] == 2
    assert _run()[0] == 2  # nothing to scan
    assert _run("--from", str(tmp_path / "missing.json"))[0] == 2
    bad_tests = tmp_path / "tests.json"
    bad_tests.write_text("[]")
    assert _run("--from", str(findings_file), "--tests", str(bad_tests))[0] == 2
    assert _run("--from", str(findings_file), "--format", "xml")[0] == 2
