"""authz.stale-privileges beyond one shape: group-membership removal and rights sub-resources, cookie and token
sessions, on the demo and on a third-party API whose bearer JWTs carry the caller's groups and scopes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
from flask import Flask, abort, jsonify, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.engine.writes import WritePolicy
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.target.target import Target

CHECK = "authz.stale-privileges"
PASSWORD = "Board-Passw0rd!"
SECRET = "test-only-signing-key-0123456789abcdef"
MEMBERSHIP = "/api/teams/{team_id}/members/{user_id}"


def _stale(result: ScanResult) -> list[Any]:
    return [f for f in result.findings if f.check_id == CHECK]


# --- the demo ------------------------------------------------------------------------------------------


def test_membership_removal_fires_on_the_planted_flaw(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="stale_team_membership", checks=[CHECK])
    (finding,) = _stale(result)
    assert finding.location.method == "DELETE" and finding.location.path == MEMBERSHIP
    assert finding.confidence.value == "confirmed" and finding.role in ("alice", "bob")
    text = "\n".join(f"{e.summary}\n{e.content}" for e in finding.evidence)
    assert "runbook" in text and "a fresh login gets 404" in text
    assert "Bearer ey" not in finding.model_dump_json()


def test_both_shapes_on_the_flawed_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="stale_privileges,stale_team_membership", checks=[CHECK])
    assert sorted(f.location.path for f in _stale(result)) == ["/api/admin/users/{user_id}", MEMBERSHIP]


def test_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=[CHECK])
    assert _stale(result) == []
    assert not [c.errors for c in result.checks if c.errors]


# --- a third-party board API: bearer JWTs with groups and scopes claims ------------------------------------


def board_app(trust_claims: bool) -> Flask:
    """Users, organisations and an admin metrics page; `trust_claims` authorizes from the token's claims."""
    app = Flask(__name__)
    users = {"dana": {"id": 11, "scopes": ["read"]}, "eve": {"id": 12, "scopes": ["read"]},
             "sysadmin": {"id": 10, "scopes": ["read", "admin"]}}
    orgs: dict[str, set[str]] = {"acme": {"dana", "eve", "sysadmin"}}

    def reset() -> None:
        for name, scopes in (("dana", ["read"]), ("eve", ["read"]), ("sysadmin", ["read", "admin"])):
            users[name]["scopes"] = list(scopes)
        orgs["acme"] = {"dana", "eve", "sysadmin"}

    app.config["reset"] = reset

    def caller() -> tuple[str, dict[str, Any]]:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = pyjwt.decode(token, SECRET, algorithms=["HS256"])
        except pyjwt.PyJWTError:
            abort(401)
        return claims["sub"], claims

    def scopes_of(name: str, claims: dict[str, Any]) -> list[str]:
        return list(claims["scopes"]) if trust_claims else users[name]["scopes"]

    def orgs_of(name: str, claims: dict[str, Any]) -> list[str]:
        return list(claims["orgs"]) if trust_claims else [o for o, m in orgs.items() if name in m]

    @app.post("/auth/token")
    def token() -> Any:
        body = request.get_json(silent=True) or {}
        name = body.get("username")
        if body.get("password") != PASSWORD or name not in users:
            return jsonify(error="bad credentials"), 401
        claims = {"sub": name, "scopes": users[name]["scopes"], "iat": int(time.time()),
                  "orgs": [o for o, m in orgs.items() if name in m]}
        return jsonify(access_token=pyjwt.encode(claims, SECRET, algorithm="HS256"))

    @app.get("/me")
    def me() -> Any:
        name, claims = caller()
        return jsonify(id=users[name]["id"], username=name, scopes=users[name]["scopes"],
                       orgs=[{"id": o} for o in orgs_of(name, claims)])

    @app.get("/orgs/<org_id>/board")
    def board(org_id: str) -> Any:
        name, claims = caller()
        if org_id not in orgs_of(name, claims):
            abort(404)
        return jsonify(org=org_id, cards=["ship v2", "fix login"])

    @app.delete("/orgs/<org_id>/members/<int:user_id>")
    def remove_member(org_id: str, user_id: int) -> Any:
        name, claims = caller()
        if "admin" not in scopes_of(name, claims):
            abort(403)
        member = next((n for n, u in users.items() if u["id"] == user_id), None)
        if org_id not in orgs or member not in orgs[org_id]:
            abort(404)
        orgs[org_id].discard(member)
        return "", 204

    @app.put("/users/<int:user_id>/scopes")
    def set_scopes(user_id: int) -> Any:
        name, claims = caller()
        if "admin" not in scopes_of(name, claims):
            abort(403)
        body = request.get_json(silent=True) or {}
        scopes = body.get("scopes")
        member = next((n for n, u in users.items() if u["id"] == user_id), None)
        if member is None or not isinstance(scopes, list):
            abort(400)
        users[member]["scopes"] = [str(s) for s in scopes]
        return jsonify(id=user_id, scopes=users[member]["scopes"])

    @app.get("/admin/metrics")
    def metrics() -> Any:
        name, claims = caller()
        if "admin" not in scopes_of(name, claims):
            abort(403)
        return jsonify(active_users=3, queue_depth=0)

    return app


def scan_board(trust_claims: bool, writes: str = "auto") -> ScanResult:
    app = board_app(trust_claims)
    target = Target.from_app(app)
    target.reset_hook = lambda a: a.config["reset"]()
    surface = discover(target, crawl=False)
    configs = {name: RoleConfig.model_validate({"login": {"path": "/auth/token", "json": {
        "username": name, "password": PASSWORD}}}) for name in ("dana", "eve", "sysadmin")}
    roles = login_roles_sync(target, configs)
    options = ScanOptions(checks=[CHECK], roles=roles, secrets=[PASSWORD],
                          access={"GET /admin/metrics": ["sysadmin"],
                                  "DELETE /orgs/{org_id}/members/{user_id}": ["sysadmin"],
                                  "PUT /users/{user_id}/scopes": ["sysadmin"]},
                          writes=WritePolicy.resolve(writes, in_process=True))
    return run_scan(target, surface, options)


def test_third_party_tokens_with_cached_claims() -> None:
    result = scan_board(trust_claims=True)
    assert not [c.errors for c in result.checks if c.errors]
    found = {(f.location.method, f.location.path) for f in _stale(result)}
    # Both shapes: the scopes sub-resource (a list field) and the organisation membership.
    assert found == {("PUT", "/users/{user_id}/scopes"), ("DELETE", "/orgs/{org_id}/members/{user_id}")}
    dumped = "".join(f.model_dump_json() for f in _stale(result))
    assert PASSWORD not in dumped and "Bearer ey" not in dumped


def test_third_party_reading_rights_per_request_is_clean() -> None:
    result = scan_board(trust_claims=False)
    assert _stale(result) == [] and not [c.errors for c in result.checks if c.errors]


def test_no_writes_no_probe() -> None:
    result = scan_board(trust_claims=True, writes="none")
    assert _stale(result) == []
