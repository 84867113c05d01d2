"""Mass assignment: privileged fields sent to update endpoints, judged by reading the object back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, abort, jsonify, request

from bastion.engine.runner import ScanResult
from bastion.engine.writes import WritePolicy

from .bearer_apps import BearerLogins, scan_bearer_app

CHECKS = ["authz.mass-assignment"]
PASSWORD = "Shop-Passw0rd!"


def test_fires_on_the_profile_role_flaw(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="profile_mass_assignment", checks=CHECKS)
    [finding] = result.findings
    assert finding.location.method == "POST" and finding.location.path == "/api/profile"
    assert finding.severity.value == "critical"  # the role grants admin-only pages
    assert "role" in finding.title and "(as alice, bob)" in finding.title
    assert any("'admin'" in (e.summary or "") for e in finding.evidence)


def test_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=CHECKS)
    assert result.findings == [] and not [c.errors for c in result.checks if c.errors]


def shop_app(*, bind_everything: bool) -> Flask:
    """Accounts with `PATCH /me` (a generic model update when `bind_everything`) and carts with owners."""
    app = Flask("shop")
    accounts = {"gina": {"id": 21, "name": "Gina", "tier": "basic", "is_admin": False},
                "hal": {"id": 22, "name": "Hal", "tier": "basic", "is_admin": False},
                "ops": {"id": 1, "name": "Ops", "tier": "staff", "is_admin": True}}
    seed = {k: dict(v) for k, v in accounts.items()}
    app.config["reset"] = lambda: [accounts[k].update(seed[k]) for k in accounts]
    logins = BearerLogins(app, "/session", accounts, PASSWORD)

    def me() -> dict[str, Any]:
        return accounts[logins.current()]

    @app.get("/me")
    def read_me() -> Any:
        return jsonify(me())

    @app.patch("/me")
    def update_me() -> Any:
        body = request.get_json(silent=True) or {}
        account = me()
        if bind_everything:
            account.update({k: v for k, v in body.items() if k in account and k != "id"})
        else:
            account["name"] = str(body.get("name", account["name"]))[:40]
        return jsonify(account)

    @app.get("/ops/dashboard")
    def dashboard() -> Any:
        if not me()["is_admin"]:
            abort(403)
        return jsonify(queue_depth=3, workers=["w-alpha", "w-beta"], region="eu-central")

    return app


SHOP_USERS = ("gina", "hal", "ops")


def scan_shop(bind_everything: bool) -> ScanResult:
    return scan_bearer_app(shop_app(bind_everything=bind_everything), "/session", SHOP_USERS, PASSWORD, CHECKS,
                           reset_hook=lambda a: a.config["reset"](), access={"GET /ops/dashboard": ["ops"]},
                           writes=WritePolicy.resolve("auto", in_process=True))


def test_generic_model_binding_on_a_third_party_app() -> None:
    result = scan_shop(bind_everything=True)
    assert {f.location.path for f in result.findings} == {"/me"}
    [finding] = [f for f in result.findings if f.severity.value == "critical"]
    assert finding.role in ("gina", "hal")
    assert "is_admin" in finding.title and "tier" in finding.title


def test_an_allow_listed_update_scans_clean() -> None:
    result = scan_shop(bind_everything=False)
    assert result.findings == [] and not [c.errors for c in result.checks if c.errors]


def test_no_writes_no_probe() -> None:
    result = scan_bearer_app(shop_app(bind_everything=True), "/session", SHOP_USERS, PASSWORD, CHECKS,
                             writes=WritePolicy.resolve("none", in_process=True))
    assert result.findings == []
