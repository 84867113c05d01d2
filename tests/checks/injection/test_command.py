"""injection.command: fires when the shell runs injected commands, silent on argv lists and quoting."""

from __future__ import annotations

import shlex
import subprocess

import pytest
from flask import Flask, jsonify, request

from bastion.engine import ScanOptions, run_scan
from bastion.findings.model import Finding
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target
from bastion.testing import findings_of, reproduction_passes, scan_app

CHECK = "injection.command"


def _shell(command: str) -> str:
    return subprocess.run(command, shell=True, capture_output=True, text=True, timeout=8).stdout


def vulnerable_app() -> Flask:
    app = Flask("vulnerable_app")

    @app.post("/ping")
    def ping():  # unquoted, output returned
        return f"<pre>{_shell('echo pinging ' + request.form.get('host', ''))}</pre>"

    @app.get("/greet")
    def greet():  # inside single quotes, output returned as JSON
        return jsonify({"out": _shell(f"echo 'hello {request.args.get('name', '')}'")})

    @app.post("/api/jobs")
    def jobs():  # blind: output discarded
        _shell(f"true {(request.get_json(silent=True) or {}).get('label', '')}")
        return jsonify({"queued": True})

    return app


def safe_app() -> Flask:
    app = Flask("safe_app")

    @app.post("/ping")
    def ping():  # argv list, no shell
        host = request.form.get("host", "")
        out = subprocess.run(["echo", "pinging", host], capture_output=True, text=True).stdout
        return f"<pre>{out}</pre>"

    @app.get("/greet")
    def greet():  # shell, but the value is quoted
        return jsonify({"out": _shell("echo hello " + shlex.quote(request.args.get("name", "")))})

    @app.post("/api/jobs")
    def jobs():  # echoes the raw value back
        return jsonify({"label": (request.get_json(silent=True) or {}).get("label", "")})

    return app


def _surface() -> Surface:
    return Surface([
        EntryPoint("POST", "/ping", [Input("form", "host")], consumes=["application/x-www-form-urlencoded"]),
        EntryPoint("GET", "/greet", [Input("query", "name")]),
        EntryPoint("POST", "/api/jobs", [Input("json", "label")], consumes=["application/json"]),
    ])


def _scan(app: Flask) -> list[Finding]:
    result = scan_app(app, _surface(), checks=[CHECK], spec=f"{__name__}:{app.name}()")
    return [f for f in result.findings if f.check_id == CHECK]


@pytest.fixture(scope="module")
def findings() -> dict[str, Finding]:
    return {f.location.input.name: f for f in _scan(vulnerable_app()) if f.location.input}


def test_reflected_unquoted(findings: dict[str, Finding]) -> None:
    f = findings["host"]
    assert f.confidence == "confirmed" and f.cwe == 78 and f.severity == "critical"
    assert f.location.path == "/ping" and f.location.input and f.location.input.in_ == "form"
    assert "echo" in f.reproduction.curl


def test_reflected_inside_single_quotes(findings: dict[str, Finding]) -> None:
    assert findings["name"].confidence == "confirmed"


@pytest.mark.slow
def test_blind_time_based(findings: dict[str, Finding]) -> None:
    f = findings["label"]
    assert f.confidence == "confirmed" and "time-based" in f.title
    assert "r.elapsed.total_seconds() >=" in f.reproduction.pytest


def test_reproduction_fails_while_flawed_and_passes_once_fixed(findings: dict[str, Finding]) -> None:
    for name in ("host", "name"):
        source = findings[name].reproduction.pytest
        assert not reproduction_passes(source)
        assert reproduction_passes(source, replace=("vulnerable_app()", "safe_app()"))


def test_safe_app_scans_clean() -> None:
    assert _scan(safe_app()) == []


def test_fires_on_demo_flaw(scan_demo) -> None:
    result = scan_demo(flaws="command_injection", checks=[CHECK])
    hits = findings_of(result, CHECK)
    assert hits and all(f.confidence == "confirmed" for f in hits)
    assert {f.location.path for f in hits} == {"/tools/ping"}
    assert {f.location.input.name for f in hits if f.location.input} == {"host"}


def test_silent_on_hardened_demo(scan_demo) -> None:
    result = scan_demo(flaws="none", checks=[CHECK])
    assert all(not c.errors for c in result.checks), [c.errors for c in result.checks]
    assert [f.title for f in result.findings if f.check_id == CHECK] == []


def test_request_budget_per_input() -> None:
    result = run_scan(Target.from_app(safe_app(), spec=f"{__name__}:safe_app()"), _surface(),
                      ScanOptions(checks=[CHECK]))
    # 12 probes, plus 1-2 sensor-only probes (bastion/checks/injection/command.py, sensor_only_command).
    assert result.checks[0].requests <= 14 * len(result.checks[0].units)


def test_silent_on_hardened_fastapi_demo(scan_demo) -> None:
    result = scan_demo(flaws="none", checks=[CHECK], framework="fastapi")
    assert all(not c.errors for c in result.checks)
    assert [f.title for f in result.findings if f.check_id == CHECK] == []
