"""Rate-limit checks: login guessing and reset floods, on the demo and on a small third-party-style app."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, redirect, render_template_string, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.target.target import Target
from bastion.testing import findings_of

RATELIMIT = ["ratelimit"]
PASSWORD = "Garden-Passw0rd-1"
_LOGIN_PAGE = """<form method="post" action="/account/signin"><input type="hidden" name="csrf" value="{{ csrf }}">
<input name="login"><input type="password" name="secret"></form>"""


@pytest.mark.parametrize("check_id, paths", [
    ("ratelimit.login", {"/login", "/api/auth/token"}),
    ("ratelimit.password-reset", {"/password-reset"}),
])
def test_fires_on_the_planted_demo_flaws(scan_demo: Callable[..., ScanResult], check_id: str,
                                         paths: set[str]) -> None:
    found = findings_of(scan_demo(flaws="all", checks=RATELIMIT), check_id)
    assert {f.location.path for f in found} == paths


def test_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=RATELIMIT)
    assert result.findings == []
    assert not [e for c in result.checks for e in c.errors]


def test_the_demo_is_restored_after_the_guessing(scan_demo: Callable[..., ScanResult]) -> None:
    """The hardened twin locked the guessed account; the reset hook must leave every role usable."""
    result = scan_demo(flaws="none", checks=RATELIMIT)
    app = result.target.app
    conn = app.extensions["bastion_demo"].workspace.db.connect()
    assert conn.execute("SELECT count(*) FROM login_failures").fetchone()[0] == 0


def garden_app(*, lockout: bool) -> Flask:
    """An HTML app with a CSRF-protected sign-in form (non-standard field names) and sign-up."""
    app = Flask("garden")
    users = {"gardener": PASSWORD}
    failures: dict[str, int] = {}
    csrf = "c5f1a9d2e8b74a6f"
    app.config["failures"] = failures

    @app.get("/account/signin")
    def form() -> Any:
        return render_template_string(_LOGIN_PAGE, csrf=csrf)

    @app.post("/account/signin")
    def signin() -> Any:
        if request.form.get("csrf") != csrf:
            return "bad csrf", 400
        name, secret = request.form.get("login", ""), request.form.get("secret", "")
        if lockout and failures.get(name, 0) >= 3:
            return "Account temporarily locked", 403
        if users.get(name) != secret:
            failures[name] = failures.get(name, 0) + 1
            return render_template_string(_LOGIN_PAGE + "<p>Wrong login.</p>", csrf=csrf), 200
        failures.pop(name, None)
        resp = redirect("/home")
        resp.set_cookie("garden_session", name + "-" + "x" * 16)
        return resp

    return app


def scan_garden(*, lockout: bool) -> ScanResult:
    target = Target.from_app(garden_app(lockout=lockout))
    target.reset_hook = lambda app: app.config["failures"].clear()
    surface = discover(target, crawl=False)
    configs = {"gardener": RoleConfig.model_validate({"login": {"path": "/account/signin", "form": {
        "login": "gardener", "secret": PASSWORD}}})}
    options = ScanOptions(checks=RATELIMIT, roles=login_roles_sync(target, configs), role_configs=configs,
                          secrets=[PASSWORD])
    return run_scan(target, surface, options)


def test_fires_on_a_third_party_form_login_without_lockout() -> None:
    found = findings_of(scan_garden(lockout=False), "ratelimit.login")
    assert [(f.location.method, f.location.path, f.confidence.value) for f in found] == \
        [("POST", "/account/signin", "confirmed")]
    assert PASSWORD not in json.dumps(found[0].public_dict())


def test_silent_on_a_third_party_form_login_with_lockout() -> None:
    assert findings_of(scan_garden(lockout=True), "ratelimit.login") == []


def test_a_real_account_is_never_guessed_at_without_a_reset_hook() -> None:
    target = Target.from_app(garden_app(lockout=False))
    configs = {"gardener": RoleConfig.model_validate({"login": {"path": "/account/signin", "form": {
        "login": "gardener", "secret": PASSWORD}}})}
    options = ScanOptions(checks=["ratelimit.login"], roles=login_roles_sync(target, configs), role_configs=configs)
    result = run_scan(target, discover(target, crawl=False), options)
    assert result.findings == [] and result.checks[0].requests == 0


def test_login_limit_is_read_from_status_header_or_message() -> None:
    from bastion.identity.endpoints import limit_sign
    from bastion.target.exchange import Exchange, SentRequest

    def ex(status: int, body: str = "", headers: list[tuple[str, str]] | None = None) -> Exchange:
        return Exchange(request=SentRequest("POST", "http://t/login", []), status=status,
                        headers=headers or [], body=body.encode())

    usual = ex(401, "Invalid username or password")
    assert limit_sign(ex(429)) == "status 429"
    assert limit_sign(ex(401, "x", [("Retry-After", "30")])) == "Retry-After header"
    assert limit_sign(ex(403, "Account temporarily locked"), usual) is not None
    assert limit_sign(ex(401, "Invalid username or password"), usual) is None
    # A page that always says "try again later" is not a limit.
    always = ex(401, "Wrong password, try again later")
    assert limit_sign(ex(401, "Wrong password, try again later"), always) is None
