"""authz.signup-mass-assignment: a sign-up that stores `admin: true` (or `role: admin`) from the client."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.engine.writes import WritePolicy
from bastion.session import discover
from bastion.target.target import Target

CHECK = "authz.signup-mass-assignment"


def accounts_api(trusts_body: bool, shows_flag: bool = True) -> Flask:
    """JSON sign-up and login, `GET /api/me`, and an admin-only `GET /api/admin/metrics`."""
    app = Flask(__name__)
    users: dict[str, dict[str, Any]] = {}
    tokens: dict[str, str] = {}

    def me() -> dict[str, Any] | None:
        name = tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        return users.get(name) if name else None

    @app.post("/api/accounts/signup")
    def signup() -> Any:
        body = request.get_json(silent=True) or {}
        name, password = str(body.get("username", "")), str(body.get("password", ""))
        if not name or len(password) < 12 or name in users:
            return jsonify(error="invalid"), 400
        is_admin = bool(body.get("is_admin")) if trusts_body else False
        users[name] = {"username": name, "password": password, "email": body.get("email"), "is_admin": is_admin}
        return jsonify(username=name), 201

    @app.post("/api/accounts/login")
    def login() -> Any:
        body = request.get_json(silent=True) or {}
        user = users.get(str(body.get("username", "")))
        if user is None or user["password"] != body.get("password"):
            return jsonify(error="bad credentials"), 401
        token = secrets.token_urlsafe(12)
        tokens[token] = user["username"]
        return jsonify(token=token)

    @app.get("/api/me")
    def whoami() -> Any:
        user = me()
        if user is None:
            return jsonify(error="login"), 401
        shown = {"username": user["username"], "email": user["email"]}
        return jsonify({**shown, "is_admin": user["is_admin"]} if shows_flag else shown)

    @app.get("/api/admin/metrics")
    def metrics() -> Any:
        user = me()
        if user is None:
            return jsonify(error="login"), 401
        if not user["is_admin"]:
            return jsonify(error="admins only"), 403
        return jsonify(users=len(users), signups_today=3)

    return app


def _scan(app: Flask, writes: str = "auto") -> ScanResult:
    target = Target.from_app(app)
    options = ScanOptions(checks=[CHECK], writes=WritePolicy.resolve(writes, in_process=True))
    return run_scan(target, discover(target, crawl=False), options)


def _hits(result: ScanResult) -> list[Any]:
    return [f for f in result.findings if f.check_id == CHECK]


def test_fires_on_the_demo_flaw(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="signup_role_from_body", checks=[CHECK])
    hits = _hits(result)
    assert hits and hits[0].location.path == "/api/register" and hits[0].location.method == "POST"
    assert hits[0].confidence == "confirmed"
    assert not [e for c in result.checks for e in c.errors]


def test_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    assert not _hits(scan_demo(flaws="none", checks=[CHECK]))


def test_self_view_shows_the_stored_flag() -> None:
    hits = _hits(_scan(accounts_api(trusts_body=True)))
    assert len(hits) == 1 and hits[0].location.path == "/api/accounts/signup"
    assert "is_admin" in hits[0].title and hits[0].confidence == "confirmed"
    text = json.dumps(hits[0].model_dump(mode="json"))
    assert "Bx7!" not in text  # the throw-away passwords are masked


def test_admin_page_reached_when_no_view_shows_the_flag() -> None:
    hits = _hits(_scan(accounts_api(trusts_body=True, shows_flag=False)))
    assert len(hits) == 1 and "grants the rights" in hits[0].title
    assert "/api/admin/metrics" in hits[0].evidence[2].summary


def test_silent_when_the_sign_up_ignores_extra_fields() -> None:
    assert not _hits(_scan(accounts_api(trusts_body=False)))


def test_no_sign_up_without_write_permission() -> None:
    result = _scan(accounts_api(trusts_body=True), writes="none")
    assert not _hits(result)
    assert any(r.skipped for c in result.checks for r in c.unit_records)
