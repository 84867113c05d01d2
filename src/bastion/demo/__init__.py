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
    from bastion.demo.db import USERS
    from bastion.model import BastionConfig

    passwords = {name: password for name, _, password, _, _ in USERS}
    roles = {name: {"login": {"path": "/login", "form": {"username": name, "password": passwords[name]}}}
             for name in ("alice", "bob", "admin")}
    app = "bastion.demo:create_fastapi_app()" if framework == "fastapi" else "bastion.demo:create_app()"
    cfg = BastionConfig.model_validate({"target": {"app": app, "reset": "bastion.demo:reset_app"}, "roles": roles,
                                        "access": DEMO_ACCESS})
    # The demo passwords are constants, but they are passwords: mask them like `${VAR}` values.
    cfg._secrets = frozenset(passwords[name] for name in roles)
    return cfg
