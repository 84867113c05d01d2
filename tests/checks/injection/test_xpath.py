"""injection.xpath: sensor-confirmed evaluation, error-based and boolean-based, safe near-misses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, jsonify, request
from lxml import etree

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target
from bastion.testing import findings_of, scan_app

CHECK = "injection.xpath"
USERS = etree.fromstring(b"<users><user name='ann' role='admin'/><user name='ben' role='staff'/></users>")


def xml_store_app() -> Flask:
    app = Flask(__name__)

    @app.get("/users")
    def users() -> object:
        # Quiet: errors become an empty list, results are only counted.
        try:
            found = USERS.xpath(f"//user[@name='{request.args.get('name', '')}']")
        except etree.XPathError:
            found = []
        return jsonify(count=len(found))

    @app.get("/role")
    def role() -> object:
        try:
            found = etree.XPath(f'//user[@role="{request.args.get("role", "")}"]/@name')(USERS)
        except etree.XPathError as exc:
            return f"lxml.etree.XPathEvalError: {exc}", 500
        return jsonify(names=list(found))

    @app.get("/safe/users")
    def safe_users() -> object:
        found = USERS.xpath("//user[@name=$name]", name=request.args.get("name", ""))
        return jsonify(count=len(found))

    @app.get("/safe/echo")
    def safe_echo() -> str:
        return "no user " + request.args.get("name", "")

    return app


SURFACE = Surface([
    EntryPoint("GET", "/users", [Input("query", "name")]),
    EntryPoint("GET", "/role", [Input("query", "role")]),
    EntryPoint("GET", "/safe/users", [Input("query", "name")]),
    EntryPoint("GET", "/safe/echo", [Input("query", "name")]),
])


@pytest.fixture(scope="module")
def result() -> ScanResult:
    return scan_app(xml_store_app(), SURFACE, checks=[CHECK])


def test_evaluated_injection_is_confirmed_by_the_sensor_function(result: ScanResult) -> None:
    found = {f.location.path: f for f in findings_of(result, CHECK)}
    assert set(found) == {"/users", "/role"}
    for f in found.values():
        assert f.confidence == "confirmed" and f.cwe == 643 and "seen by the sensors" in f.title
        sensor = [e for e in f.evidence if e.kind == "sensor"]
        assert sensor and sensor[0].meta["file"].endswith("test_xpath.py")


def test_without_sensors_error_and_boolean_techniques() -> None:
    target = Target.from_app(xml_store_app(), spec="tests:app")
    result = run_scan(target, SURFACE, ScanOptions(checks=[CHECK], sensors=False))
    found = {f.location.path: f.title for f in findings_of(result, CHECK)}
    assert found == {"/users": "XPath injection in query input 'name' (boolean-based)",
                     "/role": "XPath injection in query input 'role' (error-based)"}


def test_demo_xpath_injection_found(scan_demo: Callable[..., ScanResult]) -> None:
    findings = findings_of(scan_demo(flaws="xpath_injection", checks=[CHECK]), CHECK)
    assert [(f.location.path, f.location.input.name) for f in findings] == [("/api/catalog/lookup", "sku")]


def test_demo_hardened_twin_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    assert findings_of(scan_demo(flaws="none", checks=[CHECK]), CHECK) == []
