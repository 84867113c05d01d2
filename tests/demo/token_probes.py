"""Observable behaviour of the demo's token flaws (bastion/demo/tokens.py), for test_flask_flaws.PROBES."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from bastion.demo.tokens import TUTORIAL_SECRET
from bastion.identity.jwt import decode_unverified, forge, kid_variants, resign_hs_with_public_key, with_claims


def _pair(c: httpx.Client) -> dict[str, str]:
    from bastion.demo.db import USERS

    password = next(pw for name, _, pw, _, _ in USERS if name == "bob")
    r = c.post("/api/auth/token", json={"username": "bob", "password": password})
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def _opens_account(c: httpx.Client, token: str) -> bool:
    return c.get("/account", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def _jwt_alg_none(c: httpx.Client) -> bool:
    decoded = decode_unverified(_pair(c)["access_token"])
    return _opens_account(c, forge(decoded.claims, {"kid": decoded.header["kid"]}, alg="none"))


def _jwt_key_confusion(c: httpx.Client) -> bool:
    token = _pair(c)["access_token"]
    import jwt as pyjwt
    from cryptography.hazmat.primitives import serialization

    jwk = c.get("/.well-known/jwks.json").json()["keys"][0]
    pem = pyjwt.PyJWK(jwk).key.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    return _opens_account(c, resign_hs_with_public_key(token, pem))


def _jwt_kid_injection(c: httpx.Client) -> bool:
    token = _pair(c)["access_token"]
    return any(_opens_account(c, forged) for _, forged in kid_variants(token)[:1])


def _jwt_signature_unchecked(c: httpx.Client) -> bool:
    token = with_claims(_pair(c)["access_token"], {"sub": "2"})  # alice's id, old signature
    r = c.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code == 200 and r.json()["username"] == "alice"


def _jwt_weak_secret(c: httpx.Client) -> bool:
    forged = with_claims(_pair(c)["refresh_token"], {"sub": "1", "jti": "forged"}, key=TUTORIAL_SECRET)
    return c.post("/api/auth/refresh", json={"refresh_token": forged}).status_code == 200


def _jwt_no_expiry(c: httpx.Client) -> bool:
    return "exp" not in decode_unverified(_pair(c)["access_token"]).claims


def _token_in_query(c: httpx.Client) -> bool:
    return c.get("/account", params={"access_token": _pair(c)["access_token"]}).status_code == 200


def _refresh_token_reuse(c: httpx.Client) -> bool:
    old = _pair(c)["refresh_token"]
    first = c.post("/api/auth/refresh", json={"refresh_token": old})
    again = c.post("/api/auth/refresh", json={"refresh_token": old})
    return first.status_code == 200 and again.status_code == 200


TOKEN_PROBES: dict[str, Callable[[httpx.Client], bool]] = {
    "jwt_alg_none": _jwt_alg_none, "jwt_key_confusion": _jwt_key_confusion,
    "jwt_kid_injection": _jwt_kid_injection, "jwt_signature_unchecked": _jwt_signature_unchecked,
    "jwt_weak_secret": _jwt_weak_secret, "jwt_no_expiry": _jwt_no_expiry, "token_in_query": _token_in_query,
    "refresh_token_reuse": _refresh_token_reuse,
}
