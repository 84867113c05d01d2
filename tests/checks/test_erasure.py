"""privacy.erasure-incomplete: the demo's erasure job and its hardened twin, and a third-party members API."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, abort, jsonify, request

from bastion.engine.runner import ScanResult
from bastion.findings.model import Confidence
from bastion.testing import findings_of
from tests.checks.privacy_scan import scan_with_model

CHECKS = ["privacy.erasure-incomplete"]


def test_erasure_missing_the_search_index_is_found(scan_demo: Callable[..., ScanResult]) -> None:
    (f,) = findings_of(scan_demo(flaws="erasure_misses_search_index", checks=CHECKS), "privacy.erasure-incomplete")
    assert f.confidence == Confidence.confirmed and f.location.path == "/admin/search-index"
    text = f.model_dump_json()
    assert "***@democorp.example" in text and "alice@democorp.example" not in text


def test_hardened_demo_erases_everywhere(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=CHECKS)
    assert findings_of(result, "privacy.erasure-incomplete") == []
    # Silent because the stores were verified, not because the check was skipped.
    assert not [u.skipped for c in result.checks for u in c.unit_records if u.skipped]


# --- a third-party members API: DELETE /api/me, and a newsletter list the erasure may forget ---------------

PASSWORDS = {"carol": "carol-Secret-1", "root": "root-Secret-2"}
EMAILS = {"carol": "carol@club.example", "dave": "dave@club.example", "root": "root@club.example"}


def club_app(forgets_newsletter: bool) -> tuple[Flask, Callable[[Any], None]]:
    app = Flask(__name__)
    state: dict[str, Any] = {}

    def reset(_app: Any = None) -> None:
        state["members"] = dict(EMAILS)
        state["newsletter"] = list(EMAILS.values())
        state.setdefault("tokens", {})

    reset()

    def current() -> str:
        user = state["tokens"].get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if user is None or user not in state["members"]:
            abort(401)
        return str(user)

    @app.post("/api/login")
    def login() -> Any:
        body = request.get_json(silent=True) or {}
        user = str(body.get("username", ""))
        if user not in state["members"] or PASSWORDS.get(user) != body.get("password"):
            return jsonify(error="invalid credentials"), 401
        token = secrets.token_urlsafe(16)
        state["tokens"][token] = user
        return jsonify(token=token)

    @app.delete("/api/me")
    def erase_me() -> Any:
        user = current()
        email = state["members"].pop(user)
        if not forgets_newsletter:
            state["newsletter"].remove(email)
        return "", 204

    @app.get("/api/admin/members")
    def members() -> Any:
        if current() != "root":
            abort(403)
        return jsonify(members=[{"username": u, "email": e} for u, e in sorted(state["members"].items())])

    @app.get("/api/admin/newsletter")
    def newsletter() -> Any:
        if current() != "root":
            abort(403)
        return jsonify(subscribers=state["newsletter"])

    return app, reset


MODEL = {
    "roles": {name: {"login": {"path": "/api/login", "json": {"username": name, "password": pw}}}
              for name, pw in PASSWORDS.items()},
    "access": {"GET /api/admin/members": ["root"], "GET /api/admin/newsletter": ["root"]},
    "erasure": {"request": "DELETE /api/me", "stores": ["GET /api/admin/members", "GET /api/admin/newsletter"]},
}


def test_third_party_erasure_that_forgets_a_store() -> None:
    app, reset = club_app(forgets_newsletter=True)
    (f,) = findings_of(scan_with_model(app, MODEL, CHECKS, reset), "privacy.erasure-incomplete")
    assert f.location.path == "/api/admin/newsletter" and f.location.method == "GET"
    text = f.model_dump_json()
    assert "carol@club.example" not in text and PASSWORDS["carol"] not in text and PASSWORDS["root"] not in text


def test_third_party_complete_erasure_is_clean() -> None:
    app, reset = club_app(forgets_newsletter=False)
    result = scan_with_model(app, MODEL, CHECKS, reset)
    assert findings_of(result, "privacy.erasure-incomplete") == []
    assert not [u.skipped for c in result.checks for u in c.unit_records if u.skipped]


def test_no_reset_hook_means_no_erasure() -> None:
    app, _ = club_app(forgets_newsletter=True)
    result = scan_with_model(app, MODEL, CHECKS)
    assert findings_of(result, "privacy.erasure-incomplete") == []
    assert any("reset hook" in (u.skipped or "") for c in result.checks for u in c.unit_records)
