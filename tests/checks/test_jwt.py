"""Token/JWT checks: each demo flaw alone fires its check only, the hardened twin is clean, third-party apps too."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask, abort, jsonify, request

from bastion.demo.flaws import FLAWS
from bastion.demo.tokens import TUTORIAL_SECRET
from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.identity.jwt import JWT_IN_TEXT, forge
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.target.target import Target
from bastion.testing import findings_of

JWT = ["jwt"]
JWT_FLAWS = sorted(f.id for f in FLAWS.values() if any(c.startswith("jwt.") for c in f.checks))
PASSWORD = "Notes-Passw0rd!"
WEAK = "0123456789abcdef0123456789abcdef"  # in the dictionary, and long enough for PyJWT not to warn


# --- the demo oracle ------------------------------------------------------------------------------------


def test_every_jwt_check_has_a_demo_flaw() -> None:
    from bastion.checks.registry import load_checks

    checks = {c for c in load_checks() if c.startswith("jwt.")}
    assert len(checks) == 11
    assert checks == {c for f in JWT_FLAWS for c in FLAWS[f].checks}


@pytest.mark.parametrize("flaw", JWT_FLAWS)
def test_each_flaw_alone_fires_only_its_check(scan_demo: Callable[..., ScanResult], flaw: str) -> None:
    result = scan_demo(flaws=flaw, checks=JWT)
    fired = {f.check_id for f in result.findings}
    assert not [c.errors for c in result.checks if c.errors]
    assert fired == set(FLAWS[flaw].checks), (flaw, fired)
    for finding in result.findings:
        # The IdP flaw is probed with a token Bastion has the IdP double issue, not with a role's.
        expected_role = None if flaw == "idp_token_expiry_unchecked" else "bob"
        assert finding.confidence.value == "confirmed" and finding.role == expected_role, finding.title


def test_hardened_demo_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=JWT)
    assert result.findings == []
    assert not [c.errors for c in result.checks if c.errors]
    # The checks did run against bob's bearer token (not vacuously silent).
    assert all(c.requests > 0 for c in result.checks if c.check_id != "jwt.weak-secret"), \
        [(c.check_id, c.requests) for c in result.checks]


def test_all_flaws_found_together_with_secrets_masked(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="all", checks=JWT)
    by_check = {f.check_id: f for f in result.findings}
    assert set(by_check) == {c for f in JWT_FLAWS for c in FLAWS[f].checks}
    assert by_check["jwt.signature-unchecked"].location.path == "/api/me"
    assert by_check["jwt.refresh-reuse"].location.path == "/api/auth/refresh"
    dumped = json.dumps([f.public_dict() for f in result.findings])
    assert TUTORIAL_SECRET not in dumped
    assert not JWT_IN_TEXT.search(dumped), JWT_IN_TEXT.search(dumped)
    # The decoded forged claims are evidence: readable, signature withheld.
    note = next(e for e in by_check["jwt.alg-none"].evidence if e.kind == "note")
    assert '"alg": "none"' in note.content and '"sub": "3"' in note.content


# --- a third-party-style notes API -------------------------------------------------------------------------


def notes_app(*, secret: str = "n" * 48, verify: bool = True, check_exp: bool = True, alg_none: bool = False,
              query_token: bool = False, reuse: bool = False, link_token: bool = False) -> Flask:
    """A JSON API with HS256 bearer tokens and rotating refresh tokens; the flags loosen one thing each."""
    app = Flask("notes")
    spent: set[str] = set()

    def issue(user: str) -> dict[str, Any]:
        now = int(time.time())
        access = pyjwt.encode({"sub": user, "iat": now, "exp": now + 600}, secret, algorithm="HS256")
        refresh = secrets.token_urlsafe(24)
        body: dict[str, Any] = {"access_token": access, "refresh_token": refresh}
        if link_token:
            body["export_url"] = f"/notes/export?token={access}"
        return body

    refresh_owner: dict[str, str] = {}

    @app.post("/auth/login")
    def login() -> Any:
        body = request.get_json(silent=True) or {}
        if body.get("username") not in ("erin", "frank") or body.get("password") != PASSWORD:
            return jsonify(error="bad credentials"), 401
        pair = issue(body["username"])
        refresh_owner[pair["refresh_token"]] = body["username"]
        return jsonify(pair)

    @app.post("/auth/refresh")
    def refresh() -> Any:
        body = request.get_json(silent=True) or {}
        old = str(body.get("refresh_token", ""))
        user = refresh_owner.get(old)
        if user is None or (old in spent and not reuse):
            return jsonify(error="invalid refresh token"), 401
        spent.add(old)
        pair = issue(user)
        refresh_owner[pair["refresh_token"]] = user
        return jsonify(pair)

    def user() -> str:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        if token is None and query_token:
            token = request.args.get("token")
        if not token:
            abort(401)
        try:
            header = pyjwt.get_unverified_header(token)
            if not verify or (alg_none and header.get("alg") == "none"):
                claims = pyjwt.decode(token, options={"verify_signature": False})
            else:
                claims = pyjwt.decode(token, secret, algorithms=["HS256"],
                                      options={"verify_exp": check_exp, "verify_nbf": check_exp,
                                               "verify_iat": check_exp})
        except pyjwt.PyJWTError:
            abort(401)
        return str(claims["sub"])

    @app.get("/")
    def index() -> Any:
        return jsonify(service="notes")

    @app.get("/notes")
    def notes() -> Any:
        return jsonify(owner=user(), notes=[{"id": 1, "text": "buy milk"}])

    return app


def scan_notes(**flags: bool | str) -> ScanResult:
    target = Target.from_app(notes_app(**flags))  # type: ignore[arg-type]
    surface = discover(target, crawl=False)
    configs = {name: RoleConfig.model_validate({"login": {"path": "/auth/login", "json": {
        "username": name, "password": PASSWORD}}}) for name in ("erin", "frank")}
    roles = login_roles_sync(target, configs)
    return run_scan(target, surface, ScanOptions(checks=JWT, roles=roles, role_configs=configs, secrets=[PASSWORD]))


def _fired(result: ScanResult) -> set[str]:
    errors = [e for c in result.checks for e in c.errors]
    assert not errors, errors
    return {f.check_id for f in result.findings}


def test_safe_notes_api_scans_clean() -> None:
    assert _fired(scan_notes()) == set()


@pytest.mark.parametrize(("flags", "expected"), [
    ({"secret": WEAK}, {"jwt.weak-secret"}),
    ({"secret": WEAK, "check_exp": False}, {"jwt.weak-secret", "jwt.expiry"}),
    ({"alg_none": True}, {"jwt.alg-none"}),
    ({"verify": False}, {"jwt.signature-unchecked"}),
    ({"query_token": True}, {"jwt.token-in-url"}),
    ({"link_token": True}, {"jwt.token-in-url"}),
    ({"reuse": True}, {"jwt.refresh-reuse"}),
], ids=["weak-secret", "weak-secret+exp-ignored", "alg-none", "no-verification", "query", "link", "reuse"])
def test_notes_api_flaws_are_found_and_attributed(flags: dict[str, Any], expected: set[str]) -> None:
    result = scan_notes(**flags)
    assert _fired(result) == expected
    dumped = json.dumps([f.public_dict() for f in result.findings])
    assert PASSWORD not in dumped and not JWT_IN_TEXT.search(dumped)


def test_weak_secret_is_proven_by_acceptance_at_a_protected_probe() -> None:
    [finding] = findings_of(scan_notes(secret=WEAK), "jwt.weak-secret")
    assert finding.confidence.value == "confirmed" and finding.location.path == "/notes"
    assert finding.role == "erin"


def test_no_refresh_probe_when_writes_are_not_allowed() -> None:
    from bastion.engine.writes import WritePolicy

    target = Target.from_app(notes_app(reuse=True))
    surface = discover(target, crawl=False)
    configs = {"erin": RoleConfig.model_validate({"login": {"path": "/auth/login", "json": {
        "username": "erin", "password": PASSWORD}}})}
    roles = login_roles_sync(target, configs)
    result = run_scan(target, surface, ScanOptions(checks=["jwt.refresh-reuse"], roles=roles, role_configs=configs,
                                                    writes=WritePolicy("none")))
    assert _fired(result) == set()
    assert result.checks[0].requests == 0  # no refresh (and no login replay) was sent


def test_rejected_forgeries_give_no_finding_on_an_rs256_app_without_jwks() -> None:
    """A correct RS256 verifier: every forged token is refused, nothing is reported."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app = Flask("rs")

    @app.post("/token")
    def token() -> Any:
        return jsonify(token=forge({"sub": "u1", "exp": int(time.time()) + 600}, alg="RS256", key=key))

    @app.get("/me")
    def me() -> Any:
        raw = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            return jsonify(sub=pyjwt.decode(raw, key.public_key(), algorithms=["RS256"])["sub"])
        except pyjwt.PyJWTError:
            return jsonify(error="unauthorized"), 401

    target = Target.from_app(app)
    configs = {"u1": RoleConfig.model_validate({"login": {"path": "/token", "json": {"client": "u1"}}})}
    roles = login_roles_sync(target, configs)
    result = run_scan(target, discover(target, crawl=False),
                      ScanOptions(checks=JWT, roles=roles, role_configs=configs))
    assert _fired(result) == set()
    assert sum(c.requests for c in result.checks) > 10


def test_evidence_claims_are_stable_across_runs() -> None:
    from bastion.checks.jwt import stable_claims

    assert stable_claims({"sub": "1", "iat": 1000, "exp": 1900, "nbf": 999}) == \
        {"sub": "1", "iat": "<issued at>", "exp": "iat+900s", "nbf": "iat-1s"}
    assert stable_claims({"exp": 5}) == {"exp": "<timestamp>"}
