"""Probes for the demo's privacy and audit flaws (bastion/demo/privacy.py, flask_app.py login), for PROBES.

Tampering with the trail and storing an expired record cannot be done over HTTP: those probes call the
hooks the demo's threat model names (`audit.tamper`, `retention.*.seed` in bastion.demo.demo_config).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pyotp

from bastion.demo.db import TOTP_SECRETS, USERS
from bastion.demo.privacy import seed_expired_payment_method, tamper_audit
from bastion.demo.privacy_model import PAYMENT_RETENTION_DAYS

from .clients import flask_client

PASSWORDS = {name: pw for name, _, pw, _, _ in USERS}
# A full card number (13-19 digits, optionally grouped) and a full IBAN; masked values keep only 4 digits.
_PAN = re.compile(r"\b\d{4}(?:[ -]?\d{3,4}){2,3}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")


def _app(c: httpx.Client) -> Any:
    return c._transport.app  # type: ignore[attr-defined]  # the WSGI app flask_client wraps


def _sign_in(c: httpx.Client, user: str) -> httpx.Client:
    r = c.post("/login", data={"username": user, "password": PASSWORDS[user]})
    assert r.status_code == 302, r.text
    if user in TOTP_SECRETS:  # the second factor (bastion/demo/mfa.py)
        assert c.post("/mfa", data={"code": pyotp.TOTP(TOTP_SECRETS[user]).at(time.time())}).status_code == 302
    return c


def _audit_log_has_passwords(c: httpx.Client) -> bool:
    assert c.post("/login", data={"username": "guest", "password": "bstauditpw01"}).status_code == 401
    trail = _sign_in(flask_client(_app(c)), "admin").get("/admin/audit")
    assert trail.status_code == 200 and "login.failure" in trail.text
    return "bstauditpw01" in trail.text


def _audit_log_editable(c: httpx.Client) -> bool:
    _sign_in(c, "admin")
    before = c.get("/admin/audit/verify")
    assert before.status_code == 200 and before.json()["valid"] is True
    tamper_audit(_app(c))
    after = c.get("/admin/audit/verify")
    return after.status_code == 200 and after.json()["valid"] is True


def _pii_in_export(c: httpx.Client) -> bool:
    r = _sign_in(c, "alice").get("/api/payment-methods/export")
    assert r.status_code == 200 and r.text.startswith("holder,"), r.text
    return bool(_PAN.search(r.text)) and bool(_IBAN.search(r.text))


def _purge_misses_exports(c: httpx.Client) -> bool:
    markers = seed_expired_payment_method(_app(c), PAYMENT_RETENTION_DAYS)
    alice = _sign_in(flask_client(_app(c)), "alice")
    # alice's own export now copies the expired record into the archive too.
    assert alice.get("/api/payment-methods/export").status_code == 200
    assert all(m in alice.get("/api/exports").text for m in markers)
    purge = _sign_in(c, "admin").post("/admin/privacy/purge")
    assert purge.status_code == 200 and purge.json()["removed"] >= 1
    assert not any(m in alice.get("/api/payment-methods/export").text for m in markers)
    return any(m in alice.get("/api/exports").text for m in markers)


PRIVACY_PROBES: dict[str, Callable[..., bool]] = {
    "audit_log_has_passwords": _audit_log_has_passwords, "audit_log_editable": _audit_log_editable,
    "pii_in_export": _pii_in_export, "purge_misses_exports": _purge_misses_exports,
}
