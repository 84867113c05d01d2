"""Authorization checks: policy drift, BOLA and BFLA on the demo and on small third-party-style apps."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, abort, jsonify, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.target.target import Target

AUTHZ = ["authz"]
PASSWORD = "Orders-Passw0rd!"
ORDERS = {  # order id -> (owner, item, total)
    "ord-7f3a": ("carol", "Espresso machine", "349.00"),
    "ord-91bc": ("carol", "Coffee grinder", "129.50"),
    "ord-c402": ("dan", "Kettle", "39.99"),
    "ord-e77d": ("admin", "Server rack", "2100.00"),
}


def orders_app(*, check_owner: bool = True, check_admin: bool = True) -> Flask:
    """A small JSON API with bearer tokens: own orders, a public catalogue and an admin area."""
    app = Flask("orders")
    tokens: dict[str, str] = {}

    def user() -> str:
        auth = request.headers.get("Authorization", "")
        name = tokens.get(auth.removeprefix("Bearer "))
        if name is None:
            abort(401)
        return name

    @app.post("/auth/token")
    def token() -> Any:
        body = request.get_json(silent=True) or {}
        if body.get("password") != PASSWORD or body.get("username") not in ("carol", "dan", "admin"):
            return jsonify(error="bad credentials"), 401
        value = secrets.token_hex(16)
        tokens[value] = body["username"]
        return jsonify(access_token=value, token_type="bearer")

    @app.get("/orders")
    def my_orders() -> Any:
        me = user()
        return jsonify(orders=[{"id": k, "item": v[1]} for k, v in ORDERS.items() if v[0] == me])

    @app.get("/orders/<order_id>")
    def order(order_id: str) -> Any:
        me = user()
        found = ORDERS.get(order_id)
        if found is None or (check_owner and found[0] != me and me != "admin"):
            abort(404)
        return jsonify(id=order_id, owner=found[0], item=found[1], total=found[2])

    @app.get("/catalog/<sku>")
    def catalog(sku: str) -> Any:
        return jsonify(sku=sku, name="Generic product", price="1.00")

    @app.get("/manage/users")
    def manage_users() -> Any:
        me = user()
        if check_admin and me != "admin":
            abort(403)
        return jsonify(users=[{"name": n, "email": f"{n}@orders.example", "plan": "enterprise-annual"}
                              for n in ("carol", "dan", "admin")])

    @app.get("/profile")
    def profile() -> Any:
        me = user()
        return jsonify(name=me, email=f"{me}@orders.example")

    return app


def _roles() -> dict[str, RoleConfig]:
    return {name: RoleConfig.model_validate({"login": {"path": "/auth/token", "json": {
        "username": name, "password": PASSWORD}}}) for name in ("carol", "dan", "admin")}


def scan_orders(access: dict[str, list[str]] | None = None, **flags: bool) -> ScanResult:
    target = Target.from_app(orders_app(**flags))
    surface = discover(target, crawl=False)
    roles = login_roles_sync(target, _roles())
    options = ScanOptions(checks=AUTHZ, roles=roles, access=access or {},
                          secrets=[PASSWORD])
    return run_scan(target, surface, options)


def _ids(result: ScanResult, above_info: bool = True) -> set[str]:
    return {f.check_id for f in result.findings if not above_info or f.severity.value != "info"}


POLICY = {"GET /orders/{order_id}": ["owner", "admin"], "GET /manage/users": ["admin"],
          "GET /profile": ["carol", "dan", "admin"]}


# --- the demo oracle ----------------------------------------------------------------------------------


def test_bola_fires_on_the_planted_invoice_flaw(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="invoice_bola", checks=AUTHZ)
    bola = [f for f in result.findings if f.check_id == "authz.bola"]
    assert bola and bola[0].location.path == "/api/invoices/{invoice_id}"
    assert bola[0].role in ("alice", "bob") and bola[0].confidence.value == "confirmed"


def test_bfla_and_policy_drift_fire_on_the_admin_export(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="admin_export_bfla", checks=AUTHZ)
    paths = {(f.check_id, f.location.path) for f in result.findings}
    assert ("authz.bfla", "/admin/export") in paths and ("authz.policy-drift", "/admin/export") in paths
    drift = {(c.role, c.path) for c in result.authz_matrix if c.drift}
    assert drift == {("alice", "/admin/export"), ("bob", "/admin/export")}


def test_authz_is_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=AUTHZ)
    assert [f for f in result.findings if f.severity.value != "info"] == []
    assert not [c.errors for c in result.checks if c.errors]
    assert result.authz_matrix and not [c for c in result.authz_matrix if c.drift]


def test_demo_role_secrets_never_reach_the_findings(scan_demo: Callable[..., ScanResult]) -> None:
    from bastion.demo.db import USERS

    dumped = "".join(f.model_dump_json() for f in scan_demo(flaws="all", checks=AUTHZ).findings)
    assert not [pw for _, _, pw, _, _ in USERS[:3] if pw in dumped]


# --- third-party-style apps ----------------------------------------------------------------------------


@pytest.mark.parametrize("access", [None, POLICY], ids=["policy-free", "with-policy"])
def test_a_safe_multi_user_app_scans_clean(access: dict[str, list[str]] | None) -> None:
    result = scan_orders(access)
    assert _ids(result, above_info=False) == set()
    assert not [c.errors for c in result.checks if c.errors]


def test_bola_on_a_token_api_without_a_policy() -> None:
    result = scan_orders(check_owner=False)
    bola = [f for f in result.findings if f.check_id == "authz.bola"]
    assert [f.location.path for f in bola] == ["/orders/{order_id}"]
    assert "authz.bfla" not in _ids(result)


def test_bfla_on_an_admin_path_without_a_policy() -> None:
    result = scan_orders(check_admin=False)
    # The leaked admin page lists every user's email: the data-exposure check reports that side of it.
    assert _ids(result) == {"authz.bfla", "authz.data-exposure"}
    assert {f.location.path for f in result.findings} == {"/manage/users"}


def test_policy_drift_and_matrix_on_a_third_party_app() -> None:
    result = scan_orders(POLICY, check_admin=False)
    assert {"authz.policy-drift", "authz.bfla"} <= _ids(result)
    cells = {(c.path, c.role): c for c in result.authz_matrix}
    assert cells[("/manage/users", "dan")].drift and cells[("/manage/users", "dan")].actual == "allow"
    assert cells[("/profile", "anonymous")].actual == "deny"
    assert cells[("/orders/{order_id}", "dan")].expected == "owner"


def test_tokens_obtained_at_login_are_redacted() -> None:
    import re

    result = scan_orders(check_owner=False)
    dumped = "".join(f.model_dump_json() for f in result.findings)
    assert "authorization" in dumped.lower()  # the evidence shows the header...
    assert re.search(r"[0-9a-f]{32}", dumped) is None  # ...but never the bearer token
    assert PASSWORD not in dumped
