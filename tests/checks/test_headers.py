"""headers.* against small third-party-style apps (Flask, FastAPI) and the demo."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from flask import Flask, Response, jsonify

from bastion.checks.headers import csp_weakness, effective_referrer_policy, hsts_max_age, parse_set_cookie
from bastion.engine.runner import ScanResult
from bastion.findings.model import Finding
from bastion.surface.model import EntryPoint, Surface
from bastion.target.exchange import Exchange, SentRequest
from bastion.testing import scan_app

HEADER_CHECKS = ["headers.csp-missing", "headers.xcto-missing", "headers.frame-options-missing",
                 "headers.hsts-missing", "headers.referrer-policy-missing", "headers.cookie-flags"]
STRICT_CSP = ("default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
              "frame-ancestors 'none'")
PAGE = "<!doctype html><html><body><p>hello</p></body></html>"


def _scan(app: object, surface: Surface, checks: list[str] | None = None, https: bool = True) -> ScanResult:
    base = "https://app.example.test" if https else "http://app.example.test"
    result = scan_app(app, surface, checks=checks or HEADER_CHECKS, spec="tests:app", base_url=base)
    return result


def _by_check(result: ScanResult) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in result.findings:
        out.setdefault(f.check_id, []).append(f)
    return out


def _surface(*paths: str) -> Surface:
    return Surface([EntryPoint("GET", p) for p in paths])


# --- apps --------------------------------------------------------------------------------------

def bare_flask_app() -> Flask:
    """A typical app nobody hardened: no headers, a Flask session cookie, a JSON API."""
    app = Flask("bare")
    app.secret_key = "test-only"

    @app.get("/")
    def home() -> str:
        from flask import session
        session["visited"] = True
        return PAGE

    @app.get("/about")
    def about() -> str:
        return PAGE

    @app.get("/api/items")
    def items() -> Response:
        return jsonify([1, 2])

    return app


def hardened_flask_app(csp: str = STRICT_CSP) -> Flask:
    app = Flask("hardened")

    @app.get("/")
    def home() -> Response:
        resp = Response(PAGE, mimetype="text/html")
        resp.set_cookie("session_id", "abc123", secure=True, httponly=True, samesite="Lax")
        # A CSRF token cookie is meant to be read by scripts: no HttpOnly needed.
        resp.set_cookie("csrftoken", "t0k3n", secure=True, samesite="Strict")
        # Not session-like at all: never reported.
        resp.set_cookie("theme", "dark")
        return resp

    @app.get("/api/items")
    def items() -> Response:
        return jsonify([1, 2])

    @app.after_request
    def harden(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = csp
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        resp.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        return resp

    return app


def near_miss_app() -> Flask:
    """Protected in less common but valid ways: CSP frame-ancestors only, nonce CSP, meta referrer."""
    app = Flask("near_miss")

    @app.get("/")
    def home() -> Response:
        body = ('<!doctype html><html><head><meta name="referrer" content="no-referrer"></head>'
                "<body>hi</body></html>")
        resp = Response(body, mimetype="text/html")
        resp.headers["Content-Security-Policy"] = (
            "script-src 'nonce-r4nd0m' 'unsafe-inline' 'strict-dynamic'; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'self'")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Strict-Transport-Security"] = "max-age=31536000"
        # Deleting a session cookie needs no flags.
        resp.set_cookie("session", "", expires=0)
        return resp

    @app.get("/redirect")
    def redirect_home() -> Response:
        resp = Response("", status=302, headers={"Location": "/"})
        return resp

    return app


# --- site-wide header findings ------------------------------------------------------------------

def test_bare_app_is_reported_once_per_header_with_paths() -> None:
    result = _scan(bare_flask_app(), _surface("/", "/about", "/api/items"))
    found = _by_check(result)
    for cid in ("headers.csp-missing", "headers.frame-options-missing", "headers.referrer-policy-missing",
                "headers.xcto-missing", "headers.hsts-missing"):
        assert len(found[cid]) == 1, cid
        f = found[cid][0]
        assert f.confidence == "confirmed"
        assert f.location.path == "/"
        assert f.reproduction.curl and "flaw_signs" in f.reproduction.pytest
    # CSP and framing are about HTML documents: the JSON API is not listed; nosniff applies to it.
    csp_note = [e for e in found["headers.csp-missing"][0].evidence if e.kind == "note"][0]
    assert "/about" in csp_note.content and "/api/items" not in csp_note.content
    xcto_note = [e for e in found["headers.xcto-missing"][0].evidence if e.kind == "note"][0]
    assert "/api/items" in xcto_note.content


def test_bare_app_session_cookie_flags() -> None:
    result = _scan(bare_flask_app(), _surface("/"), ["headers.cookie-flags"])
    (f,) = result.findings
    assert f.location.input is not None and f.location.input.name == "session"
    assert "Secure" in f.title and "SameSite" in f.title and "HttpOnly" not in f.title  # Flask sets HttpOnly
    assert f.severity == "medium" and f.confidence == "confirmed"
    # Each missing flag has its own condition, so adding any of them makes the reproduction pass.
    assert f.reproduction.pytest.count("r.headers.get_list('set-cookie')") == 2


def test_secure_flag_is_only_required_over_https() -> None:
    result = _scan(bare_flask_app(), _surface("/"), ["headers.cookie-flags", "headers.hsts-missing"],
                   https=False)
    (f,) = result.findings
    assert f.check_id == "headers.cookie-flags"
    assert "Secure" not in f.title and f.severity == "low"  # only SameSite is missing


def test_hardened_app_is_clean() -> None:
    result = _scan(hardened_flask_app(), _surface("/", "/api/items"))
    # No X-Frame-Options, but CSP frame-ancestors covers it.
    assert result.findings == []


def test_near_misses_do_not_fire() -> None:
    result = _scan(near_miss_app(), _surface("/", "/redirect"))
    assert result.findings == []


def test_weak_csp_is_reported_low() -> None:
    weak = "default-src 'self'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    app = hardened_flask_app(csp=weak)
    result = _scan(app, _surface("/"), ["headers.csp-missing"])
    (f,) = result.findings
    assert f.severity == "low" and "unsafe-inline" in f.title
    assert "'unsafe-inline'" in f.reproduction.pytest


def test_fastapi_app_without_headers() -> None:
    app = FastAPI()

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        return PAGE

    @app.get("/api/me")
    def me() -> JSONResponse:
        resp = JSONResponse({"id": 1})
        resp.set_cookie("auth_token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln")
        return resp

    result = _scan(app, Surface([EntryPoint("GET", "/"), EntryPoint("GET", "/api/me")]))
    found = _by_check(result)
    assert set(found) == set(HEADER_CHECKS)
    (cookie,) = found["headers.cookie-flags"]
    assert cookie.location.path == "/api/me" and "HttpOnly" in cookie.title


def test_only_session_like_cookies_count() -> None:
    app = Flask("prefs")

    @app.get("/")
    def home() -> Response:
        resp = Response(PAGE, mimetype="text/html")
        resp.set_cookie("lang", "en")
        resp.set_cookie("tz", "UTC")
        return resp

    assert _scan(app, _surface("/"), ["headers.cookie-flags"]).findings == []


# --- parsers ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("policy", "weak"), [
    (STRICT_CSP, False),
    ("default-src 'self'", False),
    ("script-src 'self' 'nonce-abc' 'unsafe-inline'", False),
    ("script-src 'sha256-abc=' 'unsafe-inline'", False),
    ("default-src *", True),
    ("default-src 'self'; script-src https:", True),
    ("script-src 'self' 'unsafe-inline'", True),
    ("img-src 'self'", True),
    ("", True),
])
def test_csp_weakness(policy: str, weak: bool) -> None:
    assert (csp_weakness(policy) is not None) is weak


def test_hsts_parse() -> None:
    assert hsts_max_age("max-age=31536000; includeSubDomains") == 31536000
    assert hsts_max_age('max-age="0"') == 0
    assert hsts_max_age("includeSubDomains") is None
    assert hsts_max_age(None) is None


def _ex(headers: list[tuple[str, str]], body: str = "") -> Exchange:
    return Exchange(SentRequest("GET", "https://x/", []), 200, [("content-type", "text/html"), *headers],
                    body.encode())


def test_referrer_policy_last_known_token_wins() -> None:
    assert effective_referrer_policy(_ex([("referrer-policy", "no-referrer, unsafe-url")])) == "unsafe-url"
    assert effective_referrer_policy(_ex([("referrer-policy", "unsafe-url, bogus-token")])) == "unsafe-url"
    assert effective_referrer_policy(_ex([("referrer-policy", "unsafe-url, same-origin")])) == "same-origin"
    assert effective_referrer_policy(_ex([])) is None


def test_set_cookie_parser_is_robust() -> None:
    c = parse_set_cookie('sid="a=b"; Path=/; HttpOnly; SameSite=Lax; Max-Age=0')
    assert c is not None and c.name == "sid" and c.value == "a=b" and c.deletes
    assert "httponly" in c.attrs and c.attrs["samesite"] == "Lax"
    assert parse_set_cookie("garbage-without-equals") is None
    assert parse_set_cookie("=novalue") is None
    old = parse_set_cookie("session=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    assert old is not None and old.deletes
    assert not parse_set_cookie("session=x; Expires=not a date").deletes  # type: ignore[union-attr]


# --- the demo (oracle) ------------------------------------------------------------------------

SITE_WIDE = ["headers.csp-missing", "headers.xcto-missing", "headers.frame-options-missing",
             "headers.referrer-policy-missing"]


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_missing_security_headers(scan_demo: Any, framework: str) -> None:
    result = scan_demo(flaws="missing_security_headers", checks=HEADER_CHECKS, framework=framework)
    found = _by_check(result)
    assert set(found) == set(SITE_WIDE)
    for cid in SITE_WIDE:
        (f,) = found[cid]
        assert f.confidence == "confirmed" and f.location.method == "GET" and f.location.path == "/"


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_missing_hsts(scan_demo: Any, framework: str) -> None:
    result = scan_demo(flaws="missing_hsts", checks=HEADER_CHECKS, framework=framework)
    (f,) = result.findings
    assert f.check_id == "headers.hsts-missing" and f.confidence == "confirmed"


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_insecure_session_cookie(scan_demo: Any, framework: str) -> None:
    result = scan_demo(flaws="insecure_session_cookie", checks=HEADER_CHECKS, framework=framework)
    (f,) = result.findings
    assert f.check_id == "headers.cookie-flags" and f.confidence == "confirmed"
    assert f.location.input is not None and f.location.input.in_ == "cookie"
    for flag in ("HttpOnly", "Secure", "SameSite"):
        assert flag in f.title


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_hardened_twin_is_clean(scan_demo: Any, framework: str) -> None:
    result = scan_demo(flaws="none", checks=HEADER_CHECKS, framework=framework)
    assert result.findings == []
    assert all(not c.errors for c in result.checks)
