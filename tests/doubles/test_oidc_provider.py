"""The test OIDC provider: discovery, JWKS and rotation, code + PKCE, client credentials, refresh rotation,
userinfo, revocation, introspection — in-process over WSGI and served on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from bastion.doubles import OIDCError, OIDCProvider, pkce_challenge
from bastion.target.html import parse_html

REDIRECT = "http://rp.test/callback"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def idp() -> OIDCProvider:
    provider = OIDCProvider()
    provider.add_client("shop", secret="shop-secret", redirect_uris=[REDIRECT])
    provider.add_client("spa", redirect_uris=[REDIRECT])
    provider.add_user("alice", "alice-pw", email="alice@example.test", roles=["user"])
    return provider


def wsgi_client(provider: OIDCProvider) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=provider), base_url=provider.issuer)


def verify_with_jwks(token: str, jwks: dict, audience: str) -> dict:
    """What a relying party does: pick the key by kid from the published JWKS."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid]
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience)


def log_in(http: httpx.Client, params: dict[str, str], password: str = "alice-pw") -> httpx.Response:
    page = http.get("/authorize", params=params)
    assert page.status_code == 200, page.text
    form = next(parse_html(page.text).iter("form"))
    fields = {el.get("name"): el.get("value") or "" for el in form.iter("input") if el.get("type") == "hidden"}
    fields.update(username="alice", password=password)
    return http.post(form.get("action"), data=fields)


def test_discovery_and_jwks(idp: OIDCProvider) -> None:
    with wsgi_client(idp) as http:
        doc = http.get("/.well-known/openid-configuration").json()
        jwks = http.get(urlsplit(doc["jwks_uri"]).path).json()
    assert doc["issuer"] == idp.issuer
    assert doc["token_endpoint"] == idp.issuer + "/token"
    assert "S256" in doc["code_challenge_methods_supported"]
    assert [k["kid"] for k in jwks["keys"]] == [idp.active_kid]
    assert {"kty", "n", "e", "alg"} <= set(jwks["keys"][0])
    assert "d" not in jwks["keys"][0]  # never the private part


def test_authorization_code_with_pkce_and_nonce(idp: OIDCProvider) -> None:
    verifier = "v" * 50
    params = {"response_type": "code", "client_id": "spa", "redirect_uri": REDIRECT, "scope": "openid email",
              "state": "st-1", "nonce": "n-1", "code_challenge": pkce_challenge(verifier),
              "code_challenge_method": "S256"}
    with wsgi_client(idp) as http:
        answer = log_in(http, params)
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location.startswith(REDIRECT + "?")
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert query["state"] == "st-1"
        wrong = http.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                                          "redirect_uri": REDIRECT, "client_id": "spa", "code_verifier": "x" * 50})
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        # The failed attempt burnt the code (single use, whatever happens): start again.
        query = {k: v[0] for k, v in parse_qs(urlsplit(log_in(http, params).headers["location"]).query).items()}
        tokens = http.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                                           "redirect_uri": REDIRECT, "client_id": "spa", "code_verifier": verifier})
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        replay = http.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                                           "redirect_uri": REDIRECT, "client_id": "spa", "code_verifier": verifier})
        assert replay.status_code == 400
        jwks = http.get("/jwks").json()
    id_claims = verify_with_jwks(body["id_token"], jwks, audience="spa")
    assert id_claims["nonce"] == "n-1" and id_claims["sub"] == "alice" and id_claims["email"] == "alice@example.test"
    assert verify_with_jwks(body["access_token"], jwks, audience="spa")["scope"] == "openid email"
    assert body["refresh_token"] and body["token_type"] == "Bearer" and body["expires_in"] == 300


def test_authorize_refuses_bad_requests(idp: OIDCProvider) -> None:
    base = {"response_type": "code", "client_id": "shop", "redirect_uri": REDIRECT, "state": "s"}
    with wsgi_client(idp) as http:
        stolen = http.get("/authorize", params={**base, "redirect_uri": "http://evil.test/cb"})
        assert stolen.status_code == 400 and "location" not in stolen.headers
        assert http.get("/authorize", params={**base, "client_id": "nobody"}).status_code == 400
        implicit = http.get("/authorize", params={**base, "response_type": "token"})
        assert "error=unsupported_response_type" in implicit.headers["location"]
        no_pkce = http.get("/authorize", params={**base, "client_id": "spa"})
        assert "error=invalid_request" in no_pkce.headers["location"]
        wrong = log_in(http, base, password="nope")
        assert wrong.status_code == 401 and "Invalid username or password" in wrong.text
    with wsgi_client(idp) as fresh:  # no login page seen: no CSRF cookie
        no_csrf = fresh.post("/authorize", data={**base, "username": "alice", "password": "alice-pw"})
        assert no_csrf.status_code == 400


def test_client_credentials(idp: OIDCProvider) -> None:
    with wsgi_client(idp) as http:
        ok = http.post("/token", data={"grant_type": "client_credentials", "scope": "api"},
                       auth=("shop", "shop-secret"))
        assert ok.status_code == 200 and "refresh_token" not in ok.json()
        assert idp.verify(ok.json()["access_token"])["sub"] == "shop"
        bad = http.post("/token", data={"grant_type": "client_credentials"}, auth=("shop", "wrong"))
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        public = http.post("/token", data={"grant_type": "client_credentials", "client_id": "spa"})
        assert public.json()["error"] == "unauthorized_client"
        junk = http.post("/token", data={"grant_type": "password"}, auth=("shop", "shop-secret"))
        assert junk.json()["error"] == "unsupported_grant_type"


