"""The demo's token API: RS256 access tokens (published as JWKS) and rotating HS256 refresh tokens.

    POST /api/auth/token     {"username", "password"} -> {"access_token", "refresh_token", ...}
    POST /api/auth/refresh   {"refresh_token"}         -> a new pair; the old refresh token is spent
    GET  /.well-known/jwks.json                        -> the access tokens' public key
    GET  /api/me                                       -> the caller's profile, from the bearer token

Every flawed verification sits next to its safe twin behind `_planted("<flaw id>")`.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Flask, current_app, jsonify, request

from bastion.identity.jwt import b64url_decode, hmac_sign

tokens_bp = Blueprint("demo_tokens", __name__)

ISSUER = "https://demo.bastion.local"
ACCESS_TTL = 900
REFRESH_TTL = 86_400
# The refresh-token key someone copied from the FastAPI tutorial (planted flaw jwt_weak_secret).
TUTORIAL_SECRET = "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7"
_STATE_KEY = "bastion_demo_tokens"


@cache
def _rsa_key() -> rsa.RSAPrivateKey:
    """One signing key per process: generating RSA keys is slow and tests build many apps."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class TokenState:
    private_key: rsa.RSAPrivateKey
    public_pem: bytes
    kid: str
    refresh_secret: str
    keys_dir: Path
    spent_refresh: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def attach_tokens(app: Flask, root: Path) -> None:
    """Give `app` its token keys (the legacy HMAC key files live under `root/keys`)."""
    flaws = app.extensions["bastion_demo"].flaws
    key = _rsa_key()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    keys_dir = root / "keys"
    keys_dir.mkdir(exist_ok=True)
    # A partner integration's shared key from before the move to RS256, still on disk.
    (keys_dir / "legacy-2023").write_text(secrets.token_urlsafe(32), encoding="utf-8")
    refresh_secret = TUTORIAL_SECRET if "jwt_weak_secret" in flaws else secrets.token_urlsafe(48)
    app.extensions[_STATE_KEY] = TokenState(key, pem, "demo-rs256-1", refresh_secret, keys_dir)


def _state() -> TokenState:
    return current_app.extensions[_STATE_KEY]  # type: ignore[no-any-return]


def _planted(flaw_id: str) -> bool:
    return flaw_id in current_app.extensions["bastion_demo"].flaws


def _conn() -> sqlite3.Connection:
    from bastion.demo.flask_app import db  # the request's connection (flask_app imports this module)

    return db()


# --- issuing ----------------------------------------------------------------------------------------


def _issue_pair(user: sqlite3.Row) -> dict[str, Any]:
    st = _state()
    now = int(time.time())
    access_claims: dict[str, Any] = {"iss": ISSUER, "sub": str(user["id"]), "name": user["username"],
                                     "role": user["role"], "typ": "access", "iat": now}
    if not _planted("jwt_no_expiry"):
        access_claims["exp"] = now + ACCESS_TTL
    access = pyjwt.encode(access_claims, st.private_key, algorithm="RS256", headers={"kid": st.kid})
    refresh_claims = {"iss": ISSUER, "sub": str(user["id"]), "typ": "refresh", "jti": secrets.token_hex(12),
                      "iat": now, "exp": now + REFRESH_TTL}
    refresh = pyjwt.encode(refresh_claims, st.refresh_secret, algorithm="HS256")
    return {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL, "refresh_token": refresh}


def _audit(actor: str, action: str, detail: str) -> None:
    _conn().execute("INSERT INTO audit_log (actor, action, detail) VALUES (?,?,?)", (actor, action, detail))


@tokens_bp.post("/api/auth/token")
def issue_token() -> Any:
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}  # a JSON array or scalar is not a credentials object
    username, password = str(body.get("username", "")), str(body.get("password", ""))
    from bastion.demo import accounts  # lockout and equal-work password check, shared with the form login

    blocked = accounts.login_blocked(username)
    if blocked is not None:
        return blocked
    user = _conn().execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    if not accounts.password_matches(user, password):
        accounts.login_failed(username)
        _audit("anonymous", "token.failure", f"username={username[:80]}")
        return jsonify(error="invalid username or password"), 401
    accounts.login_succeeded(username)
    _audit(user["username"], "token.issued", f"user_id={user['id']}")
    return jsonify(_issue_pair(user))


