"""A small third-party-style relying party for the OIDC login tests: Flask, cookie sessions and bearer APIs.

It verifies ID and access tokens against the provider's JWKS (cached by `kid`, fetched again when a
token names an unknown key) and checks expiry against an injectable clock, as a real RP would with
real time.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from flask import Flask, jsonify, redirect, request, session

from bastion.doubles import OIDCProvider, OIDCUser
from bastion.target.target import Target

RP_BASE = "http://rp.test"
CALLBACK = RP_BASE + "/callback"
CLIENT_ID, CLIENT_SECRET = "rp", "rp-client-secret"
ALICE_PASSWORD = "alice-Passw0rd!"


class Clock:
    """A clock the test moves by hand (never sleep)."""

    def __init__(self, start: float | None = None) -> None:
        self.t = time.time() if start is None else start

    def __call__(self) -> float:
        return self.t


def register(idp: OIDCProvider) -> OIDCUser:
    """The RP's client, a confidential machine client, a public CLI client, and alice."""
    idp.add_client(CLIENT_ID, secret=CLIENT_SECRET, redirect_uris=[CALLBACK])
    idp.add_client("reporting-job", secret="job-secret")
    idp.add_client("bastion-cli", redirect_uris=["http://127.0.0.1/bastion-callback"])
    return idp.add_user("alice", ALICE_PASSWORD, email="alice@example.test")


class RelyingParty:
    """The RP's token verification: JWKS cache by kid, refetched on an unknown kid."""

    def __init__(self, issuer: str, clock: Callable[[], float] = time.time) -> None:
        self.issuer, self.clock = issuer, clock
        self.keys: dict[str, Any] = {}
        self.jwks_fetches = 0
        self.seen_tokens: list[str] = []

    def _key(self, kid: str) -> Any:
        if kid not in self.keys:
            doc = httpx.get(self.issuer + "/.well-known/openid-configuration").json()
            self.jwks_fetches += 1
            self.keys = {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(httpx.get(doc["jwks_uri"]).json()).keys}
        return self.keys[kid]

    def verify(self, token: str, audience: str | None = None) -> dict[str, Any]:
        key = self._key(jwt.get_unverified_header(token).get("kid", ""))
        claims = jwt.decode(token, key, algorithms=["RS256"], issuer=self.issuer, audience=audience,
                            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                     "verify_aud": audience is not None})
        if self.clock() >= claims["exp"]:
            raise jwt.ExpiredSignatureError("expired")
        return claims


def rp_app(idp: OIDCProvider, rp: RelyingParty, *, session_max_age: int | None = None) -> Flask:
    app = Flask("rp")
    app.secret_key = secrets.token_hex(16)

    @app.get("/login/oidc")
    def start():  # type: ignore[no-untyped-def]
        session["state"], session["nonce"] = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
        query = httpx.QueryParams({"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": CALLBACK,
                                   "scope": "openid email", "state": session["state"], "nonce": session["nonce"]})
        return redirect(f"{idp.issuer}/authorize?{query}")

    @app.get("/callback")
    def callback():  # type: ignore[no-untyped-def]
        if request.args.get("state") != session.pop("state", None):
            return "bad state", 400
        answer = httpx.post(idp.issuer + "/token", auth=(CLIENT_ID, CLIENT_SECRET),
                            data={"grant_type": "authorization_code", "code": request.args.get("code", ""),
                                  "redirect_uri": CALLBACK})
        if answer.status_code != 200:
            return "token exchange failed", 502
        try:
            claims = rp.verify(answer.json()["id_token"], audience=CLIENT_ID)
        except jwt.PyJWTError:
            return "bad id token", 401
        if claims.get("nonce") != session.pop("nonce", None):
            return "bad nonce", 401
        session.clear()
        session["user"] = claims["sub"]
        response = redirect("/me")
        if session_max_age is not None:
            app.config["PERMANENT_SESSION_LIFETIME"] = session_max_age
            session.permanent = True
        return response

    @app.get("/me")
    def me():  # type: ignore[no-untyped-def]
        if "user" not in session:
            return jsonify(error="login required"), 401
        return jsonify(user=session["user"])

    @app.get("/api/whoami")
    def whoami():  # type: ignore[no-untyped-def]
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return jsonify(error="token required"), 401
        rp.seen_tokens.append(token)
        try:
            claims = rp.verify(token)
        except (jwt.PyJWTError, KeyError):
            return jsonify(error="invalid token"), 401
        return jsonify(sub=claims["sub"], client_id=claims.get("client_id"))

    return app


def rp_target(idp: OIDCProvider, rp: RelyingParty, **kwargs: Any) -> Target:
    return Target.from_app(rp_app(idp, rp, **kwargs), base_url=RP_BASE)