def test_refresh_tokens_rotate_and_a_replay_ends_the_family(idp: OIDCProvider) -> None:
    first = idp.issue_tokens("alice", client_id="shop")
    with wsgi_client(idp) as http:
        def refresh(token: str) -> httpx.Response:
            return http.post("/token", data={"grant_type": "refresh_token", "refresh_token": token},
                             auth=("shop", "shop-secret"))

        second = refresh(first["refresh_token"])
        assert second.status_code == 200
        assert second.json()["refresh_token"] != first["refresh_token"]
        assert refresh(first["refresh_token"]).status_code == 400  # used: rejected
        # The replay looked like theft: the token issued by the rotation is dead too.
        assert refresh(second.json()["refresh_token"]).status_code == 400


def test_userinfo_revoke_and_introspect(idp: OIDCProvider) -> None:
    token = idp.issue("alice", client_id="shop")
    with wsgi_client(idp) as http:
        info = http.get("/userinfo", headers={"authorization": f"Bearer {token}"})
        assert info.json() == {"sub": "alice", "email": "alice@example.test", "roles": ["user"]}
        assert http.get("/userinfo").status_code == 401
        live = http.post("/introspect", data={"token": token}, auth=("shop", "shop-secret")).json()
        assert live["active"] is True and live["sub"] == "alice"
        assert http.post("/revoke", data={"token": token}, auth=("shop", "shop-secret")).status_code == 200
        assert http.post("/introspect", data={"token": token}, auth=("shop", "shop-secret")).json() == {
            "active": False}
        assert http.get("/userinfo", headers={"authorization": f"Bearer {token}"}).status_code == 401
        assert http.post("/introspect", data={"token": token}, auth=("spa", "")).status_code == 401


def test_key_rotation_keeps_the_old_key_during_the_grace_period() -> None:
    clock = Clock()
    idp = OIDCProvider(now=clock, key_grace=600)
    old = idp.issue("alice", ttl=3600)
    old_kid = idp.active_kid
    new_kid = idp.rotate_keys()
    new = idp.issue("alice", ttl=3600)
    assert jwt.get_unverified_header(new)["kid"] == new_kid != old_kid
    assert [k["kid"] for k in idp.jwks()["keys"]] == [old_kid, new_kid]
    assert idp.verify(old)["sub"] == "alice"
    clock.t += 601
    assert [k["kid"] for k in idp.jwks()["keys"]] == [new_kid]
    with pytest.raises(OIDCError, match="unknown signing key"):
        idp.verify(old)
    assert idp.verify(new)["sub"] == "alice"


def test_expired_tokens_are_validly_signed_but_expired() -> None:
    clock = Clock()
    idp = OIDCProvider(now=clock, access_ttl=1)
    token = idp.issue("alice")
    assert idp.verify(token)
    clock.t += 1
    with pytest.raises(OIDCError, match="expired"):
        idp.verify(token)
    fresh_idp = OIDCProvider()
    stale = fresh_idp.expire(fresh_idp.issue("bob"))
    assert jwt.decode(stale, options={"verify_signature": False})["sub"] == "bob"
    key = jwt.PyJWKSet.from_dict(fresh_idp.jwks())[jwt.get_unverified_header(stale)["kid"]]
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(stale, key.key, algorithms=["RS256"], audience=fresh_idp.issuer)


def test_hostile_requests_get_protocol_errors(idp: OIDCProvider) -> None:
    with wsgi_client(idp) as http:
        big = http.post("/token", content=b"a" * (70 * 1024),
                        headers={"content-type": "application/x-www-form-urlencoded"})
        assert big.status_code == 413
        bad_basic = http.post("/token", data={"grant_type": "client_credentials"},
                              headers={"authorization": "Basic !!!"})
        assert bad_basic.status_code == 401
        assert http.get("/token").status_code == 405
        assert http.get("/nope").status_code == 404


def test_served_on_localhost_and_stopped_on_exit() -> None:
    idp = OIDCProvider()
    with idp.serve() as served:
        assert served is idp
        parts = urlsplit(idp.issuer)
        assert parts.hostname == "127.0.0.1" and parts.port
        doc = httpx.get(idp.issuer + "/.well-known/openid-configuration").json()
        assert doc["issuer"] == idp.issuer and doc["jwks_uri"].startswith(idp.issuer)
        assert idp.verify(idp.issue("alice"))["iss"] == idp.issuer
    assert idp.issuer == "http://idp.bastion.test"
    assert not [t for t in threading.enumerate() if t.name == f"bastion-double-{parts.port}"]
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", parts.port), timeout=1):
        pass


def test_oidc_provider_fixture(oidc_provider: OIDCProvider) -> None:
    assert urlsplit(oidc_provider.issuer).hostname == "127.0.0.1"
    assert httpx.get(oidc_provider.issuer + "/jwks").json()["keys"]
