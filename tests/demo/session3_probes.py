"""Probes for the demo flaws in alerting, store outages, the response schema and JWT claims, for PROBES.

- `no_alert_credential_stuffing` (bastion/demo/alerts.py): watched with a log sensor session.
- `permission_db_fail_open`, `revocation_cache_fail_open` (bastion/demo/resilience_deps.py): the store is made
  unavailable by patching its client in the test, not by Bastion's fault injection (that is what the scan tests).
- `undeclared_password_hash_field` (bastion/demo/openapi_doc.py): the response against the published schema.
- `jwt_role_claim_trusted` (bastion/demo/jwt_claims.py): bob's token with `role: admin` and the old signature.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any
from unittest import mock

import httpx

from bastion.demo.alerts import ALERT_THRESHOLD, LOGGER
from bastion.demo.db import USERS
from bastion.sensors import SensorSession, sensor_session


def _login(c: httpx.Client, username: str) -> None:
    password = next(pw for name, _, pw, _, _ in USERS if name == username)
    assert c.post("/login", data={"username": username, "password": password}).status_code == 302


def _no_alert_credential_stuffing(c: httpx.Client) -> bool:
    with sensor_session(SensorSession()) as s:
        for i in range(ALERT_THRESHOLD + 2):
            c.post("/login", data={"username": f"stuffed{i}@example.test", "password": f"leaked-{i}"})
    alerted = [e for e in s.of_kind("log") if LOGGER in e.raw_detail or "credential stuffing" in e.raw_detail]
    return not alerted


def _permission_db_fail_open(c: httpx.Client) -> bool:
    _login(c, "bob")
    assert c.get("/api/deps/ledger").status_code == 403
    real_connect = sqlite3.connect

    def refuse(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if str(database).endswith("permissions.sqlite3"):
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(database, *args, **kwargs)

    with mock.patch("bastion.demo.resilience_deps.sqlite3.connect", refuse):
        return c.get("/api/deps/ledger").status_code == 200


def _revocation_cache_fail_open(c: httpx.Client) -> bool:
    import redis

    class DownCache:
        def sismember(self, *_: Any) -> bool:
            raise redis.ConnectionError("cache down")

    stores = c._transport.app.extensions["bastion_demo.stores"]  # type: ignore[attr-defined]
    _login(c, "bob")
    with mock.patch.object(stores, "cache", DownCache()):
        return c.get("/api/deps/statement").status_code == 200


def _jwt_role_claim_trusted(c: httpx.Client) -> bool:
    from bastion.identity.jwt import with_claims

    password = next(pw for name, _, pw, _, _ in USERS if name == "bob")
    token = c.post("/api/auth/token", json={"username": "bob", "password": password}).json()["access_token"]
    assert c.get("/api/admin/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    raised = with_claims(token, {"role": "admin"})  # the old signature kept
    return c.get("/api/admin/metrics", headers={"Authorization": f"Bearer {raised}"}).status_code == 200


def _undeclared_password_hash_field(c: httpx.Client) -> bool:
    _login(c, "bob")
    declared = c.get("/openapi.json").json()["paths"]["/api/account/summary"]["get"]["responses"]["200"]
    schema = declared["content"]["application/json"]["schema"]
    body = c.get("/api/account/summary").json()
    return bool(set(body) - set(schema.get("properties", {})))


SESSION3_PROBES: dict[str, Callable[[httpx.Client], bool]] = {
    "no_alert_credential_stuffing": _no_alert_credential_stuffing,
    "permission_db_fail_open": _permission_db_fail_open,
    "revocation_cache_fail_open": _revocation_cache_fail_open,
    "undeclared_password_hash_field": _undeclared_password_hash_field,
    "jwt_role_claim_trusted": _jwt_role_claim_trusted,
}
