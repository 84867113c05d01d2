"""Probes for the demo's credential-leak flaws (bastion/demo/identity_leaks.py), for PROBES.

Logging flaws are watched with a log sensor session; the IdP flaw needs the app wired to the IdP double
(see deps_probes.wired).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx

from bastion.sensors import SensorSession, sensor_session

from .deps_probes import wired


def _bob_token(c: httpx.Client) -> str:
    from bastion.demo.db import USERS

    password = next(pw for name, _, pw, _, _ in USERS if name == "bob")
    r = c.post("/api/auth/token", json={"username": "bob", "password": password})
    assert r.status_code == 200
    return str(r.json()["access_token"])


def _token_logged(c: httpx.Client) -> bool:
    token = _bob_token(c)
    with sensor_session(SensorSession()) as s:
        assert c.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    return any(token in e.raw_detail for e in s.of_kind("log"))


def _reset_token_logged(c: httpx.Client) -> bool:
    with sensor_session(SensorSession()) as s:
        assert c.post("/password-reset", data={"email": "bob@democorp.example"}).status_code == 200
    return any(re.search(r"token=[\w-]{16,}", e.raw_detail) for e in s.of_kind("log"))


def _reset_token_referer(c: httpx.Client) -> bool:
    r = c.get("/password-reset/new", params={"token": "a-reset-token-from-the-mail"})
    return r.status_code == 200 and 'content="unsafe-url"' in r.text and "https://support." in r.text


def _idp_token_expiry_unchecked(c: httpx.Client) -> bool:
    with wired(c) as w:
        now = int(time.time())
        stale = w.idp.issue("partner-1", audience="partner-api", iat=now - 7200, nbf=now - 7200, exp=now - 3600)
        fresh = w.client.get("/api/partner/catalog", headers={"Authorization": f"Bearer {w.token()}"})
        assert fresh.status_code == 200
        return w.client.get("/api/partner/catalog", headers={"Authorization": f"Bearer {stale}"}).status_code == 200


IDENTITY_LEAK_PROBES: dict[str, Callable[..., bool]] = {
    "token_logged": _token_logged, "reset_token_logged": _reset_token_logged,
    "reset_token_referer": _reset_token_referer, "idp_token_expiry_unchecked": _idp_token_expiry_unchecked,
}
