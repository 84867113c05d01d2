"""Probes for the demo's authorization flaws (bastion/demo/profile.py): each True when the flaw is observable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

BOB = ("bob", "bob-Bu1lder-42")  # a form login without a second factor


def _login_bob(c: httpx.Client) -> None:
    assert c.post("/login", data={"username": BOB[0], "password": BOB[1]}).status_code == 302


def _set_role(c: httpx.Client, username: str, role: str) -> None:
    app: Any = c._transport.app  # type: ignore[attr-defined]  # the WSGI app behind the test client
    with app.extensions["bastion_demo"].workspace.db.connect() as conn:
        conn.execute("UPDATE users SET role = ? WHERE username = ?", (role, username))


def _profile_mass_assignment(c: httpx.Client) -> bool:
    _login_bob(c)
    c.post("/api/profile", json={"display_name": "Bob", "role": "admin"})
    return c.get("/api/profile").json()["role"] == "admin"


def _invoice_write_bola(c: httpx.Client) -> bool:
    _login_bob(c)
    changed = c.put("/api/invoices/2", json={"customer": "Tampered Ltd"}).status_code == 200  # alice's INV-1002
    return changed and c.delete("/api/invoices/3").status_code == 204


def _excessive_data_exposure(c: httpx.Client) -> bool:
    _login_bob(c)
    return "password_hash" in c.get("/api/users").text


def _stale_privileges(c: httpx.Client) -> bool:
    _set_role(c, "bob", "admin")
    _login_bob(c)
    assert c.get("/admin").status_code == 200
    _set_role(c, "bob", "user")  # demoted while the session lives on
    return c.get("/admin").status_code == 200


AUTHZ_PROBES: dict[str, Callable[[httpx.Client], bool]] = {
    "profile_mass_assignment": _profile_mass_assignment, "invoice_write_bola": _invoice_write_bola,
    "excessive_data_exposure": _excessive_data_exposure, "stale_privileges": _stale_privileges,
}