@tokens_bp.post("/api/auth/refresh")
def refresh_token() -> Any:
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}  # a JSON array or scalar is not a credentials object
    token = str(body.get("refresh_token", ""))
    st = _state()
    try:
        claims = pyjwt.decode(token, st.refresh_secret, algorithms=["HS256"],
                              options={"require": ["exp", "sub", "jti"]})
    except pyjwt.PyJWTError:
        return jsonify(error="invalid refresh token"), 401
    if claims.get("typ") != "refresh":
        return jsonify(error="invalid refresh token"), 401
    with st.lock:
        if claims["jti"] in st.spent_refresh and not _planted("refresh_token_reuse"):
            return jsonify(error="refresh token already used"), 401
        st.spent_refresh.add(claims["jti"])
    user = _conn().execute("SELECT * FROM users WHERE id = ?", (claims["sub"],)).fetchone()
    if user is None:
        return jsonify(error="invalid refresh token"), 401
    return jsonify(_issue_pair(user))


@tokens_bp.get("/.well-known/jwks.json")
def jwks() -> Any:
    st = _state()
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(st.private_key.public_key()))
    jwk.update({"kid": st.kid, "use": "sig", "alg": "RS256"})
    return jsonify(keys=[jwk])


@tokens_bp.get("/api/me")
def me() -> Any:
    token = _bearer()
    if _planted("jwt_signature_unchecked") and token:
        # "Only for display: the other endpoints verify" -- yet it answers with the subject's profile.
        try:
            claims: dict[str, Any] | None = pyjwt.decode(token, options={"verify_signature": False,
                                                                         "verify_exp": True})
        except pyjwt.PyJWTError:
            claims = None
    else:
        claims = verify_access_token(token) if token else None
    user = _user_for(claims)
    if user is None:
        return jsonify(error="authentication required"), 401
    return jsonify(id=user["id"], username=user["username"], display_name=user["display_name"],
                   role=user["role"])


# --- verifying ----------------------------------------------------------------------------------------


def _bearer() -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if _planted("token_in_query"):
        # Added so CSV download links work without headers; every proxy log now holds tokens.
        return request.args.get("access_token") or None
    return None


def _hmac_claims(token: str, key: bytes, alg: str) -> dict[str, Any] | None:
    """Claims of an HMAC token whose signature matches `key` (hand-rolled, like the code it stands for)."""
    head, body, sig = token.split(".")
    try:
        ok = hmac.compare_digest(hmac_sign(f"{head}.{body}".encode(), key, alg), b64url_decode(sig))
    except ValueError:
        return None
    if not ok:
        return None
    claims = json.loads(b64url_decode(body))
    if not isinstance(claims, dict) or (isinstance(claims.get("exp"), int | float) and claims["exp"] <= time.time()):
        return None
    return claims


def verify_access_token(token: str) -> dict[str, Any] | None:
    """The claims of a valid access token, else None (the planted flaws loosen one branch each)."""
    st = _state()
    try:
        header = pyjwt.get_unverified_header(token)
        alg = str(header.get("alg", ""))
        kid = header.get("kid")
        if alg.lower() == "none":
            if not _planted("jwt_alg_none"):
                return None
            return pyjwt.decode(token, options={"verify_signature": False, "verify_exp": True})
        if alg.startswith("HS") and kid in (None, st.kid):
            if not _planted("jwt_key_confusion"):
                return None
            # One verify() for both key types: the "key" handed to HMAC is the RSA public key PEM.
            return _hmac_claims(token, st.public_pem, alg)
        if kid is not None and kid != st.kid:
            if not _planted("jwt_kid_injection") or not alg.startswith("HS") or not isinstance(kid, str):
                return None
            # Legacy partner keys are files named by kid; the kid is joined unchecked.
            with open(os.path.join(st.keys_dir, kid), "rb") as fh:
                key = fh.read(4096)
            return _hmac_claims(token, key, alg)
        required = ["sub"] if _planted("jwt_no_expiry") else ["exp", "sub"]
        return pyjwt.decode(token, st.private_key.public_key(), algorithms=["RS256"],
                            options={"require": required}, issuer=ISSUER)
    except (pyjwt.PyJWTError, OSError, ValueError):
        return None


def _user_for(claims: dict[str, Any] | None) -> sqlite3.Row | None:
    if not claims or claims.get("typ") != "access":
        return None
    row: sqlite3.Row | None = _conn().execute("SELECT * FROM users WHERE id = ?",
                                              (str(claims.get("sub", "")),)).fetchone()
    return row


def bearer_user() -> sqlite3.Row | None:
    """The user of a valid bearer access token on this request, else None (cookie sessions decide)."""
    token = _bearer()
    return _user_for(verify_access_token(token)) if token else None
