"""The `forge_jwt` pytest fixture: Bastion's JWT forging toolkit for hand-written security tests."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.identity import jwt as toolkit


class ForgeJWT:
    """`forge_jwt(claims, header=None, alg="none", key=None)` plus the toolkit's helpers as attributes.

        def test_alg_none_refused(bastion_client, forge_jwt):
            token = forge_jwt({"sub": "1", "role": "admin"})
            assert bastion_client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status == 401
    """

    decode = staticmethod(toolkit.decode_unverified)
    looks_like_jwt = staticmethod(toolkit.looks_like_jwt)
    with_claims = staticmethod(toolkit.with_claims)
    strip_signature = staticmethod(toolkit.strip_signature)
    tamper_signature = staticmethod(toolkit.tamper_signature)
    resign_hs_with_public_key = staticmethod(toolkit.resign_hs_with_public_key)
    expired_copy = staticmethod(toolkit.expired_copy)
    not_yet_valid_copy = staticmethod(toolkit.not_yet_valid_copy)
    kid_variants = staticmethod(toolkit.kid_variants)
    crack_hs = staticmethod(toolkit.crack_hs)
    public_pems_from_jwks = staticmethod(toolkit.public_pems_from_jwks)

    def __call__(self, claims: dict[str, Any], header: dict[str, Any] | None = None, alg: str = "none",
                 key: Any = None) -> str:
        return toolkit.forge(claims, header, alg=alg, key=key)

    @property
    def weak_secrets(self) -> list[str]:
        """Bastion's bounded dictionary of weak HMAC secrets (for `crack_hs`)."""
        from bastion.payloads import load_payloads

        return [str(s) for s in load_payloads().get("jwt_secrets")]


@pytest.fixture
def forge_jwt() -> ForgeJWT:
    """Forge JWTs: `forge_jwt(claims, alg="none"|"HS256"|"RS256", key=...)`, `forge_jwt.with_claims(...)`, ..."""
    return ForgeJWT()
