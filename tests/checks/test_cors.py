"""cors.* against small third-party-style apps (hand-rolled Flask CORS, Starlette CORSMiddleware)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from flask import Flask, Response, jsonify, request
from starlette.middleware.cors import CORSMiddleware

from bastion.engine.runner import ScanResult
from bastion.findings.model import Finding
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.testing import reproduction_passes as run_reproduction
from bastion.testing import scan_app

REFLECT, NULL = "cors.origin-reflection", "cors.null-origin"
REPRO_MODULE = "bastion_cors_repro_app"
TRUSTED = "https://app.trusted.example"


def _scan(app: object, surface: Surface, checks: list[str] | None = None) -> ScanResult:
    result = scan_app(app, surface, checks=checks or [REFLECT, NULL],
                      spec=f"{REPRO_MODULE}:app", base_url="https://api.example.test")
    return result


def reproduction_passes(finding: Finding, app: object) -> bool:
    """Run the finding's generated pytest test against `app`: True when it passes (flaw gone)."""
    return run_reproduction(finding.reproduction.pytest, app=app, module=REPRO_MODULE)


def flask_cors_app(policy: str) -> Flask:
    """Hand-rolled CORS, as often seen: `policy` picks the (mis)configuration."""
    app = Flask(f"cors_{policy}")

    @app.get("/")
    def home() -> str:
        return "<html><body>home</body></html>"

    @app.get("/api/me")
    def me() -> Response:
        return jsonify({"user": "alice", "q": request.args.get("q", "")})

    @app.route("/api/orders", methods=["POST", "OPTIONS"])
    def orders() -> Response:
        return jsonify({"ok": True})

    @app.after_request
    def cors(resp: Response) -> Response:
        origin = request.headers.get("Origin")
        if not origin:
            return resp
        allow: str | None = None
        credentials = True
        if policy == "reflect":
            allow = origin
        elif policy == "reflect-no-credentials":
            allow, credentials = origin, False
        elif policy == "star":
            allow, credentials = "*", False
        elif policy == "star-credentials":
            allow = "*"
        elif policy in ("allowlist", "allowlist-null"):
            allowed = {TRUSTED, *(["null"] if policy == "allowlist-null" else [])}
            allow = origin if origin in allowed else None
            resp.headers["Vary"] = "Origin"
        elif policy == "preflight-only" and request.method == "OPTIONS":
            allow = origin
        if allow:
            resp.headers["Access-Control-Allow-Origin"] = allow
            if credentials:
                resp.headers["Access-Control-Allow-Credentials"] = "true"
        return resp

    return app


def api_surface() -> Surface:
    return Surface([EntryPoint("GET", "/"), EntryPoint("GET", "/api/me", [Input("query", "q")]),
                    EntryPoint("POST", "/api/orders", [Input("json", "sku")])])


def test_reflection_with_credentials_is_high_and_confirmed() -> None:
    app = flask_cors_app("reflect")
    (f,) = _scan(app, api_surface(), [REFLECT]).findings
    assert f.check_id == REFLECT and f.severity == "high" and f.confidence == "confirmed"
    assert f.location.path == "/api/me"  # API routes are probed first
    notes = [e for e in f.evidence if e.kind == "note"]
    assert "GET /api/me" in notes[0].content and "OPTIONS /api/orders" in notes[0].content
    assert not reproduction_passes(f, app)
    assert reproduction_passes(f, flask_cors_app("allowlist"))


def test_reflection_without_credentials_is_low() -> None:
    (f,) = _scan(flask_cors_app("reflect-no-credentials"), api_surface(), [REFLECT]).findings
    assert f.severity == "low" and "without credentials" in f.title
    (null,) = _scan(flask_cors_app("reflect-no-credentials"), api_surface(), [NULL]).findings
    assert null.severity == "low"


def test_wildcard_with_credentials_is_low() -> None:
    (f,) = _scan(flask_cors_app("star-credentials"), api_surface(), [REFLECT]).findings
    assert f.severity == "low" and "`*`" in f.title


@pytest.mark.parametrize("policy", ["star", "allowlist"])
def test_public_wildcard_and_strict_allowlist_are_silent(policy: str) -> None:
    assert _scan(flask_cors_app(policy), api_surface()).findings == []


