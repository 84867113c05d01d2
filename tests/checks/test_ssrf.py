"""ssrf.request-forgery: the loopback listener proves a fetch; the sensors show internal addresses."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from flask import Flask, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.listener import LoopbackListener
from bastion.target.target import Target
from bastion.testing import findings_of, scan_app

CHECK = "ssrf.request-forgery"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetching_app() -> Flask:
    """A link-preview service: one fetcher per route, vulnerable and safe near-misses."""
    app = Flask(__name__)

    def fetch(url: str) -> str:
        try:
            with _OPENER.open(url, timeout=3) as resp:
                return f"fetched {resp.status}"
        except Exception as exc:  # the preview is best effort
            return f"failed: {type(exc).__name__}"

    @app.get("/preview")
    def preview() -> str:
        return fetch(request.args.get("link", ""))

    @app.post("/avatar")
    def avatar() -> str:
        body = request.get_json(silent=True) or {}
        return fetch(str(body.get("imageUrl", "")))

    @app.get("/safe/preview")
    def safe_preview() -> tuple[str, int]:
        url = request.args.get("link", "")
        if urlsplit(url).hostname not in ("cdn.example.com",):
            return "host not allowed", 400
        return fetch(url), 200

    @app.get("/safe/echo")
    def safe_echo() -> str:
        return "you sent " + request.args.get("callback", "")  # stored or shown, never fetched

    @app.get("/search")
    def search() -> str:
        return "results for " + request.args.get("q", "")

    return app


SURFACE = Surface([
    EntryPoint("GET", "/preview", [Input("query", "link")]),
    EntryPoint("POST", "/avatar", [Input("json", "imageUrl")]),
    EntryPoint("GET", "/safe/preview", [Input("query", "link")]),
    EntryPoint("GET", "/safe/echo", [Input("query", "callback")]),
    EntryPoint("GET", "/search", [Input("query", "q", example="https://example.com/x")]),
])


@pytest.fixture(scope="module")
def result() -> ScanResult:
    return scan_app(fetching_app(), SURFACE, checks=[CHECK])


def test_fetching_inputs_are_confirmed_by_the_listener(result: ScanResult) -> None:
    found = {f.location.path: f for f in findings_of(result, CHECK)}
    assert set(found) == {"/preview", "/avatar"}
    for f in found.values():
        assert f.confidence == "confirmed" and f.cwe == 918
        assert any("loopback listener received" in e.content for e in f.evidence)


def test_internal_addresses_are_seen_by_the_sensors_and_blocked(result: ScanResult) -> None:
    f = next(f for f in findings_of(result, CHECK) if f.location.path == "/preview")
    internal = next(e.content for e in f.evidence if e.summary == "internal addresses")
    assert "169.254.169.254:80 (blocked by Bastion's egress guard)" in internal
    assert "2852039166" in internal and "0xa9fea9fe" in internal  # decimal and hex spellings tried
    assert any(e.summary == "redirects followed" for e in f.evidence)


def test_findings_are_deterministic(result: ScanResult) -> None:
    again = scan_app(fetching_app(), SURFACE, checks=[CHECK])
    assert [f.public_dict() for f in again.findings] == [f.public_dict() for f in result.findings]


def test_url_target_off_loopback_is_skipped() -> None:
    result = run_scan(Target.from_url("http://192.0.2.10:8080"), SURFACE, ScanOptions(checks=[CHECK]))
    assert findings_of(result, CHECK) == [] and result.requests == 0


def test_listener_records_canary_paths_and_redirects() -> None:
    with LoopbackListener() as listener:
        assert _OPENER.open(listener.url("bstlisten01")).read() == b"bastion listener\n"
        with pytest.raises(OSError):  # redirected to a closed port
            _OPENER.open(listener.redirect_url("bstlisten02", "http://127.0.0.1:9/x"), timeout=3)
        assert [h.path for h in listener.hits_for("bstlisten01")] == ["/bstlisten01"]
        assert len(listener.hits_for("bstlisten02")) == 1
    assert listener.hits_for("bstother") == []


def test_demo_webhook_ssrf_found_as_a_signed_in_role(scan_demo: Callable[..., ScanResult]) -> None:
    findings = findings_of(scan_demo(flaws="webhook_ssrf", checks=[CHECK]), CHECK)
    assert [(f.location.path, f.location.input.name) for f in findings] == [("/api/webhooks/test", "url")]
    assert findings[0].role is not None and findings[0].location.file.endswith("bastion/demo/integrations.py")


def test_demo_hardened_twin_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    assert findings_of(scan_demo(flaws="none", checks=[CHECK]), CHECK) == []
