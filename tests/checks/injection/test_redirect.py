"""injection.open-redirect against small apps: Location, meta refresh, script, bypassable filters."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest
from flask import Flask, Response, redirect, request, url_for

from bastion.checks.injection.redirect import browser_resolve
from bastion.engine.runner import ScanResult
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.testing import scan_app

REDIRECT = "injection.open-redirect"


def _scan(app: Flask, surface: Surface) -> ScanResult:
    result = scan_app(app, surface, checks=[REDIRECT], spec="tests:app")
    return result


def _ep(path: str, name: str, location: str = "query", method: str = "GET", example: str | None = None,
        ) -> EntryPoint:
    return EntryPoint(method, path, [Input(location, name, example=example)])  # type: ignore[arg-type]


def redirect_app() -> Flask:
    app = Flask("redirects")

    @app.get("/login")
    def login() -> Response:
        return redirect(request.args.get("next", "/"))

    @app.get("/leaving")
    def leaving() -> str:
        to = request.args.get("to", "/")
        return f'<html><head><meta http-equiv="refresh" content="0; url={to}"></head></html>'

    @app.get("/bounce")
    def bounce() -> str:
        return f"<html><body><script>window.location = {json.dumps(request.args.get('dest', '/'))};</script>"

    @app.get("/switch")
    def switch() -> Response:
        # A name no list would guess: found because the baseline redirects to the value.
        return redirect(request.args.get("p", "/"))

    @app.post("/sso")
    def sso() -> Response:
        # Filter a browser walks past: `//host` and `/\\host` both start with "/".
        target = request.form.get("continue", "/")
        return redirect(target if target.startswith("/") else "/")

    @app.get("/refresh")
    def refresh() -> Response:
        return Response("moved", headers={"Refresh": f"0; url={request.args.get('back', '/')}"})

    @app.get("/out/<path:url>")
    def out(url: str) -> Response:
        return redirect(url)

    @app.get("/r/<path:rest>")
    def short(rest: str) -> Response:
        # Looks bad, but werkzeug percent-encodes backslashes and `//` never survives the router.
        return redirect("/" + rest)

    return app


def safe_app() -> Flask:
    app = Flask("safe_redirects")

    def same_site(value: str) -> str:
        parsed = urlparse(value.replace("\\", "/"))
        ok = value.startswith("/") and not value.startswith("//") and not parsed.netloc and "\\" not in value
        return value if ok else "/"

    @app.get("/")
    def index() -> str:
        return "home"

    @app.get("/login")
    def login() -> Response:
        return redirect(same_site(request.args.get("next", "/")))

    @app.get("/leaving")
    def leaving() -> Response:
        # The value is kept as a parameter of a same-site URL.
        return redirect(url_for("index", next=request.args.get("to", "")))

    @app.get("/api/next")
    def api_next() -> Response:
        return Response(json.dumps({"next": request.args.get("url", "")}), mimetype="application/json")

    @app.get("/link")
    def link() -> str:
        return f'<html><body><a href="{request.args.get("url", "")}">continue</a></body></html>'

    @app.get("/page")
    def page() -> str:
        return f"page {request.args.get('page', '1')}"

    @app.get("/r/<path:rest>")
    def short(rest: str) -> Response:
        return redirect(same_site("/" + rest))

    return app


@pytest.fixture(scope="module")
def vulnerable_result() -> ScanResult:
    return _scan(redirect_app(), Surface([
        _ep("/login", "next"), _ep("/leaving", "to"), _ep("/bounce", "dest"), _ep("/switch", "p"),
        _ep("/sso", "continue", location="form", method="POST"), _ep("/out/{url}", "url", location="path"),
        _ep("/refresh", "back"), _ep("/r/{rest}", "rest", location="path"),
    ]))


@pytest.mark.parametrize(("path", "where", "name", "via"), [
    ("/login", "query", "next", "Location header"),
    ("/leaving", "query", "to", "meta refresh"),
    ("/bounce", "query", "dest", "script location"),
    ("/switch", "query", "p", "Location header"),
    ("/sso", "form", "continue", "Location header"),
    ("/out/{url}", "path", "url", "Location header"),
    ("/refresh", "query", "back", "Refresh header"),
])
def test_open_redirect_fires(vulnerable_result: ScanResult, path: str, where: str, name: str,
                             via: str) -> None:
    hits = [f for f in vulnerable_result.findings if f.location.path == path]
    assert len(hits) == 1, [f.title for f in vulnerable_result.findings]
    f = hits[0]
    assert f.check_id == REDIRECT and f.confidence == "confirmed" and f.severity == "medium" and f.cwe == 601
    assert f.location.input is not None and (f.location.input.in_, f.location.input.name) == (where, name)
    assert via in f.title and ".example" in f.evidence[0].summary
    assert f.reproduction.curl


def test_werkzeug_encoded_path_redirect_is_not_reported(vulnerable_result: ScanResult) -> None:
    assert not [f for f in vulnerable_result.findings if f.location.path == "/r/{rest}"]


def test_open_redirect_silent_on_safe_app() -> None:
    result = _scan(safe_app(), Surface([
        _ep("/login", "next"), _ep("/leaving", "to"), _ep("/api/next", "url"), _ep("/link", "url"),
        _ep("/page", "page"), _ep("/r/{rest}", "rest", location="path"),
    ]))
    assert result.findings == []


@pytest.mark.parametrize(("location", "host"), [
    ("//evil.example/", "evil.example"),
    ("/\\evil.example/", "evil.example"),
    ("\\\\evil.example", "evil.example"),
    ("///evil.example", "evil.example"),
    (" \t//evil.example", "evil.example"),
    ("https:evil.example", "site.local"),
    ("http:evil.example", "evil.example"),
    ("https://site.local@evil.example/", "evil.example"),
    ("/a/b?next=//evil.example", "site.local"),
    ("evil.example", "site.local"),
])
def test_browser_resolve_matches_browser_parsing(location: str, host: str) -> None:
    resolved = browser_resolve("https://site.local/login?next=x", location)
    assert resolved is not None and resolved.host == host


# --- demo oracle ---------------------------------------------------------------------------------

# The same tuple in every injection-client test module, so the session cache scans the demo once.
CLIENT_CHECKS = ("injection.crlf", "injection.open-redirect", "injection.xss-reflected",
                 "injection.xss-stored", "injection.xxe")


def _located(result: ScanResult, check_id: str) -> set[tuple[str, str, str, str]]:
    return {(f.location.method or "", f.location.path or "", f.location.input.in_, f.location.input.name)
            for f in result.findings if f.check_id == check_id and f.location.input is not None}


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_open_redirect_found(scan_demo, framework: str) -> None:  # type: ignore[no-untyped-def]
    result = scan_demo(flaws="all", checks=CLIENT_CHECKS, framework=framework)
    expected = {("GET", "/logout", "query", "next"), ("POST", "/login", "form", "next")}
    assert _located(result, REDIRECT) == expected
    assert all(f.confidence == "confirmed" for f in result.findings if f.check_id == REDIRECT)


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_hardened_twin_has_no_open_redirect(scan_demo, framework: str) -> None:  # type: ignore[no-untyped-def]
    result = scan_demo(flaws="none", checks=CLIENT_CHECKS, framework=framework)
    assert not [f for f in result.findings if f.check_id == REDIRECT]
    assert all(not c.errors for c in result.checks)