def test_null_origin_in_allowlist() -> None:
    app = flask_cors_app("allowlist-null")
    (f,) = _scan(app, api_surface()).findings
    assert f.check_id == NULL and f.severity == "medium" and f.confidence == "confirmed"
    assert any("null is allowlisted" in e.summary for e in f.evidence)
    assert not reproduction_passes(f, app)
    assert reproduction_passes(f, flask_cors_app("allowlist"))


def test_reflect_all_accepts_null_too() -> None:
    findings = {f.check_id: f for f in _scan(flask_cors_app("reflect"), api_surface()).findings}
    assert set(findings) == {REFLECT, NULL}
    assert any("accepted too" in e.summary for e in findings[NULL].evidence)


def loose_allowlist_app(pattern: str) -> Flask:
    """An allowlist by regex, as often written: meant for the service's own domain."""
    import re
    app = Flask("loose")

    @app.get("/api/me")
    def me() -> Response:
        return jsonify({"user": "alice"})

    @app.after_request
    def cors(resp: Response) -> Response:
        origin = request.headers.get("Origin", "")
        if re.search(pattern, origin):
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Access-Control-Allow-Credentials"] = "true"
            resp.headers["Vary"] = "Origin"
        return resp

    return app


@pytest.mark.parametrize(("pattern", "how"), [
    (r"^https://api\.example\.test", "prefix"), (r"api\.example\.test$", "ending with"),
])
def test_loose_allowlist_is_bypassed(pattern: str, how: str) -> None:
    app = loose_allowlist_app(pattern)
    (f,) = _scan(app, Surface([EntryPoint("GET", "/api/me")]), [REFLECT]).findings
    assert "look-alike" in f.title and how in f.title and f.severity == "high"
    assert not reproduction_passes(f, app)
    assert reproduction_passes(f, loose_allowlist_app(r"^https://api\.example\.test$"))


def test_exact_own_origin_allowlist_is_silent() -> None:
    app = loose_allowlist_app(r"^https://api\.example\.test$")
    assert _scan(app, Surface([EntryPoint("GET", "/api/me")])).findings == []


def test_reflection_on_preflight_only() -> None:
    (f,) = _scan(flask_cors_app("preflight-only"), api_surface(), [REFLECT]).findings
    assert f.location.method == "OPTIONS" and f.location.path == "/api/orders"


def _starlette_app(**cors: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(CORSMiddleware, allow_methods=["*"], allow_headers=["*"], **cors)

    @app.get("/api/items")
    def items() -> list[int]:
        return [1, 2]

    return app


def test_starlette_wildcard_with_credentials_reflects_for_cookie_bearing_requests() -> None:
    app = _starlette_app(allow_origins=["*"], allow_credentials=True)
    (f,) = _scan(app, Surface([EntryPoint("GET", "/api/items")]), [REFLECT]).findings
    assert f.severity == "high" and f.location.path == "/api/items"


def test_starlette_regex_any_origin() -> None:
    app = _starlette_app(allow_origin_regex="https://.*", allow_credentials=True)
    (f,) = _scan(app, Surface([EntryPoint("GET", "/api/items")]), [REFLECT]).findings
    assert f.severity == "high"


def test_starlette_strict_allowlist_is_silent() -> None:
    app = _starlette_app(allow_origins=[TRUSTED], allow_credentials=True)
    assert _scan(app, Surface([EntryPoint("GET", "/api/items")])).findings == []


# --- the demo (oracle) ---------------------------------------------------------------------------

@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_reflect_origin(scan_demo: Any, framework: str) -> None:
    result = scan_demo(flaws="cors_reflect_origin", checks=[REFLECT, NULL], framework=framework)
    (f,) = result.findings
    assert f.check_id == REFLECT and f.severity == "high" and f.confidence == "confirmed"
    assert f.location.path is not None and f.location.path.startswith("/api/")


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_null_origin(scan_demo: Any, framework: str) -> None:
    result = scan_demo(flaws="cors_null_origin", checks=[REFLECT, NULL], framework=framework)
    (f,) = result.findings
    assert f.check_id == NULL and f.confidence == "confirmed"
    assert f.location.path is not None and f.location.path.startswith("/api/")


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_hardened_twin_is_clean(scan_demo: Any, framework: str) -> None:
    result = scan_demo(flaws="none", checks=[REFLECT, NULL], framework=framework)
    assert result.findings == []
    assert all(not c.errors for c in result.checks)
