"""deserialization.untrusted-data: pickle, YAML, jsonpickle and marshal loaders seen by the sensors."""

from __future__ import annotations

import base64
import json
import marshal
import pickle
from collections.abc import Callable

import jsonpickle
import pytest
import yaml
from flask import Flask, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target
from bastion.testing import findings_of, scan_app

CHECK = "deserialization.untrusted-data"


def loader_app() -> Flask:
    """Vulnerable loaders next to safe near-misses, third-party style."""
    app = Flask(__name__)

    @app.get("/cart")
    def cart() -> str:
        raw = request.cookies.get("cart", "")
        try:
            items = pickle.loads(base64.b64decode(raw))  # noqa: S301
        except Exception:
            items = []
        return f"{len(items) if isinstance(items, list) else 0} items"

    @app.post("/workflow")
    def workflow() -> str:
        try:
            yaml.unsafe_load(request.get_data(as_text=True))
        except yaml.YAMLError:
            return "bad yaml", 400
        return "ok"

    @app.post("/state")
    def state() -> str:
        doc = str((request.get_json(silent=True) or {}).get("state", ""))
        try:
            jsonpickle.decode(doc)
        except Exception:
            return "bad state", 400
        return "restored"

    @app.get("/cache")
    def cache() -> str:
        try:
            marshal.loads(base64.b64decode(request.args.get("entry", "")))
        except Exception:
            return "miss"
        return "hit"

    @app.post("/safe/workflow")
    def safe_workflow() -> str:
        try:
            yaml.safe_load(request.get_data(as_text=True))
        except yaml.YAMLError:
            return "bad yaml", 400
        return "ok"

    @app.get("/safe/cart")
    def safe_cart() -> str:
        try:
            items = json.loads(base64.b64decode(request.cookies.get("cart", "")))
        except Exception:
            items = []
        return f"{len(items) if isinstance(items, list) else 0} items"

    @app.post("/safe/echo")
    def safe_echo() -> str:
        # Code that compiles request text is code injection, not deserialization: not this check's.
        return "echo " + request.get_data(as_text=True)[:200]

    return app


SURFACE = Surface([
    EntryPoint("GET", "/cart", [Input("cookie", "cart")]),
    EntryPoint("POST", "/workflow", [Input("body", "body")]),
    EntryPoint("POST", "/state", [Input("json", "state")]),
    EntryPoint("GET", "/cache", [Input("query", "entry")]),
    EntryPoint("POST", "/safe/workflow", [Input("body", "body")]),
    EntryPoint("GET", "/safe/cart", [Input("cookie", "cart")]),
    EntryPoint("POST", "/safe/echo", [Input("body", "body")]),
])


@pytest.fixture(scope="module")
def result() -> ScanResult:
    return scan_app(loader_app(), SURFACE, checks=[CHECK])


def test_each_unsafe_loader_is_confirmed_by_the_sensors(result: ScanResult) -> None:
    found = {f.location.path: f for f in findings_of(result, CHECK)}
    assert set(found) == {"/cart", "/workflow", "/state", "/cache"}
    assert "(pickle)" in found["/cart"].title and "(yaml)" in found["/workflow"].title
    assert "(jsonpickle)" in found["/state"].title and "(marshal)" in found["/cache"].title
    for f in found.values():
        assert f.confidence == "confirmed" and f.cwe == 502 and f.severity == "critical"
        sensor = [e for e in f.evidence if e.kind == "sensor"]
        assert sensor, f.location.path
        assert sensor[0].meta["file"].endswith("test_deserialization.py") and int(sensor[0].meta["line"]) > 0
        assert f.location.file and f.location.file.endswith("test_deserialization.py")


def test_without_sensors_nothing_is_guessed() -> None:
    target = Target.from_app(loader_app(), spec="tests:app")
    result = run_scan(target, SURFACE, ScanOptions(checks=[CHECK], sensors=False))
    assert findings_of(result, CHECK) == []
    assert result.requests == 0


def test_demo_pickle_and_yaml_imports_found(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="pickle_import,yaml_load", checks=[CHECK])
    located = {(f.location.path, f.location.input.name) for f in findings_of(result, CHECK)}  # type: ignore[union-attr]
    assert located == {("/api/preferences/import", "blob"), ("/api/rules/import", "body")}
    for f in findings_of(result, CHECK):
        assert f.location.file.endswith("bastion/demo/integrations.py")


def test_demo_hardened_twin_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    assert findings_of(scan_demo(flaws="none", checks=[CHECK]), CHECK) == []
