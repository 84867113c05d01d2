"""Probes for the account API flaws (bastion/demo/signup_flaws.py), for PROBES in test_flask_flaws.py."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from bastion.demo.db import USERS


def _signup_role_from_body(c: httpx.Client) -> bool:
    """Sign up with `role: admin`, log in, open the admin area."""
    password = "Probe-signup-9xQ!long"
    created = c.post("/api/register", json={"username": "probe_signup", "email": "probe_signup@example.com",
                                            "password": password, "role": "admin"})
    assert created.status_code == 201, created.text
    assert c.post("/login", data={"username": "probe_signup", "password": password}).status_code in (302, 303)
    return c.get("/admin").status_code == 200


def _password_change_by_path(c: httpx.Client) -> bool:
    """Log in as bob, set alice's password through the path, log in as alice with it."""
    bob = next(pw for name, _, pw, _, _ in USERS if name == "bob")
    token = c.post("/api/auth/token", json={"username": "bob", "password": bob}).json()["access_token"]
    chosen = "Chosen-by-bob-9xQ!"
    changed = c.put("/api/users/alice/password", json={"password": chosen},
                    headers={"Authorization": f"Bearer {token}"})
    if changed.status_code != 204:
        return False
    login = c.post("/api/auth/token", json={"username": "alice", "password": chosen})
    return login.status_code == 200 or "mfa" in login.text.lower()


SIGNUP_PROBES: dict[str, Callable[[httpx.Client], bool]] = {
    "signup_role_from_body": _signup_role_from_body,
    "password_change_by_path": _password_change_by_path,
}
