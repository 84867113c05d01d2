"""The MFA login step: TOTP after the primary login (form or JSON), found generically, on a pinned clock."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pyotp
import pytest
from flask import Flask, jsonify, make_response, redirect, request

from bastion.errors import ConfigError
from bastion.identity import mfa
from bastion.identity.login import login_role, login_roles_sync
from bastion.model.schema import MfaConfig, RoleConfig
from bastion.target.client import ProbeClient
from bastion.target.target import Target

SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "Vault-Passw0rd!"
T0 = 1_750_000_000.0


class Clock:
    """A fake clock shared by the test server and Bastion; sleeping moves it instead of waiting."""

    def __init__(self, at: float = T0) -> None:
        self.at = at
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += seconds


def vault_app(clock: Clock, *, window: int = 1) -> Flask:
    """Form login -> 302 to a code page with a CSRF field; JSON login -> {"challenge": "/api/otp"}.

    Codes are verified at `clock` with a ±`window` drift and every time step is single-use.
    """
    app = Flask("vault")
    sessions: dict[str, dict[str, Any]] = {}
    used: set[int] = set()

    def accept(code: str) -> bool:
        base = int(clock() // 30)
        for step in range(base - window, base + window + 1):
            if step not in used and pyotp.TOTP(SEED).at(step * 30) == code:
                used.add(step)
                return True
        return False

    @app.post("/session")
    def form_login() -> Any:
        if request.form.get("password") != PASSWORD:
            return "<form method=post action=/session>bad password</form>", 200
        sid = secrets.token_hex(8)
        sessions[sid] = {"ok": False, "csrf": secrets.token_hex(4)}
        resp = redirect("/second-factor")
        resp.set_cookie("vsid", sid)
        return resp

    @app.get("/second-factor")
    def factor_page() -> Any:
        s = sessions.get(request.cookies.get("vsid", ""))
        if s is None:
            return redirect("/session")
        return (f"<form action='/search'><input name=q></form><form method=post action='/second-factor'>"
                f"<input type=hidden name=csrf value={s['csrf']}><input type=text name=totp>"
                "<input type=checkbox name=keep value=1></form>")

    @app.post("/second-factor")
    def factor() -> Any:
        s = sessions.get(request.cookies.get("vsid", ""))
        if s is None or request.form.get("csrf") != s["csrf"] or not accept(request.form.get("totp", "")):
            return factor_page(), 401
        s["ok"] = True
        return redirect("/vault")

    @app.post("/api/login")
    def json_login() -> Any:
        if (request.get_json(silent=True) or {}).get("password") != PASSWORD:
            return jsonify(error="no"), 401
        sid = secrets.token_hex(8)
        sessions[sid] = {"ok": False}
        resp = make_response(jsonify(challenge="/api/otp"))
        resp.set_cookie("vsid", sid)
        return resp

    @app.post("/api/otp")
    def json_otp() -> Any:
        s = sessions.get(request.cookies.get("vsid", ""))
        if s is None or not accept(str((request.get_json(silent=True) or {}).get("pin", ""))):
            return jsonify(error="bad code"), 401
        return jsonify(access_token=secrets.token_hex(16))

    @app.get("/vault")
    def vault() -> Any:
        s = sessions.get(request.cookies.get("vsid", ""))
        return ("secrets", 200) if s and s["ok"] else redirect("/session")

    return app


FORM_ROLE = RoleConfig.model_validate({"login": {"path": "/session", "form": {"user": "eve", "password": PASSWORD}},
                                       "mfa": {"totp_secret": SEED}})


def _login(app: Flask, role: RoleConfig, clock: Clock, name: str = "eve", **kwargs: Any) -> Any:
    target = Target.from_app(app)

    async def run() -> Any:
        async with target.running(), ProbeClient(target) as client:
            session = await login_role(client, name, role, **kwargs)
            page = await client.request("GET", "/vault", **session.apply({}))
            return session, page

    with mfa.pinned_clock(clock):
        return asyncio.run(run())


def test_form_mfa_step_is_found_and_completed_with_the_pinned_clock() -> None:
    clock = Clock()
    session, page = _login(vault_app(clock), FORM_ROLE, clock)
    assert page.status == 200 and page.text == "secrets"
    # The code of the pinned time step was the one sent, and it is a secret of the session.
    assert pyotp.TOTP(SEED).at(T0) in session.secrets and SEED in session.secrets


def test_primary_login_only_leaves_the_second_factor_pending() -> None:
    clock = Clock()
    session, page = _login(vault_app(clock), FORM_ROLE, clock, second_factor=False)
    assert page.status == 302 and session.cookies.get("vsid")


def test_json_login_follows_the_challenge_path_with_the_configured_field() -> None:
    clock = Clock()
    role = RoleConfig.model_validate({"login": {"path": "/api/login", "json": {"user": "eve", "password": PASSWORD}},
                                      "mfa": {"totp_secret": SEED, "field": "pin"}})
    session, _ = _login(vault_app(clock), role, clock)
    assert session.headers["Authorization"].startswith("Bearer ")


def test_a_wrong_seed_is_a_config_error_naming_the_role_and_the_step() -> None:
    clock = Clock()
    role = FORM_ROLE.model_copy(update={"mfa": MfaConfig(totp_secret="KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU")})
    with pytest.raises(ConfigError, match=r"role 'eve': MFA step failed: POST /second-factor \(field 'totp'\)"):
        _login(vault_app(clock), role, clock)


def test_no_code_form_and_no_configured_path_is_a_config_error() -> None:
    clock = Clock()
    role = RoleConfig.model_validate({"login": {"path": "/api/login", "json": {"password": PASSWORD}},
                                      "mfa": {"totp_secret": SEED}})
    app = vault_app(clock)

    def no_hint() -> Any:  # a pending session, but no word on where the code goes
        resp = make_response(jsonify(ok=True))
        resp.set_cookie("vsid", "pending")
        return resp

    app.view_functions["json_login"] = no_hint
    with pytest.raises(ConfigError, match="set mfa.path"):
        _login(app, role, clock)


def test_repeated_logins_in_one_time_step_use_later_codes() -> None:
    """Servers refuse a spent code; the next logins use the following steps (a generous drift window)."""
    clock = Clock()
    app = vault_app(clock, window=3)
    target = Target.from_app(app)
    with mfa.pinned_clock(clock):
        sessions = [login_roles_sync(target, {"eve": FORM_ROLE})["eve"] for _ in range(3)]
    assert [pyotp.TOTP(SEED).at(T0 + 30 * i) in s.secrets for i, s in enumerate(sessions)] == [True] * 3


def test_a_code_ahead_of_the_server_clock_waits_for_the_next_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """A strict server (±0 steps) refuses the look-ahead code: wait one step (on the fake clock) and retry."""
    clock = Clock()
    app = vault_app(clock, window=0)
    monkeypatch.setattr(mfa, "_sleep", clock.sleep)
    target = Target.from_app(app)
    with mfa.pinned_clock(clock):
        login_roles_sync(target, {"eve": FORM_ROLE})
        login_roles_sync(target, {"eve": FORM_ROLE})
    assert len(clock.slept) == 1 and 0 < clock.slept[0] <= 31


def test_codes_follow_rfc_6238_at_the_pinned_time() -> None:
    with mfa.pinned_clock(59):
        assert mfa.totp_code("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") == pyotp.TOTP(
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").at(59)
        assert mfa.current_step() == 1


def test_mfa_config_accepts_explicit_step_settings_and_rejects_unknown_keys() -> None:
    cfg = MfaConfig.model_validate({"totp_secret": SEED, "path": "/otp", "field": "pin", "method": "PUT",
                                    "form_page": "/otp/form"})
    assert (cfg.path, cfg.field, cfg.method, cfg.form_page) == ("/otp", "pin", "PUT", "/otp/form")
    with pytest.raises(ValueError, match="extra"):
        MfaConfig.model_validate({"totp_secret": SEED, "sms": True})


def test_demo_roles_pass_the_totp_step_and_pending_sessions_are_not_logged_in() -> None:
    from bastion.demo import create_app, demo_config

    cfg = demo_config()
    target = Target.from_app(create_app("none"))

    async def run() -> tuple[int, int]:
        async with target.running(), ProbeClient(target) as client:
            full = await login_role(client, "alice", cfg.roles["alice"])
            pending = await login_role(client, "alice", cfg.roles["alice"], second_factor=False)
            a = await client.request("GET", "/account", **full.apply({}))
            b = await client.request("GET", "/account", **pending.apply({}))
            return a.status, b.status

    assert asyncio.run(run()) == (200, 302)
