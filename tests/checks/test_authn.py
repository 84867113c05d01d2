"""Authentication checks: on the demo (planted flaws and hardened twin) and on a small third-party-style API."""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, jsonify, request

from bastion.checks.authn import token_candidates
from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.payloads.oracles import mann_whitney_p, timing_differs
from bastion.session import discover
from bastion.target.exchange import Exchange, SentRequest
from bastion.target.target import Target
from bastion.testing import findings_of

AUTHN = ["authn"]
MEMBER_PASSWORD = "Club-Member-Passw0rd!"


# --- the demo -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("check_id, path", [
    ("authn.user-enumeration", "/login"),
    ("authn.user-enumeration", "/password-reset"),
    ("authn.reset-token-leak", "/password-reset"),
    ("authn.reset-token-reuse", "/password-reset/confirm"),
    ("authn.weak-password-policy", "/signup"),
    ("authn.credentials-in-url", "/login"),
])
def test_fires_on_the_planted_demo_flaws(scan_demo: Callable[..., ScanResult], check_id: str, path: str) -> None:
    found = findings_of(scan_demo(flaws="all", checks=AUTHN), check_id)
    assert path in {f.location.path for f in found}, [f.title for f in found]


def test_confirmed_with_proof_on_the_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="all", checks=AUTHN)
    for check_id in ("authn.reset-token-leak", "authn.reset-token-reuse", "authn.weak-password-policy",
                     "authn.credentials-in-url"):
        assert {f.confidence.value for f in findings_of(result, check_id)} == {"confirmed"}, check_id


def test_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=AUTHN)
    assert [f for f in result.findings if f.check_id.startswith("authn.")] == []
    assert not [e for c in result.checks for e in c.errors]


@pytest.mark.parametrize("flaw, path", [("login_user_enumeration", "/login"),
                                        ("reset_user_enumeration", "/password-reset")])
def test_each_enumeration_flaw_alone(scan_demo: Callable[..., ScanResult], flaw: str, path: str) -> None:
    found = findings_of(scan_demo(flaws=flaw, checks=["authn.user-enumeration"]), "authn.user-enumeration")
    assert [f.location.path for f in found] == [path]


def test_passwords_never_reach_the_findings(scan_demo: Callable[..., ScanResult]) -> None:
    from bastion.demo.db import USERS

    text = json.dumps([f.public_dict() for f in scan_demo(flaws="all", checks=AUTHN).findings])
    for _, _, password, _, _ in USERS[:3]:
        assert password not in text
    assert "password=***" in text  # the query-string login, masked


# --- a third-party-style JSON API ---------------------------------------------------------------------


def club_app(*, vulnerable: bool) -> Flask:
    """A members' club API: e-mail logins with bearer tokens, registration, password reset."""
    app = Flask("club")
    users = {"carol@club.example": MEMBER_PASSWORD}
    tokens: dict[str, str] = {}
    resets: dict[str, str] = {}

    @app.post("/api/v1/auth/session")
    def session() -> Any:
        body = request.get_json(silent=True) or {}
        email, password = str(body.get("email", "")), str(body.get("password", ""))
        if users.get(email) != password:
            if vulnerable and email not in users:
                return jsonify(error="no member with this e-mail"), 404
            return jsonify(error="invalid credentials"), 401
        value = secrets.token_hex(16)
        tokens[value] = email
        return jsonify(access_token=value)

    @app.get("/api/v1/me")
    def me() -> Any:
        email = tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        return (jsonify(email=email), 200) if email else (jsonify(error="login"), 401)

    @app.post("/api/v1/register")
    def register() -> Any:
        body = request.get_json(silent=True) or {}
        email, password = str(body.get("email", "")), str(body.get("password", ""))
        if "@" not in email or email in users:
            return jsonify(error="invalid e-mail"), 400
        if not password or (not vulnerable and (len(password) < 12 or email.split("@")[0] in password)):
            return jsonify(error="choose a longer password"), 400
        users[email] = password
        return jsonify(email=email), 201

    @app.post("/api/v1/auth/forgot")
    def forgot() -> Any:
        email = str((request.get_json(silent=True) or {}).get("email", ""))
        token = secrets.token_urlsafe(24)
        if email in users:
            resets[token] = email
        if vulnerable and email in users:
            return jsonify(message="check your mail", debug_token=token)
        return jsonify(message="check your mail")

    @app.post("/api/v1/auth/reset/complete")
    def complete() -> Any:
        body = request.get_json(silent=True) or {}
        token, password = str(body.get("token", "")), str(body.get("password", ""))
        email = resets.get(token) if vulnerable else resets.pop(token, None)
        if email is None or len(password) < 8:
            return jsonify(error="invalid token"), 400
        users[email] = password
        return jsonify(message="password changed")

    return app


