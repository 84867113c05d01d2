"""Probes for the demo's erasure and audited-event flaws (demo/privacy_erasure.py, flask_app login), for PROBES."""

from __future__ import annotations

import os
from collections.abc import Callable
from unittest.mock import patch

import httpx

from bastion.demo.privacy_erasure import erase_user
from bastion.demo.privacy_mail import configure_mail
from bastion.doubles.smtp import SMTPOutbox

from .clients import flask_client
from .privacy_probes import _app, _sign_in


def _erasure_misses_search_index(c: httpx.Client) -> bool:
    admin = _sign_in(c, "admin")
    assert "alice@democorp.example" in admin.get("/admin/search-index").text
    assert erase_user(_app(c), "alice") > 0
    assert "alice@democorp.example" not in admin.get("/admin/users").text
    return "alice@democorp.example" in admin.get("/admin/search-index").text


def _audit_failed_login_without_actor(c: httpx.Client) -> bool:
    assert c.post("/login", data={"username": "guest", "password": "wrong-password"}).status_code == 401
    trail = _sign_in(flask_client(_app(c)), "admin").get("/admin/audit")
    assert trail.status_code == 200 and "login.failure" in trail.text
    return "username=guest" not in trail.text


def _password_in_welcome_mail(c: httpx.Client) -> bool:
    with SMTPOutbox().serve() as outbox:
        with patch.dict(os.environ, outbox.env()):
            configure_mail(_app(c))  # what create_app does with the environment a scan wires
        signup = c.post("/signup", data={"username": "mailprobe", "email": "mailprobe@example.com",
                                         "password": "Mail-Probe-Pass-91"})
        assert signup.status_code == 303, signup.text
        (welcome,) = outbox.find(to="mailprobe@example.com")
        return "Mail-Probe-Pass-91" in welcome.body


PRIVACY_ERASURE_PROBES: dict[str, Callable[..., bool]] = {
    "password_in_welcome_mail": _password_in_welcome_mail,
    "erasure_misses_search_index": _erasure_misses_search_index,
    "audit_failed_login_without_actor": _audit_failed_login_without_actor,
}
