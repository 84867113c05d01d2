"""Idle and absolute session expiry with the app's clock moved: demo flaw, hardened twin, third-party apps."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, jsonify, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.surface.model import Surface
from bastion.target.target import Target

MINE = ["session.no-absolute-timeout", "session.no-idle-timeout"]
PASSWORD = "Clinic-Passw0rd!7"


def _fired(result: ScanResult) -> set[tuple[str, str | None, str | None]]:
    errors = [e for c in result.checks for e in c.errors]
    assert not errors, errors
    return {(f.check_id, f.role, f.location.input.name if f.location.input else None) for f in result.findings}


# --- the demo ---------------------------------------------------------------------------------------------


def test_demo_sessions_that_never_expire_are_found(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="session_no_expiry", checks=MINE)
    # The cookie sessions never end; bob's bearer JWT has an enforced 15-minute exp, so it passes both.
    assert _fired(result) == {("session.no-idle-timeout", "admin", "session_id"),
                              ("session.no-absolute-timeout", "admin", "session_id")}
    for f in result.findings:
        assert f.confidence.value == "confirmed" and f.location.path == "/account"
        assert "time-machine" in f.evidence[0].content


def test_hardened_demo_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=MINE)
    assert _fired(result) == set()
    assert all(c.requests > 0 for c in result.checks)


def test_the_scan_clock_is_back_after_the_check(scan_demo: Callable[..., ScanResult]) -> None:
    scan_demo(flaws="session_no_expiry", checks=MINE)
    assert abs(time.time() - time.mktime(time.localtime())) < 5
    assert time.time() < 4_102_444_800  # not left in the future (2100)


# --- third-party apps -----------------------------------------------------------------------------------


def clinic_app(*, idle_s: float | None, absolute_s: float | None) -> Flask:
    """Server-side sessions in a dict (token in a cookie), with optional idle and absolute limits."""
    app = Flask(__name__)
    sessions: dict[str, dict[str, float]] = {}

    @app.post("/signin")
    def signin() -> Any:
        if request.form.get("user") != "nina" or request.form.get("password") != PASSWORD:
            return jsonify(error="no"), 401
        sid = secrets.token_urlsafe(24)
        now = time.time()
        sessions[sid] = {"created": now, "seen": now}
        resp = jsonify(ok=True)
        resp.set_cookie("clinic_sid", sid, httponly=True, samesite="Lax")
        return resp

    @app.get("/appointments")
    def appointments() -> Any:
        s = sessions.get(request.cookies.get("clinic_sid", ""))
        now = time.time()
        if s is None or (idle_s is not None and now - s["seen"] > idle_s) or (
                absolute_s is not None and now - s["created"] > absolute_s):
            return jsonify(error="login required"), 401
        s["seen"] = now
        return jsonify(appointments=[{"at": "09:30", "with": "Dr. Ruiz"}])

    return app


def scan_clinic(**limits: float | None) -> ScanResult:
    target = Target.from_app(clinic_app(**limits))  # type: ignore[arg-type]
    surface = discover(target, crawl=False)
    configs = {"nina": RoleConfig.model_validate({"login": {"path": "/signin", "form": {
        "user": "nina", "password": PASSWORD}}})}
    roles = login_roles_sync(target, configs)
    return run_scan(target, surface, ScanOptions(checks=MINE, roles=roles, role_configs=configs, secrets=[PASSWORD]))


@pytest.mark.parametrize(("limits", "expected"), [
    ({"idle_s": None, "absolute_s": None}, {"session.no-idle-timeout", "session.no-absolute-timeout"}),
    ({"idle_s": 1800, "absolute_s": None}, set()),  # busy every 12 h: the 30-minute idle limit ends it first
    ({"idle_s": None, "absolute_s": 7 * 86_400}, {"session.no-idle-timeout"}),
    ({"idle_s": 4 * 3600, "absolute_s": 12 * 3600}, set()),
], ids=["never", "idle-only", "absolute-only", "both"])
def test_third_party_clinic(limits: dict[str, float | None], expected: set[str]) -> None:
    fired = _fired(scan_clinic(**limits))
    assert {c for c, _, _ in fired} == expected
    assert all(role == "nina" and cookie == "clinic_sid" for _, role, cookie in fired)


def test_url_targets_are_skipped() -> None:
    """A running service's clock cannot be moved: nothing is sent, the coverage says why."""
    result = run_scan(Target.from_url("http://127.0.0.1:9"), Surface(), ScanOptions(checks=MINE))
    assert result.findings == [] and all(c.requests == 0 for c in result.checks)
    skipped = [u.skipped for c in result.checks for u in c.unit_records]
    assert skipped and all("clock cannot be moved" in (s or "") for s in skipped)
