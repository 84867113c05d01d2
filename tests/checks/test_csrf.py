"""Dynamic CSRF check: the demo flaw, its hardened twin and third-party Flask apps (vulnerable and near-misses)."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, abort, jsonify, request, session

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.target.target import Target

MINE = ["csrf.state-change"]
PASSWORD = "Notebook-Passw0rd!3"
BEARER = "nb-api-" + "k" * 24


def _fired(result: ScanResult) -> list[Any]:
    errors = [e for c in result.checks for e in c.errors]
    assert not errors, errors
    return [f for f in result.findings if f.check_id in MINE]


# --- the demo ---------------------------------------------------------------------------------------------


def test_demo_signature_form_is_forgeable(scan_demo: Callable[..., ScanResult]) -> None:
    found = _fired(scan_demo(flaws="csrf_signature_update", checks=MINE))
    assert [(f.location.method, f.location.path, f.role) for f in found] == [("POST", "/account/signature", "alice")]
    f = found[0]
    assert f.confidence.value == "confirmed" and f.cwe == 352
    # The hardened session cookie is SameSite=Lax: still reported, as info, and the evidence says why.
    assert f.severity.value == "info" and any("SameSite=Lax" in e.summary for e in f.evidence)
    assert any("attacker.example" in (e.content or "") for e in f.evidence)


def test_demo_with_every_flaw_is_medium(scan_demo: Callable[..., ScanResult]) -> None:
    found = _fired(scan_demo(flaws="all", checks=MINE))
    assert {(f.location.path, f.severity.value) for f in found} == {("/account/signature", "medium")}


def test_hardened_demo_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=MINE)
    assert _fired(result) == []
    assert all(c.requests > 0 for c in result.checks)


# --- third-party apps -----------------------------------------------------------------------------------


def notebook_app(protection: str) -> Flask:
    """A cookie-session notebook whose bio can be edited; `protection` picks its CSRF defence."""
    app = Flask(__name__)
    app.secret_key = secrets.token_bytes(16)
    bios: dict[str, str] = {}

    def user() -> str:
        name = session.get("user")
        if protection == "bearer":
            name = "nina" if request.headers.get("Authorization") == f"Bearer {BEARER}" else None
        if not name:
            abort(401)
        return str(name)

    def token() -> str:
        session.setdefault("csrf", secrets.token_hex(16))
        return str(session["csrf"])

    @app.post("/signin")
    def signin() -> Any:
        if request.form.get("user") != "nina" or request.form.get("password") != PASSWORD:
            return jsonify(error="no"), 401
        session["user"] = "nina"
        return jsonify(ok=True, token=BEARER if protection == "bearer" else None)

    @app.get("/profile")
    def profile() -> Any:
        name = user()
        hidden = f'<input type="hidden" name="csrf_token" value="{token()}">' if protection == "token" else ""
        return (f"<html><body><p>Bio: {bios.get(name, '')}</p><form method='post' action='/profile'>{hidden}"
                "<input name='bio'><button>Save</button></form></body></html>")

    @app.post("/profile")
    def save_profile() -> Any:
        name = user()
        if protection == "token" and not hmac.compare_digest(request.form.get("csrf_token", ""), token()):
            abort(400)
        if protection == "origin" and request.headers.get("Origin", request.host_url.rstrip("/")) \
                != request.host_url.rstrip("/"):
            abort(403)
        if protection in ("json", "json_lenient"):
            body = request.get_json(silent=protection == "json_lenient") or request.form
            if protection == "json" and not request.is_json:
                abort(415)
        else:
            body = request.form
        bios[name] = str(body.get("bio", ""))[:100]
        return ("<html><body><p>Saved.</p></body></html>" if protection not in ("json", "json_lenient")
                else jsonify(saved=True))

    if protection in ("json", "json_lenient"):
        # JSON clients: no form page; the bio is read back from GET /profile (HTML) regardless.
        app.view_functions["profile"] = lambda: f"<p>Bio: {bios.get(user(), '')}</p>"
    return app


def scan_notebook(protection: str) -> ScanResult:
    target = Target.from_app(notebook_app(protection))  # type: ignore[arg-type]
    surface = discover(target, crawl=False)
    if protection in ("json", "json_lenient"):
        from bastion.surface.model import Input

        surface.get("POST", "/profile").inputs.append(Input("json", "bio"))  # type: ignore[union-attr]
    login: dict[str, Any] = {"path": "/signin", "form": {"user": "nina", "password": PASSWORD}}
    if protection == "bearer":
        login["token_path"] = "token"
    configs = {"nina": RoleConfig.model_validate({"login": login})}
    roles = login_roles_sync(target, configs)
    return run_scan(target, surface, ScanOptions(checks=MINE, roles=roles, role_configs=configs, secrets=[PASSWORD]))


def test_unprotected_form_is_forgeable() -> None:
    found = _fired(scan_notebook("none"))
    assert [(f.location.path, f.confidence.value, f.severity.value) for f in found] == \
        [("/profile", "confirmed", "medium")]
    assert all(PASSWORD not in (e.content or "") for f in found for e in f.evidence)


def test_json_api_that_also_takes_form_bodies_is_forgeable() -> None:
    found = _fired(scan_notebook("json_lenient"))
    assert [(f.location.path, f.confidence.value) for f in found] == [("/profile", "confirmed")]


@pytest.mark.parametrize("protection", ["token", "origin", "json", "bearer"])
def test_protected_apps_are_clean(protection: str) -> None:
    result = scan_notebook(protection)
    assert _fired(result) == []
    if protection == "bearer":  # a browser never attaches a bearer header cross-site: nothing to forge
        assert [u.skipped for c in result.checks for u in c.unit_records] == ["no role authenticated by cookies"]
    else:
        assert all(c.requests > 0 for c in result.checks)
