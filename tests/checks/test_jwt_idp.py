"""Expired / not-yet-valid tokens of Bastion's IdP double: demo flaw, hardened twin, third-party services."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from flask import Flask, jsonify, request

from bastion.doubles.oidc import OIDCProvider
from bastion.engine.runner import ScanResult
from bastion.identity.jwt import JWT_IN_TEXT
from bastion.testing import findings_of

from .deps_services import scan_service

CHECK = "jwt.expired-accepted-idp"
DEPS = {"sso": {"kind": "oidc", "double": True, "audience": "inventory-api"}}


def test_demo_flaw_is_found(scan_demo: Callable[..., ScanResult]) -> None:
    (f,) = findings_of(scan_demo(flaws="idp_token_expiry_unchecked", checks=[CHECK]), CHECK)
    assert f.confidence.value == "confirmed" and f.role is None
    assert (f.location.method, f.location.path) == ("GET", "/api/partner/catalog")
    assert f.title.startswith("Expired identity-provider token accepted")
    claims = next(e.content for e in f.evidence if e.summary.startswith("forged token"))
    # Clock values relative to iat, the double's port and key id named: equal runs, equal evidence.
    assert '"exp": "iat+' in claims and "<idp double>" in claims and "<idp key id>" in claims
    assert not JWT_IN_TEXT.search(json.dumps(f.public_dict()))


def test_hardened_demo_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=[CHECK])
    assert findings_of(result, CHECK) == []
    assert result.checks[0].requests > 0  # the partner routes were probed, not skipped


def test_idp_double_refuses_not_yet_valid_tokens() -> None:
    idp = OIDCProvider(key_size=2048)
    now = int(idp.now())
    early = idp.issue("x", nbf=now + 600, exp=now + 1200)
    assert idp.introspect(early) == {"active": False}
    assert idp.introspect(idp.issue("x"))["active"] is True


def inventory_app(*, leeway: timedelta | None = None, verify_exp: bool = True, verify_nbf: bool = True) -> Flask:
    """A service verifying the IdP's RS256 tokens against its JWKS (fetched at start-up)."""
    issuer = os.environ["OIDC_ISSUER"]
    keys = {k.key_id: k.key for k in pyjwt.PyJWKSet.from_dict(httpx.get(issuer + "/jwks").json()).keys}
    app = Flask(__name__)

    @app.get("/stock")
    def stock() -> Any:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return jsonify(error="token required"), 401
        token = auth[7:]
        try:
            key = keys[pyjwt.get_unverified_header(token).get("kid")]
            pyjwt.decode(token, key, algorithms=["RS256"], audience="inventory-api", issuer=issuer,
                         leeway=leeway or timedelta(seconds=10),
                         options={"verify_exp": verify_exp, "verify_nbf": verify_nbf})
        except (pyjwt.PyJWTError, KeyError):
            return jsonify(error="invalid token"), 401
        return jsonify(items=[{"sku": "A-1", "count": 3}])

    @app.get("/health")
    def health() -> Any:
        return jsonify(ok=True)

    return app


@pytest.mark.parametrize(("flags", "expected"), [
    ({}, None),
    ({"verify_exp": False}, "Expired"),
    ({"verify_nbf": False}, "Not yet valid"),
    ({"leeway": timedelta(hours=3)}, "Expired"),
], ids=["safe", "exp-unchecked", "nbf-unchecked", "leeway-hours"])
def test_third_party_inventory_service(flags: dict[str, Any], expected: str | None) -> None:
    result = scan_service(lambda: inventory_app(**flags), DEPS, [CHECK])
    found = findings_of(result, CHECK)
    if expected is None:
        assert found == [] and result.checks[0].requests > 0
    else:
        (f,) = found
        assert f.location.path == "/stock" and f.title.startswith(expected)


def test_skipped_without_an_idp_double() -> None:
    result = scan_service(lambda: Flask(__name__), {"bus": {"kind": "queue", "double": True}}, [CHECK])
    assert result.findings == [] and result.checks[0].requests == 0
    assert "OIDC double" in (result.checks[0].unit_records[0].skipped or "")
