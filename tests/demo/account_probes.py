"""Probes for the demo's account flaws (bastion/demo/accounts.py): each True when the flaw is observable."""

from __future__ import annotations

from collections.abc import Callable

import httpx

ALICE = ("alice", "alice-Wonder1and", "alice@democorp.example")


def _login(c: httpx.Client, username: str, password: str) -> httpx.Response:
    return c.post("/login", data={"username": username, "password": password})


def _login_no_lockout(c: httpx.Client) -> bool:
    for _ in range(8):
        _login(c, ALICE[0], "wrong-password-1")
    return _login(c, ALICE[0], ALICE[1]).status_code == 302


def _login_user_enumeration(c: httpx.Client) -> bool:
    return _login(c, ALICE[0], "wrong-password-1").text != _login(c, "nobody-here", "wrong-password-1").text


def _reset_user_enumeration(c: httpx.Client) -> bool:
    return c.post("/password-reset", data={"email": "nobody@democorp.example"}).status_code == 404


def _reset_no_rate_limit(c: httpx.Client) -> bool:
    return all(c.post("/password-reset", data={"email": ALICE[2]}).status_code == 200 for _ in range(8))


def _reset_token_in_response(c: httpx.Client) -> bool:
    return "reset_token" in c.post("/password-reset", json={"email": ALICE[2]}).json()


def _mailed_token(c: httpx.Client) -> str:
    c.post("/password-reset", data={"email": ALICE[2]})
    app = c._transport.app  # type: ignore[attr-defined]  # the WSGI app behind the test client
    conn = app.extensions["bastion_demo"].workspace.db.connect()
    body = conn.execute("SELECT body FROM outbox ORDER BY id DESC LIMIT 1").fetchone()["body"]
    return str(body.rsplit(" ", 1)[1])


def _reset_token_reuse(c: httpx.Client) -> bool:
    token = _mailed_token(c)
    first = c.post("/password-reset/confirm", data={"token": token, "password": "Fresh-Passw0rd-1"})
    again = c.post("/password-reset/confirm", data={"token": token, "password": "Fresh-Passw0rd-2"})
    assert first.status_code == 200
    return again.status_code == 200


def _weak_password_policy(c: httpx.Client) -> bool:
    return c.post("/signup", data={"username": "weakling", "email": "weak@example.com",
                                   "password": "123456"}).status_code == 303


def _credentials_in_url(c: httpx.Client) -> bool:
    return c.post("/login", params={"username": ALICE[0], "password": ALICE[1]}, data={}).status_code == 302


ACCOUNT_PROBES: dict[str, Callable[..., bool]] = {
    "login_no_lockout": _login_no_lockout, "login_user_enumeration": _login_user_enumeration,
    "reset_user_enumeration": _reset_user_enumeration, "reset_no_rate_limit": _reset_no_rate_limit,
    "reset_token_in_response": _reset_token_in_response, "reset_token_reuse": _reset_token_reuse,
    "weak_password_policy": _weak_password_policy, "credentials_in_url": _credentials_in_url,
}
