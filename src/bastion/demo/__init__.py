"""The shipped demo service: a small shop whose flaws can be planted one by one (the test oracle)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bastion.demo.flaws import FASTAPI_FLAWS, FLAWS, Flaw, resolve_flaws

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["FASTAPI_FLAWS", "FLAWS", "Flaw", "create_app", "create_fastapi_app", "demo_config",
           "reset_app", "resolve_flaws"]

# The demo's access policy: who may read invoices and the admin area.
DEMO_ACCESS: dict[str, list[str]] = {
    "GET /api/invoices/{invoice_id}": ["owner", "admin"],
    "GET /api/invoices/export": ["alice", "bob", "admin"],
    "GET /account": ["alice", "bob", "admin"],
    "GET /admin": ["admin"],
    "GET /admin/users": ["admin"],
    "GET /admin/audit": ["admin"],
    "GET /admin/export": ["admin"],
    "GET /admin/search-index": ["admin"],
    # Accounts API (demo/profile.py): reads, and the write lines the authz checks probe when writes are allowed.
    "GET /api/profile": ["alice", "bob", "admin"],
    "POST /api/profile": ["alice", "bob", "admin"],
    "GET /api/users": ["alice", "bob", "admin"],
    "PUT /api/invoices/{invoice_id}": ["owner", "admin"],
    "DELETE /api/invoices/{invoice_id}": ["owner", "admin"],
    "PATCH /api/admin/users/{user_id}": ["admin"],
    # Memos (demo/fuzz_state.py): private to their creator; fuzz.state-access judges created memos against it.
    "GET /api/memos/{memo_id}": ["owner"],
    # Teams (demo/teams.py): memberships and team roles are managed by site admins.
    "PUT /api/teams/{team_id}/members/{user_id}": ["admin"],
    "DELETE /api/teams/{team_id}/members/{user_id}": ["admin"],
}

# Services the Flask demo depends on (demo/integrations_deps.py): Bastion runs its doubles for them.
DEMO_DEPENDENCIES: dict[str, Any] = {
    "idp": {"kind": "oidc", "double": True, "audience": "partner-api", "protects": ["GET /api/partner/orders"]},
    "jobs": {"kind": "queue", "double": True, "topic": "jobs", "consume": "POST /api/jobs/drain",
             "effect": "GET /api/jobs/processed", "sample": {"note": "{canary}"}, "signing": {"header": "signature"}},
    # The welcome mail after sign-up (demo/privacy_mail.py) goes to Bastion's SMTP outbox.
    "mail": {"kind": "smtp", "double": True},
}


# How the Flask demo alerts its on-call (demo/alerts.py): a security log line, and a webhook when one is set.
DEMO_ALERTS: dict[str, Any] = {
    "log": {"logger": "shop.security", "pattern": "credential stuffing|brute force"},
    "webhook": {"env": "ALERT_WEBHOOK_URL"},
}


def create_app(flaws: str | Iterable[str] | None = "all") -> Flask:
    """The Flask demo app with `flaws` planted ("all", "none", "a,b" or an iterable of ids)."""
    from bastion.demo.flask_app import create_app as build

    return build(flaws)


def create_fastapi_app(flaws: str | Iterable[str] | None = "all") -> Any:
    """The FastAPI demo app; plants the requested flaws it implements (see FASTAPI_FLAWS)."""
    from bastion.demo.fastapi_app import create_fastapi_app as build

    return build(flaws)


def reset_app(app: Any) -> None:
    """The demo's reset hook: restore the seeded database of a Flask or FastAPI demo app."""
    state = app.extensions["bastion_demo"] if hasattr(app, "extensions") else app.state.demo
    state.workspace.db.reset()


def demo_config(framework: str = "flask") -> Any:
    """The demo's threat model for `--demo` scans: roles alice, bob and admin (form login) and a policy."""
    from bastion.demo.backup import recovery_sections
    from bastion.demo.db import TOTP_SECRETS, USERS
    from bastion.demo.privacy_model import privacy_sections
    from bastion.demo.resilience_deps import store_dependencies  # permissions DB, revocation cache
    from bastion.model import BastionConfig

    passwords = {name: password for name, _, password, _, _ in USERS}
    roles = {name: {"login": {"path": "/login", "form": {"username": name, "password": passwords[name]}}}
             for name in ("alice", "bob", "admin")}
    if framework != "fastapi":
        # bob is an API client: JSON credentials for a bearer JWT (bastion/demo/tokens.py).
        roles["bob"] = {"login": {"path": "/api/auth/token", "json": {"username": "bob", "password": passwords["bob"]}}}
        # alice and admin have a TOTP second factor (bastion/demo/mfa.py); the FastAPI demo has none.
        for name in ("alice", "admin"):
            roles[name]["mfa"] = {"totp_secret": TOTP_SECRETS[name]}
    app = "bastion.demo:create_fastapi_app()" if framework == "fastapi" else "bastion.demo:create_app()"
    cfg = BastionConfig.model_validate({"target": {"app": app, "reset": "bastion.demo:reset_app"}, "roles": roles,
                                        "access": DEMO_ACCESS,
                                        "dependencies": {**DEMO_DEPENDENCIES, **store_dependencies()}
                                        if framework != "fastapi" else {},
                                        # TLS and backups (demo/tls.py, demo/backup.py): the Flask demo only.
                                        **({} if framework == "fastapi" else recovery_sections()),
                                        # Masking, retention and audit trail (demo/privacy.py): the Flask demo only.
                                        **({} if framework == "fastapi" else privacy_sections()),
                                        # Alerting on credential stuffing (demo/alerts.py): the Flask demo only.
                                        **({} if framework == "fastapi" else {"alerts": DEMO_ALERTS})})
    # The demo passwords are constants, but they are passwords: mask them like `${VAR}` values.
    cfg._secrets = frozenset(passwords[name] for name in roles) | frozenset(
        TOTP_SECRETS.values() if framework != "fastapi" else ())
    return cfg
