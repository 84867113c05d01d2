"""authz.bola-credentials: another user's password changed through a username in the path."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.engine.writes import WritePolicy
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.target.target import Target

CHECK = "authz.bola-credentials"
PASSWORDS = {"kim": "kim-Secret-4471", "lee": "lee-Secret-9902"}


def accounts_api(path_trusted: bool) -> Flask:
    """JSON login with a bearer token; `PUT /api/v2/accounts/{user_name}/password` (checked or not)."""
    app = Flask(__name__)
    passwords = dict(PASSWORDS)
    tokens: dict[str, str] = {}

    @app.post("/api/v2/session")
    def login() -> Any:
        body = request.get_json(silent=True) or {}
        name = str(body.get("username", ""))
        if passwords.get(name) != body.get("password"):
            return jsonify(error="bad credentials"), 401
        token = secrets.token_urlsafe(12)
        tokens[token] = name
        return jsonify(token=token)

    @app.put("/api/v2/accounts/<user_name>/password")
    def set_password(user_name: str) -> Any:
        caller = tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if caller is None:
            return jsonify(error="login"), 401
        if not path_trusted and caller != user_name:
            return jsonify(error="not yours"), 403
        new = str((request.get_json(silent=True) or {}).get("password", ""))
        if user_name not in passwords or len(new) < 8:
            return jsonify(error="invalid"), 400
        passwords[user_name] = new
        return "", 204

    def reset(_app: Any) -> None:
        passwords.update(PASSWORDS)

    app.config["RESET"] = reset
    return app


def _scan(app: Flask, writes: str = "auto") -> ScanResult:
    target = Target.from_app(app)
    target.reset_hook = app.config["RESET"]
    configs = {name: RoleConfig.model_validate({"login": {"path": "/api/v2/session", "json": {
        "username": name, "password": pw}}}) for name, pw in PASSWORDS.items()}
    options = ScanOptions(checks=[CHECK], roles=login_roles_sync(target, configs), role_configs=configs,
                          secrets=list(PASSWORDS.values()), writes=WritePolicy.resolve(writes, in_process=True))
    return run_scan(target, discover(target, crawl=False), options)


def _hits(result: ScanResult) -> list[Any]:
    return [f for f in result.findings if f.check_id == CHECK]


def test_fires_on_the_demo_flaw(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="password_change_by_path", checks=[CHECK])
    hits = _hits(result)
    assert hits and hits[0].location.path == "/api/users/{username}/password" and hits[0].confidence == "confirmed"
    assert not [e for c in result.checks for e in c.errors]


def test_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    assert not _hits(scan_demo(flaws="none", checks=[CHECK]))


def test_fires_when_the_path_names_the_account() -> None:
    hits = _hits(_scan(accounts_api(path_trusted=True)))
    assert len(hits) == 1 and hits[0].location.path == "/api/v2/accounts/{user_name}/password"
    assert hits[0].role in PASSWORDS
    text = json.dumps(hits[0].model_dump(mode="json"))
    assert "Bst-" not in text and not any(pw in text for pw in PASSWORDS.values())


def test_silent_when_the_route_checks_the_caller() -> None:
    assert not _hits(_scan(accounts_api(path_trusted=False)))


def test_no_change_without_write_permission() -> None:
    assert not _hits(_scan(accounts_api(path_trusted=True), writes="none"))
