"""Scaffolding for third-party-style test apps whose users log in with JSON and get a bearer token.

Each test module keeps its own app (routes, data, the flaw behind a flag); what is shared is the login
route with its token table and the scan of such an app with one role per user.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from typing import Any

from flask import Flask, abort, jsonify, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.target.target import Target


class BearerLogins:
    """A JSON login route on `app` handing out bearer tokens to `users` who send `password`."""

    def __init__(self, app: Flask, path: str, users: Collection[str], password: str) -> None:
        self.tokens: dict[str, str] = {}

        @app.post(path)
        def login() -> Any:
            body = request.get_json(silent=True) or {}
            if body.get("password") != password or body.get("username") not in users:
                abort(401)
            value = secrets.token_hex(16)
            self.tokens[value] = body["username"]
            return jsonify(token=value)

    def current(self) -> str:
        """The user whose token the request carries (401 without a valid one)."""
        name = self.tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if name is None:
            abort(401)
        return name


def scan_bearer_app(app: Flask, login_path: str, users: Collection[str], password: str, checks: list[str], *,
                    reset_hook: Callable[[Any], Any] | None = None, **options: Any) -> ScanResult:
    """Scan `app` in-process with one role per user, logged in at `login_path`; `options` go to ScanOptions."""
    target = Target.from_app(app)
    target.reset_hook = reset_hook
    surface = discover(target, crawl=False)
    configs = {name: RoleConfig.model_validate({"login": {"path": login_path, "json": {
        "username": name, "password": password}}}) for name in users}
    scan_options = ScanOptions(checks=checks, roles=login_roles_sync(target, configs), secrets=[password], **options)
    return run_scan(target, surface, scan_options)
