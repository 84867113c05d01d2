"""The leaked-key and poisoned-message narratives as scan checks: the demo, its hardened twin, a third-party API."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, abort, jsonify, request

from bastion.engine.runner import ScanResult
from bastion.testing import findings_of
from tests.checks.privacy_scan import scan_with_model

ESCALATION = "drills.privilege-escalation-undetected"
POISON = "drills.poisoned-message-undetected"
PASSWORDS = {"carol": "Carol-Secret-77", "root": "Root-Secret-88"}


# --- the demo ------------------------------------------------------------------------------------------


def test_escalation_fires_on_member_writable_team_roles(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="team_roles_member_writable,team_role_change_unaudited", checks=[ESCALATION])
    (f,) = findings_of(result, ESCALATION)
    assert (f.location.method, f.location.path) == ("PUT", "/api/teams/{team_id}/members/{user_id}")
    assert f.role == "bob" and "role change accepted" in f.title
    text = "\n".join(f"{e.summary}\n{e.content}" for e in f.evidence)
    assert "role-change:" in text and "detected by: nothing" in text
    assert "Bearer ey" not in f.model_dump_json()


def test_escalation_that_is_audited_is_not_a_finding(scan_demo: Callable[..., ScanResult]) -> None:
    # bob reaches the admin export (admin_export_bfla) but the export names him in the audit trail:
    # the hole is authz.bfla's finding; this check is about detection.
    result = scan_demo(flaws="admin_export_bfla,team_roles_member_writable", checks=[ESCALATION])
    assert findings_of(result, ESCALATION) == []


def test_poisoned_message_fires_on_the_pickle_consumer(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="pickle_queue_consumer", checks=[POISON])
    (f,) = findings_of(result, POISON)
    assert (f.location.method, f.location.path) == ("POST", "/api/jobs/drain")
    assert "detected by: nothing" in "\n".join(f"{e.summary}\n{e.content}" for e in f.evidence)


def test_both_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=[ESCALATION, POISON])
    assert [f for f in result.findings if f.check_id in (ESCALATION, POISON)] == []
    assert not [c.errors for c in result.checks if c.errors]


# --- a third-party API with an audit trail ----------------------------------------------------------------


def ops_app(guarded: bool, audits_reports: bool) -> Flask:
    """Token login, an admin report, an audit list; `guarded` checks the role, `audits_reports` records reads."""
    app = Flask(__name__)
    tokens: dict[str, str] = {}
    trail: list[dict[str, Any]] = []

    def caller() -> str:
        user = tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if user is None:
            abort(401)
        return user

    @app.post("/v2/login")
    def login() -> Any:
        body = request.get_json(silent=True) or {}
        if PASSWORDS.get(str(body.get("user"))) != body.get("password"):
            return jsonify(error="bad credentials"), 401
        token = secrets.token_urlsafe(16)
        tokens[token] = str(body["user"])
        return jsonify(access_token=token)

    @app.get("/v2/admin/revenue")
    def revenue() -> Any:
        user = caller()
        if guarded and user != "root":
            abort(403)
        if audits_reports:
            trail.append({"actor": user, "event": "revenue.read", "outcome": "ok"})
        return jsonify(total=1234)

    @app.get("/v2/admin/audit")
    def audit_list() -> Any:
        if caller() != "root":
            abort(403)
        return jsonify(records=trail)

    return app


MODEL = {
    "roles": {name: {"login": {"path": "/v2/login", "json": {"user": name, "password": pw}}}
              for name, pw in PASSWORDS.items()},
    "access": {"GET /v2/admin/revenue": ["root"], "GET /v2/admin/audit": ["root"]},
    "audit": {"log": "GET /v2/admin/audit", "role": "root"},
}


def _reset(_app: Any) -> None:
    """The API keeps its state in memory; nothing to restore."""


def test_third_party_unguarded_unaudited_report_is_a_finding() -> None:
    result = scan_with_model(ops_app(guarded=False, audits_reports=False), MODEL, [ESCALATION], _reset)
    (f,) = findings_of(result, ESCALATION)
    assert (f.location.method, f.location.path) == ("GET", "/v2/admin/revenue") and f.role == "carol"
    assert not any(pw in f.model_dump_json() for pw in PASSWORDS.values())


@pytest.mark.parametrize(("guarded", "audits"), [(True, False), (False, True)])
def test_third_party_blocked_or_audited_is_clean(guarded: bool, audits: bool) -> None:
    result = scan_with_model(ops_app(guarded=guarded, audits_reports=audits), MODEL, [ESCALATION], _reset)
    assert findings_of(result, ESCALATION) == []


def test_third_party_without_detection_channels_is_skipped() -> None:
    model = {k: v for k, v in MODEL.items() if k != "audit"}
    result = scan_with_model(ops_app(guarded=False, audits_reports=False), model, [ESCALATION], _reset)
    assert findings_of(result, ESCALATION) == []
    assert [u.skipped for c in result.checks for u in c.unit_records if u.skipped]
