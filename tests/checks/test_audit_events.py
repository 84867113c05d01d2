"""audit.events-missing: the demo's failed-login record without an actor and unaudited team-membership changes, its
hardened twin, a third-party API (logins, exports, privilege changes)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, abort, jsonify, request

from bastion.engine.runner import ScanResult
from bastion.findings.model import Confidence
from bastion.privacy.records import new_records, split_records
from bastion.testing import findings_of
from tests.checks.privacy_scan import scan_with_model

CHECKS = ["audit.events-missing"]


def test_failed_login_without_actor_is_found(scan_demo: Callable[..., ScanResult]) -> None:
    from bastion.demo.db import USERS

    (f,) = findings_of(scan_demo(flaws="audit_failed_login_without_actor", checks=CHECKS), "audit.events-missing")
    assert f.confidence == Confidence.confirmed and f.location.path == "/login"
    assert f.title == "Failed login recorded without the actor in the audit trail"
    text = f.model_dump_json()
    assert "Pw-" not in text and not any(pw in text for _, _, pw, _, _ in USERS if len(pw) > 5)


def test_unaudited_membership_change_is_found(scan_demo: Callable[..., ScanResult]) -> None:
    (f,) = findings_of(scan_demo(flaws="team_role_change_unaudited", checks=CHECKS), "audit.events-missing")
    assert f.title == "Privilege change not recorded in the audit trail"
    assert (f.location.method, f.location.path) == ("DELETE", "/api/teams/{team_id}/members/{user_id}")


def test_hardened_demo_records_every_event(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=CHECKS)
    assert findings_of(result, "audit.events-missing") == []
    assert not [u.skipped for c in result.checks for u in c.unit_records if u.skipped]


def test_records_split_and_diff() -> None:
    page = "<table><tr><th>#</th><th>Who</th></tr><tr><td>2</td><td>bob</td></tr><tr><td>1</td><td>al</td></tr>"
    assert split_records(page) == ["2 bob", "1 al"]
    assert split_records('{"events": [{"a": 1}]}') == ['{"a": 1}']
    assert new_records(["x", "y"], ["z", "x", "y", "x"]) == ["z", "x"]


# --- a third-party API with a JSON trail -------------------------------------------------------------------

PASSWORDS = {"erin": "erin-Secret-1", "ops": "ops-Secret-2"}


def ledger_app(records_failures: bool, with_time: bool = True, role_changes: str = "full") -> Flask:
    """`role_changes`: how a role change is recorded ("full", "no-target" or "none")."""
    app = Flask(__name__)
    trail: list[dict[str, Any]] = []
    tokens: dict[str, str] = {}
    accounts = {"erin": {"id": 7, "role": "clerk"}, "ops": {"id": 8, "role": "operator"}}

    def record(actor: str, action: str, outcome: str) -> None:
        entry = {"seq": len(trail) + 1, "actor": actor, "action": action, "outcome": outcome}
        if with_time:
            entry["at"] = "2026-01-01T00:00:00Z"
        trail.append(entry)

    def current() -> str:
        user = tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if user is None:
            abort(401)
        return user

    @app.post("/v1/sessions")
    def login() -> Any:
        body = request.get_json(silent=True) or {}
        user = str(body.get("user", ""))
        if PASSWORDS.get(user) != body.get("password"):
            if records_failures:
                record(user, "session.create", "denied")
            return jsonify(error="invalid credentials"), 401
        token = secrets.token_urlsafe(16)
        tokens[token] = user
        record(user, "session.create", "granted")
        return jsonify(access_token=token)

    @app.get("/v1/ledger/export")
    def export() -> Any:
        record(current(), "ledger.export", "ok")
        return jsonify(rows=[])

    @app.get("/v1/me")
    def me() -> Any:
        user = current()
        return jsonify(id=accounts[user]["id"], user=user, role=accounts[user]["role"])

    @app.put("/v1/admin/accounts/<int:account_id>/role")
    def set_role(account_id: int) -> Any:
        if current() != "ops":
            abort(403)
        name = next((n for n, a in accounts.items() if a["id"] == account_id), None)
        role = (request.get_json(silent=True) or {}).get("role")
        if name is None or role not in ("clerk", "operator"):
            abort(400)
        accounts[name]["role"] = role
        if role_changes == "full":
            trail.append({"seq": len(trail) + 1, "actor": "ops", "action": "role.set", "target_id": account_id,
                          "outcome": "ok", "at": "2026-01-01T00:00:00Z"})
        elif role_changes == "no-target":
            record("ops", "role.set", "ok")
        return jsonify(id=account_id, role=role)

    @app.get("/v1/ops/trail")
    def read_trail() -> Any:
        if current() != "ops":
            abort(403)
        return jsonify(records=trail)

    return app


MODEL = {
    "roles": {name: {"login": {"path": "/v1/sessions", "json": {"user": name, "password": pw}}}
              for name, pw in PASSWORDS.items()},
    "access": {"GET /v1/ops/trail": ["ops"]},
    "audit": {"log": "GET /v1/ops/trail", "events": ["login_success", "login_failure", "export"]},
}


def _reset(_app: Any) -> None:
    """The ledger keeps its state in memory; nothing to restore for these tests."""


def test_third_party_unrecorded_failed_login() -> None:
    result = scan_with_model(ledger_app(records_failures=False), MODEL, CHECKS, _reset)
    (f,) = findings_of(result, "audit.events-missing")
    assert f.title.startswith("Failed login not recorded") and f.location.path == "/v1/sessions"
    assert not any(pw in f.model_dump_json() for pw in PASSWORDS.values())


def test_third_party_complete_trail_is_clean() -> None:
    result = scan_with_model(ledger_app(records_failures=True), MODEL, CHECKS, _reset)
    assert findings_of(result, "audit.events-missing") == []


def test_third_party_records_without_time() -> None:
    result = scan_with_model(ledger_app(records_failures=True, with_time=False), MODEL, CHECKS, _reset)
    titles = sorted(f.title for f in findings_of(result, "audit.events-missing"))
    assert titles and all("without a time" in t for t in titles)


PRIVILEGE_MODEL = {**MODEL,
                   "access": {"GET /v1/ops/trail": ["ops"], "PUT /v1/admin/accounts/{account_id}/role": ["ops"]},
                   "audit": {"log": "GET /v1/ops/trail", "events": ["privilege_change"]}}


@pytest.mark.parametrize(("recorded", "title"), [
    ("none", "Privilege change not recorded in the audit trail"),
    ("no-target", "Privilege change recorded without the target user in the audit trail"),
])
def test_third_party_privilege_change_badly_recorded(recorded: str, title: str) -> None:
    app = ledger_app(records_failures=True, role_changes=recorded)
    (f,) = findings_of(scan_with_model(app, PRIVILEGE_MODEL, CHECKS, _reset), "audit.events-missing")
    assert f.title == title and f.location.path == "/v1/admin/accounts/{account_id}/role"


def test_third_party_privilege_change_recorded_is_clean() -> None:
    result = scan_with_model(ledger_app(records_failures=True), PRIVILEGE_MODEL, CHECKS, _reset)
    assert findings_of(result, "audit.events-missing") == []
    assert not [u.skipped for c in result.checks for u in c.unit_records if u.skipped]
