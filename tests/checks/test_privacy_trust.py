"""Secrets/PII in logs and the session trust boundary: demo flaw, hardened twin, a third-party app and its fix."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from flask import Flask, jsonify, request, session

from bastion.checks.trust_boundary import cookie_payload
from bastion.engine.runner import ScanResult
from bastion.findings.model import Confidence
from bastion.testing import findings_of, scan_app

CHECKS = ["privacy.secrets-in-logs", "session.trust-boundary"]
log = logging.getLogger("shop.auth")


def test_password_logged_at_login_is_found_masked(scan_demo: Callable[..., ScanResult]) -> None:
    from bastion.demo.db import USERS

    result = scan_demo(flaws="password_logged_at_login", checks=CHECKS)
    (f,) = findings_of(result, "privacy.secrets-in-logs")
    assert f.confidence == Confidence.confirmed and "blind" in f.title
    assert (f.location.method, f.location.path, f.location.file) == ("POST", "/login", "src/bastion/demo/flask_app.py")
    text = f.model_dump_json()
    assert "password=***" in text
    assert not any(password in text for _, _, password, _, _ in USERS if len(password) > 5)
    assert "Pw-bst" not in text


def test_session_trust_boundary_on_the_demo(scan_demo: Callable[..., ScanResult]) -> None:
    (f,) = findings_of(scan_demo(flaws="session_trust_boundary", checks=CHECKS), "session.trust-boundary")
    assert (f.location.path, f.location.input.name if f.location.input else None) == ("/preferences", "currency")
    assert f.location.file == "src/bastion/demo/notes.py" and f.location.line
    kinds = {e.kind for e in f.evidence}
    assert {"sensor", "note"} <= kinds and "blind" not in f.title  # the cookie shows it too


def test_hardened_demo_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=CHECKS)
    assert [f for f in result.findings if f.check_id in CHECKS] == []
    assert not [c.errors for c in result.checks if c.errors]


def test_cookie_payload_reads_flask_cookies_plain_and_compressed() -> None:
    from itsdangerous import URLSafeTimedSerializer

    s = URLSafeTimedSerializer("k", salt="cookie-session")
    assert cookie_payload(s.dumps({"a": "bstcookie001"})) == '{"a":"bstcookie001"}'
    assert "bstcookie002" in (cookie_payload(s.dumps({"a": "bstcookie002" * 40})) or "")
    assert cookie_payload("not-a-signed-cookie") is None
    assert cookie_payload(".%%%.x.y") is None


def _app(vulnerable: bool) -> Flask:
    app = Flask(__name__)
    app.secret_key = "s" * 32
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"

    @app.post("/auth/signin")
    def signin() -> object:
        username, password = request.form.get("username", ""), request.form.get("password", "")
        if vulnerable:
            log.warning("sign-in failed for %s using %s", username, password)
        else:
            log.warning("sign-in failed for %s", username)
        return jsonify(error="bad credentials"), 401

    @app.post("/orders")
    def order() -> object:
        card = request.form.get("card", "")
        if vulnerable:
            log.info("charging card 4012 8888 8888 1881 for %s", card[:0] or "order")
        return jsonify(ok=True)

    @app.get("/view")
    def view() -> object:
        mode = request.args.get("mode", "")
        if vulnerable:
            session["mode"] = mode
        elif mode in ("grid", "list"):
            session["mode"] = mode
        return jsonify(mode=session.get("mode", "grid"))

    return app


@pytest.fixture(scope="module")
def third_party() -> tuple[ScanResult, ScanResult]:
    return (scan_app(_app(True), checks=CHECKS, spec="tests.checks.test_privacy_trust:_app(True)"),
            scan_app(_app(False), checks=CHECKS, spec="tests.checks.test_privacy_trust:_app(False)"))


def test_third_party_app_logs_and_session(third_party: tuple[ScanResult, ScanResult]) -> None:
    vulnerable, _ = third_party
    logs = findings_of(vulnerable, "privacy.secrets-in-logs")
    assert sorted((f.location.path, f.severity.value) for f in logs) == [("/auth/signin", "high"),
                                                                         ("/orders", "medium")]
    assert all("bst" not in e.content.split("using")[-1] for f in logs for e in f.evidence if e.kind == "sensor")
    (trust,) = findings_of(vulnerable, "session.trust-boundary")
    assert (trust.location.path, trust.location.input.name if trust.location.input else None) == ("/view", "mode")


def test_third_party_fixed_app_is_clean(third_party: tuple[ScanResult, ScanResult]) -> None:
    _, fixed = third_party
    assert fixed.findings == []
