"""Sensors on the demo: the runtime flaws' findings carry sensor evidence with the app's file:line."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from bastion.engine.runner import ScanOptions, ScanResult, _sensing, _sensor_session, run_scan
from bastion.findings.model import Confidence, Finding
from bastion.session import plan_scan
from bastion.target.client import ProbeClient
from bastion.target.target import Target

CASES = [
    ("sqli_error", "injection.sql", "sql", "SELECT"),
    ("sqli_boolean", "injection.sql", "sql", "SELECT"),
    ("sqli_time", "injection.sql", "sql", "SLEEP"),
    ("command_injection", "injection.command", "subprocess", "/bin/sh -c"),
    ("path_traversal", "injection.path-traversal", "open", "../"),
    ("code_injection", "injection.code", "compile", "bst"),
    ("ssti", "injection.ssti", "template", "Welcome back, {{"),  # the template source, not its compiled code
]


def _sensor_evidence(f: Finding) -> list[Any]:
    return [e for e in f.evidence if e.kind == "sensor"]


@pytest.mark.parametrize(("flaw", "check", "kind", "text"), CASES)
def test_runtime_flaw_findings_carry_sensor_evidence(scan_demo: Callable[..., ScanResult], flaw: str,
                                                     check: str, kind: str, text: str) -> None:
    findings = [f for f in scan_demo(flaws=flaw, checks=[check]).findings if f.check_id == check]
    assert findings
    for f in findings:
        sensor = _sensor_evidence(f)
        assert sensor, f"{flaw}: no sensor evidence on {f.location.label()}"
        assert all(e.meta["sensor"] == kind for e in sensor)
        assert any(text in e.content for e in sensor)
        assert all(e.meta["file"] == "src/bastion/demo/flask_app.py" or e.meta["file"].endswith(
            "bastion/demo/flask_app.py") for e in sensor)
        assert all(int(e.meta["line"]) > 0 for e in sensor)
        assert f.confidence == Confidence.confirmed


def test_hardened_twin_still_scans_clean(scan_demo: Callable[..., ScanResult]) -> None:
    checks = sorted({c for _, c, _, _ in CASES})
    result = scan_demo(flaws="none", checks=checks)
    assert result.findings == []
    assert not [c.errors for c in result.checks if c.errors]


def test_sensor_evidence_is_deterministic(scan_demo: Callable[..., ScanResult]) -> None:
    from bastion.session import scan_from_options

    again = scan_from_options(demo=True, flaws="code_injection", checks=["injection.code"])
    first = scan_demo(flaws="code_injection", checks=["injection.code"])
    assert [f.public_dict() for f in again.findings] == [f.public_dict() for f in first.findings]


def test_sensors_off_adds_no_sensor_evidence() -> None:
    plan = plan_scan(demo=True, flaws="path_traversal", checks=["injection.path-traversal"])
    plan.options.sensors = False
    result = run_scan(plan.target, plan.surface, plan.options)
    assert result.findings and not any(_sensor_evidence(f) for f in result.findings)


def _calls_out(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A WSGI app that tries to reach TEST-NET-1 (never routed) and reports what happened."""
    try:
        socket.create_connection(("192.0.2.1", 80), timeout=0.01).close()
        body = b"connected"
    except PermissionError as exc:
        body = f"blocked: {exc}".encode()
    except OSError as exc:
        body = f"oserror: {exc}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def test_egress_guard_blocks_an_in_process_app_inside_its_worker_thread() -> None:
    target = Target.from_app(_calls_out, spec="")
    sensors = _sensor_session(target, [], ScanOptions())
    assert sensors is not None

    async def go() -> str:
        async with _sensing(sensors), ProbeClient(target) as client:
            return (await client.request("GET", "/")).text

    text = asyncio.run(go())
    assert text.startswith("blocked: bastion egress guard: 192.0.2.1:80")
    assert [e.detail for e in sensors.of_kind("egress-blocked")] == ["192.0.2.1:80"]


def test_url_targets_get_no_sensor_session() -> None:
    assert _sensor_session(Target.from_url("http://127.0.0.1:9"), [], ScanOptions()) is None
