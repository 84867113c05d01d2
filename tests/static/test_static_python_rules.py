"""Bastion's Python rules: each fires on the vulnerable sample apps and stays silent on the hardened twins."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.findings.model import Finding
from bastion.static.files import Skipped
from bastion.static.python_rules import PYTHON_RULES
from bastion.static.python_scan import analyse_python

APPS = Path(__file__).parent / "apps"
VULNERABLE = ("vuln_flask.py", "vuln_fastapi.py", "vuln_django_settings.py")
HARDENED = ("safe_flask.py", "safe_fastapi.py", "safe_django_settings.py")


def _scan(name: str) -> list[Finding]:
    skipped: list[Skipped] = []
    findings, _ = analyse_python((APPS / name).read_text(), name, skipped)
    assert not skipped
    return findings


@pytest.fixture(scope="module")
def vulnerable() -> list[Finding]:
    return [f for name in VULNERABLE for f in _scan(name)]


@pytest.mark.parametrize("rule", [r.id for r in PYTHON_RULES])
def test_rule_fires_on_vulnerable_apps(rule: str, vulnerable: list[Finding]) -> None:
    assert any(f.check_id == rule for f in vulnerable), f"{rule} did not fire"


@pytest.mark.parametrize("name", HARDENED)
def test_hardened_apps_scan_clean(name: str) -> None:
    assert [(f.check_id, f.location.line) for f in _scan(name)] == []


def test_request_data_findings_name_the_input_and_the_threat(vulnerable: list[Finding]) -> None:
    by_line = {(f.location.file, f.location.line): f for f in vulnerable}
    sql = by_line[("vuln_flask.py", 37)]
    assert sql.threat_id == "injection.sql" and sql.cwe == 89
    assert sql.location.input is not None and (sql.location.input.in_, sql.location.input.name) == ("query", "status")
    source = sql.evidence[0]
    assert source.kind == "source" and "execute(sql)" in source.content
    fastapi_cookie = by_line[("vuln_fastapi.py", 21)]
    assert fastapi_cookie.threat_id == "injection.ssti"
    assert fastapi_cookie.location.input is not None and fastapi_cookie.location.input.name == "display_name"
    header = by_line[("vuln_fastapi.py", 26)]
    assert header.location.input is not None and header.location.input.in_ == "header"


def test_helper_flow_records_the_call_chain(vulnerable: list[Finding]) -> None:
    cmd = next(f for f in vulnerable if f.check_id == "static.command-injection")
    assert cmd.location.line == 30  # the sink, inside the helper
    assert cmd.evidence[0].meta["chain"] == "report -> run_report"
    assert cmd.evidence[0].meta["entry"] == "report"


def test_weak_secret_key_is_critical_and_long_literal_is_high(vulnerable: list[Finding]) -> None:
    keys = {f.location.file: f for f in vulnerable if f.check_id == "static.hardcoded-secret-key"}
    assert keys["vuln_flask.py"].severity.value == "critical"
    assert keys["vuln_django_settings.py"].severity.value == "high"
