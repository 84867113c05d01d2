"""fuzz.* on the demo: the crash flaw is found with a shrunk reproduction; the hardened twin scans clean."""

from __future__ import annotations

import json

from bastion.engine.runner import ScanResult

CRASH_PATH = "/api/reports/basket"


def _fuzz_findings(result: ScanResult) -> list:
    return [f for f in result.findings if f.check_id.startswith("fuzz.")]


def test_fuzz_crash_fires_on_the_demo_flaw(scan_demo) -> None:
    result = scan_demo(flaws="fuzz_crash", checks=["fuzz"])
    [crash] = [f for f in result.findings if f.check_id == "fuzz.crash" and f.location.path == CRASH_PATH]
    assert crash.location.method == "POST"
    assert crash.confidence.value == "confirmed"
    example = next(e for e in crash.evidence if e.summary.startswith("minimal example"))
    assert json.loads(example.content)["json:quantities"] == []
    assert "quantities" in crash.reproduction.curl and "[]" in crash.reproduction.curl
    assert "def test_" in crash.reproduction.pytest and "(500,)" in crash.reproduction.pytest
    assert not [c.errors for c in result.checks if c.errors]


def test_fuzz_contract_and_sink_fire_on_the_demo_flaws(scan_demo) -> None:
    result = scan_demo(flaws="fuzz_contract,command_injection", checks=["fuzz"])
    found = {(f.check_id, f.location.path) for f in result.findings}
    assert ("fuzz.contract", CRASH_PATH) in found and ("fuzz.crash", CRASH_PATH) not in found
    [contract] = [f for f in result.findings if f.check_id == "fuzz.contract"]
    assert "/discount" in contract.title and "does not match the documented schema" in contract.title
    [sink] = [f for f in result.findings if f.check_id == "fuzz.sink"]
    assert sink.location.path == "/tools/ping" and sink.confidence.value == "confirmed"
    assert any(e.kind == "sensor" for e in sink.evidence)


def test_fuzz_checks_are_silent_on_the_hardened_twin(scan_demo) -> None:
    result = scan_demo(flaws="none", checks=["fuzz"])
    assert [(f.check_id, f.location.method, f.location.path, f.title) for f in _fuzz_findings(result)] == []
    assert not [c.errors for c in result.checks if c.errors]


def test_fuzz_budget_zero_disables_fuzzing() -> None:
    from bastion.engine.runner import run_scan
    from bastion.session import plan_scan

    plan = plan_scan(demo=True, flaws="fuzz_crash", checks=["fuzz.crash"], fuzz_budget=0)
    result = run_scan(plan.target, plan.surface, plan.options)
    assert result.findings == [] and result.requests == 0
    assert {r.skipped for r in result.checks[0].unit_records} == {"fuzzing disabled (--fuzz-budget 0)"}
