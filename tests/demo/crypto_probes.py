"""Probes for the demo's runtime crypto, log and session-trust flaws (bastion/demo/notes.py area), for PROBES.

Blind flaws show nothing in a response: their probes watch the app through a sensor session.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from bastion.sensors import SensorSession, sensor_session
from bastion.sensors import crypto as sensed

NEW_PASSWORD = "Zq9-long-passphrase!"


def _sensed(kind: str, act: Callable[[], object]) -> bool:
    with sensor_session(SensorSession()) as s:
        act()
    return bool(s.of_kind(kind))


def _aes_gcm_static_nonce(c: httpx.Client) -> bool:
    c.post("/login", data={"username": "guest", "password": "guest"})

    def two_notes() -> None:
        for title in ("one", "two"):
            assert c.post("/api/notes", json={"title": title, "body": "secret"}).status_code == 201

    reused = _sensed(sensed.NONCE_REUSE, two_notes)
    assert [n["body"] for n in c.get("/api/notes").json()["notes"]] == ["secret", "secret"]
    return reused


def _sign_up(c: httpx.Client, name: str) -> None:
    r = c.post("/signup", data={"username": name, "email": f"{name}@example.com", "password": NEW_PASSWORD})
    assert r.status_code in (201, 303), r.text


def _md5_password_hashes(c: httpx.Client) -> bool:
    weak = _sensed(sensed.PASSWORD_HASH, lambda: _sign_up(c, "carol"))
    assert c.post("/login", data={"username": "carol", "password": NEW_PASSWORD}).status_code in (200, 302, 303)
    return weak


def _random_reset_tokens(c: httpx.Client) -> bool:
    _sign_up(c, "dave")
    return _sensed(sensed.WEAK_RANDOM, lambda: c.post("/password-reset", data={"email": "dave@example.com"}))


def _password_logged_at_login(c: httpx.Client) -> bool:
    with sensor_session(SensorSession()) as s:
        c.post("/login", data={"username": "guest", "password": "guest-bstlogpw01"})
    return any("bstlogpw01" in e.raw_detail for e in s.of_kind("log"))


def _session_trust_boundary(c: httpx.Client) -> bool:
    r = c.get("/preferences", params={"currency": "bstcurrency1"})
    return r.status_code == 200 and c.get("/preferences").json()["currency"] == "bstcurrency1"


CRYPTO_PROBES: dict[str, Callable[..., bool]] = {
    "aes_gcm_static_nonce": _aes_gcm_static_nonce, "md5_password_hashes": _md5_password_hashes,
    "random_reset_tokens": _random_reset_tokens, "password_logged_at_login": _password_logged_at_login,
    "session_trust_boundary": _session_trust_boundary,
}
