"""Route correlation on the demo, the reachable/unreachable ranking, and the merge with DAST findings.

The demo keeps every flaw next to its safe twin in the same function (`planted(...)` branches), so
static analysis of the demo source cannot be "silent on the hardened twin": the oracle here is the
route level (each code-level flaw's route gets its static finding). Silence is tested on the
separate hardened sample apps (tests/static/apps/safe_*.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

import bastion.demo.fastapi_app as fastapi_module
import bastion.demo.flask_app as flask_module
from bastion.engine.runner import ScanResult
from bastion.findings.model import Finding
from bastion.report.sarif import sarif_document
from bastion.session import demo_target
from bastion.static import merge_with_dast, run_static
from bastion.surface.discover import discover_surface

# Code-level demo flaws -> (threat, method, path, input) the static finding must be tied to.
CODE_FLAWS = {
    "sqli_error": ("injection.sql", "GET", "/products", ("query", "category")),
    "sqli_boolean": ("injection.sql", "POST", "/api/invoices/search", ("json", "filter.status")),
    "sqli_time": ("injection.sql", "GET", "/api/stats", ("header", "X-Tenant")),
    "xss_reflected": ("injection.xss-reflected", "GET", "/search", ("query", "q")),
    "xss_upload_filename": ("injection.xss-reflected", "POST", "/upload", ("multipart", "document")),
    "path_traversal": ("injection.path-traversal", "GET", "/files/{name}", ("path", "name")),
    "command_injection": ("injection.command", "POST", "/tools/ping", ("form", "host")),
    "ssti": ("injection.ssti", "GET", "/", ("cookie", "display_name")),
    "code_injection": ("injection.code", "GET", "/tools/calc", ("query", "expr")),
    "open_redirect": ("injection.open-redirect", "POST", "/login", ("form", "next")),
    "xxe": ("injection.xxe", "POST", "/api/import", None),
    "insecure_session_cookie": ("headers.cookie-flags", "GET", "/", None),
}


@pytest.fixture(scope="module")
def flask_static() -> list[Finding]:
    surface = discover_surface(demo_target("all"), crawl=False)
    return run_static([flask_module.__file__, fastapi_module.__file__], surface).findings


def _on_route(findings: list[Finding], threat: str, method: str, path: str) -> list[Finding]:
    return [f for f in findings if f.threat_id == threat and f.location.method == method
            and f.location.path == path]


@pytest.mark.parametrize("flaw", sorted(CODE_FLAWS))
def test_each_code_flaw_route_gets_its_static_finding(flaw: str, flask_static: list[Finding]) -> None:
    threat, method, path, inp = CODE_FLAWS[flaw]
    found = _on_route(flask_static, threat, method, path)
    assert found, f"{flaw}: no static {threat} finding on {method} {path}"
    f = found[0]
    assert f.location.file and f.location.file.endswith("flask_app.py") and f.location.line
    assert f.evidence[0].meta["reachable"] == "true" and f.evidence[0].meta["route"] == f"{method} {path}"
    if inp is not None:
        assert any(g.location.input and (g.location.input.in_, g.location.input.name) == inp for g in found)


def test_findings_no_route_reaches_rank_lower(flask_static: list[Finding]) -> None:
    # The FastAPI module's handlers are not routes of the Flask surface: same flaw, unreachable.
    unreachable = [f for f in flask_static if f.location.file and f.location.file.endswith("fastapi_app.py")
                   and f.check_id == "static.sql-string-building"]
    reachable = [f for f in flask_static if f.location.path == "/products"
                 and f.check_id == "static.sql-string-building"]
    assert unreachable and reachable
    assert unreachable[0].evidence[0].meta["reachable"] == "false"
    assert unreachable[0].severity.rank == reachable[0].severity.rank - 1
    assert flask_static.index(reachable[0]) < flask_static.index(unreachable[0])


def test_app_wide_configuration_is_not_lowered(flask_static: list[Finding]) -> None:
    debug = next(f for f in flask_static if f.check_id == "static.debug-enabled")
    assert debug.evidence[0].meta["reachable"] == "app" and debug.severity.value == "high"


def test_fastapi_surface_correlates_fastapi_handlers() -> None:
    surface = discover_surface(demo_target("all", framework="fastapi"), crawl=False)
    findings = run_static([fastapi_module.__file__], surface, bandit=False).findings
    routes = {(f.threat_id, f.location.method, f.location.path) for f in findings}
    assert {("injection.sql", "GET", "/products"), ("injection.ssti", "GET", "/"),
            ("injection.xss-reflected", "GET", "/search"), ("injection.code", "GET", "/tools/calc")} <= routes


@pytest.fixture(scope="module")
def merged(scan_demo: Callable[..., ScanResult]) -> tuple[ScanResult, ScanResult]:
    dast = scan_demo(flaws="all")
    static = run_static([flask_module.__file__], dast.surface).findings
    return dast, merge_with_dast(dast, static)


@pytest.mark.parametrize("flaw", sorted(CODE_FLAWS))
def test_merged_run_ties_confirmed_dast_findings_to_source(flaw: str, merged: tuple[ScanResult, ScanResult]) -> None:
    dast, result = merged
    threat, method, path, _ = CODE_FLAWS[flaw]
    runtime = _on_route(result.findings, threat, method, path)
    runtime = [f for f in runtime if not f.check_id.startswith("static.")]
    assert runtime, f"{flaw}: DAST did not report {threat} on {method} {path}"
    with_source = [f for f in runtime if any(e.kind == "source" for e in f.evidence)]
    assert with_source, f"{flaw}: the runtime finding was not merged with its static finding"
    f = with_source[0]
    assert f.confidence.value == "confirmed"
    original = {d.fingerprint: d for d in dast.findings}[f.fingerprint]
    assert f.title == original.title and len(f.evidence) > len(original.evidence)
    # The static finding was absorbed, not listed a second time on the same route.
    assert not [s for s in _on_route(result.findings, threat, method, path) if s.check_id.startswith("static.")
                and s.location.input == f.location.input]


def test_merge_keeps_every_dast_finding_and_adds_static_only_ones(merged: tuple[ScanResult, ScanResult]) -> None:
    dast, result = merged
    fingerprints = {f.fingerprint for f in result.findings}
    assert {f.fingerprint for f in dast.findings} <= fingerprints
    assert any(f.check_id.startswith("static.") for f in result.findings)
    assert [f.sort_key() for f in result.findings] == sorted(f.sort_key() for f in result.findings)


def test_merged_run_sarif_validates(merged: tuple[ScanResult, ScanResult]) -> None:
    path = Path(__file__).resolve().parents[1] / "report" / "report_sarif_schema.py"
    spec = importlib.util.spec_from_file_location("report_sarif_schema_for_static", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.assert_valid_sarif(sarif_document(merged[1]))