def scan_club(*, vulnerable: bool, checks: list[str] | None = None) -> ScanResult:
    target = Target.from_app(club_app(vulnerable=vulnerable))
    surface = discover(target, crawl=False)
    configs = {"carol": RoleConfig.model_validate({"login": {"path": "/api/v1/auth/session", "json": {
        "email": "carol@club.example", "password": MEMBER_PASSWORD}}})}
    roles = login_roles_sync(target, configs)
    options = ScanOptions(checks=checks or AUTHN, roles=roles, role_configs=configs, secrets=[MEMBER_PASSWORD])
    return run_scan(target, surface, options)


def test_fires_on_a_vulnerable_third_party_api() -> None:
    result = scan_club(vulnerable=True)
    ids = {f.check_id: f for f in result.findings}
    assert {"authn.user-enumeration", "authn.reset-token-leak", "authn.reset-token-reuse",
            "authn.weak-password-policy"} <= set(ids)
    assert ids["authn.reset-token-leak"].confidence.value == "confirmed"
    assert not [e for c in result.checks for e in c.errors]
    assert MEMBER_PASSWORD not in json.dumps([f.public_dict() for f in result.findings])


def test_silent_on_the_safe_third_party_api() -> None:
    result = scan_club(vulnerable=False)
    assert [f.title for f in result.findings] == []
    assert not [e for c in result.checks for e in c.errors]


def test_nothing_state_changing_without_write_permission() -> None:
    from bastion.engine.writes import WritePolicy

    target = Target.from_app(club_app(vulnerable=True))
    surface = discover(target, crawl=False)
    configs = {"carol": RoleConfig.model_validate({"login": {"path": "/api/v1/auth/session", "json": {
        "email": "carol@club.example", "password": MEMBER_PASSWORD}}})}
    options = ScanOptions(checks=AUTHN, roles=login_roles_sync(target, configs), role_configs=configs,
                          writes=WritePolicy("none"))
    result = run_scan(target, surface, options)
    assert result.findings == []
    # Only the credentials-in-URL check still reads pages (GET): every other probe changes state.
    assert {c.check_id: c.requests for c in result.checks if c.requests} == {"authn.credentials-in-url": 1}


# --- decision functions -------------------------------------------------------------------------------


def test_timing_decision_needs_many_samples_and_a_real_effect() -> None:
    rng = random.Random(3)
    slow = [0.040 + rng.random() * 0.01 for _ in range(12)]
    fast = [0.002 + rng.random() * 0.002 for _ in range(12)]
    assert timing_differs(slow, fast)
    assert not timing_differs(slow[:5], fast[:5])  # never from a handful of samples
    jitter = [0.003 + rng.random() * 0.002 for _ in range(12)]
    assert not timing_differs(jitter, fast)  # significant or not, a millisecond is no effect
    outlier = [*fast[:11], 5.0]
    assert not timing_differs(outlier, fast)  # one slow request decides nothing
    assert mann_whitney_p(slow, fast) < 0.001
    assert mann_whitney_p([1.0] * 10, [1.0] * 10) == 1.0


def _exchange(body: str, ctype: str = "application/json", headers: list[tuple[str, str]] | None = None) -> Exchange:
    return Exchange(request=SentRequest("POST", "http://t/reset", []), status=200,
                    headers=[("content-type", ctype), *(headers or [])], body=body.encode())


def test_token_candidates_are_what_only_the_known_account_got() -> None:
    leaked = _exchange(json.dumps({"message": "sent", "reset_token": "Zx81kq0AaPz3mQ1w9s7T"}))
    control = _exchange(json.dumps({"message": "sent"}))
    assert token_candidates(leaked, control) == [("Zx81kq0AaPz3mQ1w9s7T", "JSON field 'reset_token'", True)]
    assert token_candidates(control, control) == []
    redirect = _exchange("", headers=[("location", "/reset?token=Q2w3e4r5t6y7u8i9o0p1")])
    assert token_candidates(redirect, control)[0][1:] == ("redirect Location (parameter 'token')", True)
