"""Probes for the demo's session and MFA flaws (bastion/demo/mfa.py, flask_app.py login/logout), for PROBES."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import httpx
import pyotp

from bastion.demo.db import TOTP_SECRETS, USERS

PASSWORDS = {name: pw for name, _, pw, _, _ in USERS}


def _code(user: str, offset: int = 0) -> str:
    return pyotp.TOTP(TOTP_SECRETS[user]).at(time.time() + 30 * offset)


def _password_step(c: httpx.Client, user: str) -> httpx.Response:
    return c.post("/login", data={"username": user, "password": PASSWORDS[user]})


def _signed_in(c: httpx.Client) -> bool:
    return c.get("/account").status_code == 200


def _full_login(c: httpx.Client, user: str, code: str | None = None) -> httpx.Response:
    assert _password_step(c, user).headers["location"].startswith("/mfa")
    return c.post("/mfa", data={"code": code or _code(user)})


def _session_fixation(c: httpx.Client) -> bool:
    planted = c.get("/").cookies["session_id"]
    _full_login(c, "alice")
    return c.cookies.get("session_id") == planted and _signed_in(c)


def _logout_not_server_side(c: httpx.Client) -> bool:
    assert _password_step(c, "bob").status_code == 302
    sid = c.cookies["session_id"]
    c.get("/logout")
    c.cookies.clear()
    return c.get("/account", cookies={"session_id": sid}).status_code == 200


def _session_no_expiry(c: httpx.Client) -> bool:
    return "2100" in _password_step(c, "bob").headers.get("set-cookie", "")


def _session_weak_id(c: httpx.Client) -> bool:
    first = c.get("/").cookies["session_id"]
    c.cookies.clear()
    second = c.get("/").cookies["session_id"]
    return first.isdigit() and int(second) - int(first) == 1


def _session_cookie_broad_domain(c: httpx.Client) -> bool:
    return "domain=bastion.local" in c.get("/").headers.get("set-cookie", "").lower()


def _mfa_step_skippable(c: httpx.Client) -> bool:
    _password_step(c, "alice")
    return _signed_in(c)


def _otp_not_bound(c: httpx.Client) -> bool:
    _full_login(c, "alice", code=_code("admin"))
    return _signed_in(c)


def _otp_reuse(c: httpx.Client) -> bool:
    code = _code("alice")
    _full_login(c, "alice", code)
    c.cookies.clear()
    _full_login(c, "alice", code)
    return _signed_in(c)


def _otp_unlimited_guesses(c: httpx.Client) -> bool:
    valid = {_code("alice", k) for k in range(-2, 125)}
    wrong = [f"{n:06d}" for n in range(123_456, 123_500) if f"{n:06d}" not in valid][:8]
    assert _password_step(c, "alice").status_code == 302
    for code in wrong:
        c.post("/mfa", data={"code": code})
    return c.post("/mfa", data={"code": _code("alice")}).status_code == 302 and _signed_in(c)


def _remember_device_forgeable(c: httpx.Client) -> bool:
    forged = base64.urlsafe_b64encode(json.dumps({"user": "admin"}).encode()).decode()
    c.cookies.set("mfa_remember", forged)
    return _password_step(c, "admin").headers["location"] == "/account" and _signed_in(c)


SESSION_PROBES: dict[str, Callable[[httpx.Client], bool]] = {
    "session_fixation": _session_fixation, "logout_not_server_side": _logout_not_server_side,
    "session_no_expiry": _session_no_expiry, "session_weak_id": _session_weak_id,
    "session_cookie_broad_domain": _session_cookie_broad_domain, "mfa_step_skippable": _mfa_step_skippable,
    "otp_not_bound": _otp_not_bound, "otp_reuse": _otp_reuse, "otp_unlimited_guesses": _otp_unlimited_guesses,
    "remember_device_forgeable": _remember_device_forgeable,
}
