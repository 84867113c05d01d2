"""The pytest fixtures `tokens`, `totp` and `oidc_provider`, run with pytester against a small app."""

from __future__ import annotations

import pytest

APP = '''
import secrets
from flask import Flask, request, jsonify

USERS = {"alice": "alice-Passw0rd", "bob": "bob-Passw0rd", "carol": "carol-Passw0rd"}
TOKENS, SESSIONS = {}, {}

def create_app():
    app = Flask(__name__)

    @app.post("/api/login")
    def api_login():
        body = request.get_json(silent=True) or {}
        if USERS.get(body.get("user")) != body.get("password"):
            return jsonify(error="no"), 401
        token = secrets.token_hex(16)
        TOKENS[token] = body["user"]
        return jsonify(access_token=token, expires_in=900)

    @app.post("/login")
    def login():
        if USERS.get(request.form.get("user")) != request.form.get("password"):
            return "no", 401
        sid = secrets.token_hex(8)
        SESSIONS[sid] = request.form["user"]
        resp = app.make_response(("ok", 200))
        resp.set_cookie("sid", sid)
        return resp

    @app.get("/me")
    def me():
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return jsonify(user=TOKENS.get(token) or SESSIONS.get(request.cookies.get("sid")) or "anonymous")

    return app
'''

CONFIG = '''
target: {app: "tokapp:create_app()"}
roles:
  anonymous: {}
  alice:
    login: {path: /api/login, json: {user: alice, password: alice-Passw0rd}}
    mfa: {totp_secret: "${ALICE_TOTP}"}
  bob: {login: {path: /api/login, json: {user: bob, password: bob-Passw0rd}}}
  carol: {login: {path: /login, form: {user: carol, password: carol-Passw0rd}}}
  svc: {oidc: {issuer: "http://127.0.0.1:9", client_id: svc-client, client_secret: x, flow: client_credentials}}
'''

SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

USER_TESTS = '''
import jwt
import pyotp
import pytest
from bastion.doubles import OIDCError


def test_issue_refresh_expire_revoke(tokens, oidc_provider):
    token = tokens.issue("alice", role="admin")
    claims = oidc_provider.verify(token)
    assert claims["sub"] == "alice" and claims["role"] == "admin"
    newer = tokens.refresh(token)
    assert newer != token and oidc_provider.verify(newer)["sub"] == "alice"
    with pytest.raises(OIDCError, match="invalid_grant"):
        tokens.refresh(token)  # its refresh token was rotated away
    stale = tokens.expired("alice")
    with pytest.raises(OIDCError, match="expired"):
        oidc_provider.verify(stale)
    fresh = tokens.issue("bob")
    tokens.revoke(fresh)
    assert oidc_provider.introspect(fresh) == {"active": False}


def test_oidc_roles_get_their_client_as_subject(tokens, oidc_provider):
    assert oidc_provider.verify(tokens.issue("svc"))["sub"] == "svc-client"


def test_unknown_role(tokens, oidc_provider):
    with pytest.raises(pytest.UsageError, match="no role 'mallory'.*alice, bob, carol, svc"):
        tokens.issue("mallory")


def test_expired_needs_a_provider(tokens):
    with pytest.raises(pytest.UsageError, match="needs an OIDC provider"):
        tokens.expired("bob")


def test_without_a_provider_issue_logs_the_role_in(tokens, bastion_client):
    token = tokens.issue("bob")
    assert '"bob"' in bastion_client.get("/me", headers={"authorization": f"Bearer {token}"}).text
    assert tokens.refresh(token) != token


def test_a_cookie_role_has_no_token(tokens):
    with pytest.raises(pytest.UsageError, match="no bearer token"):
        tokens.issue("carol")


def test_totp(totp):
    assert totp("alice") == pyotp.TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").now()
    assert totp("alice", at=0) == pyotp.TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").at(0)
    with pytest.raises(pytest.UsageError, match="role 'bob' has no mfa"):
        totp("bob")
    with pytest.raises(pytest.UsageError, match="no such role"):
        totp("zed")


def test_role_is_a_claim_name_too(tokens, oidc_provider):
    stale = jwt.decode(tokens.expired("bob", role="x"), options={"verify_signature": False})
    assert stale["role"] == "x" and stale["sub"] == "bob"
    assert oidc_provider.verify(tokens.issue("bob", role="auditor"))["role"] == "auditor"
'''


def test_tokens_and_totp_fixtures(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALICE_TOTP", SEED)
    pytester.makepyfile(tokapp=APP, test_tokens=USER_TESTS)
    pytester.makefile(".yaml", bastion=CONFIG)
    pytester.syspathinsert()
    result = pytester.runpytest("--bastion-config", "bastion.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)


def test_fixtures_without_a_threat_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x='''
import pytest

def test_tokens_from_a_provider_only(tokens, oidc_provider):
    assert oidc_provider.verify(tokens.issue("anyone"))["sub"] == "anyone"
    with pytest.raises(pytest.UsageError, match="gave out"):
        tokens.refresh("zed")

def test_tokens_use(tokens):
    from bastion.doubles import OIDCProvider
    idp = OIDCProvider()
    assert idp.verify(tokens.use(idp).issue("x"))["sub"] == "x"

def test_totp_needs_a_threat_model(totp):
    with pytest.raises(pytest.UsageError, match="pass --bastion-config"):
        totp("alice")
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
