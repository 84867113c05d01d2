"""Probe for the demo's CSRF flaw (bastion/demo/csrf_flaws.py): True when the flaw is observable."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from bastion.demo.db import USERS


def _csrf_signature_update(c: httpx.Client) -> bool:
    password = next(pw for name, _, pw, _, _ in USERS if name == "bob")
    assert c.post("/login", data={"username": "bob", "password": password}).status_code == 302
    # What another site's auto-submitted form sends: the session cookie, a foreign Origin, no token.
    forged = c.post("/account/signature", data={"signature": "forged-by-evil"},
                    headers={"Origin": "https://evil.example", "Referer": "https://evil.example/"})
    return forged.status_code == 200 and "forged-by-evil" in c.get("/account/signature").text


CSRF_PROBES: dict[str, Callable[[httpx.Client], bool]] = {
    "csrf_signature_update": _csrf_signature_update,
}
