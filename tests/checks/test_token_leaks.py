"""Tokens in logs, reset tokens in logs and Referers: demo flaws, hardened twin, third-party apps, redaction."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask, jsonify, request

from bastion.checks.token_leaks import outbound, text_candidates
from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.findings.model import Confidence
from bastion.identity.jwt import JWT_IN_TEXT
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.target.exchange import Exchange, SentRequest
from bastion.target.target import Target
from bastion.testing import findings_of

MINE = ["authn.reset-token-in-logs", "authn.reset-token-referer", "jwt.token-in-logs", "privacy.secrets-in-logs"]
DEMO_FLAWS = "token_logged,reset_token_logged,reset_token_referer"
PASSWORD = "Shop-Passw0rd!42"
log = logging.getLogger("shop.api")


# --- the demo ---------------------------------------------------------------------------------------------


def test_demo_flaws_are_found(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws=DEMO_FLAWS, checks=MINE)
    (token,) = findings_of(result, "jwt.token-in-logs")
    assert token.role == "bob" and token.confidence == Confidence.confirmed
    assert (token.location.file, token.location.path) == ("src/bastion/demo/identity_leaks.py", "/api/account/summary")
    (logged,) = findings_of(result, "authn.reset-token-in-logs")
    assert logged.confidence == Confidence.confirmed  # the logged token set a new password
    assert (logged.location.method, logged.location.path) == ("POST", "/password-reset")
    assert logged.location.file == "src/bastion/demo/identity_leaks.py"
    (referer,) = findings_of(result, "authn.reset-token-referer")
    assert referer.confidence == Confidence.confirmed  # the real link from the log, an explicit unsafe-url
    assert referer.location.path == "/password-reset/new" and "support.democorp.example" in referer.title


def test_demo_findings_never_show_tokens(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws=DEMO_FLAWS, checks=MINE)
    dumped = json.dumps([f.public_dict() for f in result.findings])
    assert not JWT_IN_TEXT.search(dumped)
    # The reset token (in the log record, the confirm request and the page URL) is masked everywhere.
    assert not re.search(r"token[=\\\":\s]+[A-Za-z0-9_-]{16,}", dumped)
    assert "authorization=***" in dumped and "token=***" in dumped


def test_privacy_check_leaves_tokens_to_the_jwt_check(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws=DEMO_FLAWS, checks=MINE)
    sites = {(f.location.file, f.location.line) for f in findings_of(result, "jwt.token-in-logs")}
    privacy = {(f.location.file, f.location.line) for f in findings_of(result, "privacy.secrets-in-logs")}
    assert sites and not sites & privacy


def test_referer_alone_uses_a_made_up_token(scan_demo: Callable[..., ScanResult]) -> None:
    """Without a leaked link the reset-like pages are tried with a made-up token: a firm finding."""
    (f,) = findings_of(scan_demo(flaws="reset_token_referer", checks=["authn.reset-token-referer"]),
                       "authn.reset-token-referer")
    assert f.confidence == Confidence.firm and f.location.path == "/password-reset/new"


def test_hardened_demo_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=MINE)
    assert result.findings == []
    assert all(c.requests > 0 for c in result.checks), [(c.check_id, c.requests) for c in result.checks]


# --- unit -----------------------------------------------------------------------------------------------


def _page(html: str, headers: list[tuple[str, str]] | None = None) -> Exchange:
    return Exchange(request=SentRequest("GET", "https://shop.test/reset?token=abc", []), status=200,
                    headers=[("content-type", "text/html"), *(headers or [])], body=html.encode())


def test_outbound_follows_header_meta_and_element_policies() -> None:
    page = '<a href="https://help.example/x">help</a><img src="/logo.png"><a href="/home">home</a>'
    assert outbound(_page(page)) == ("", ["https://help.example/x"])
    assert outbound(_page(page, [("Referrer-Policy", "no-referrer")]))[1] == []
    assert outbound(_page(page, [("Referrer-Policy", "unsafe-url, strict-origin")]))[1] == []
    meta = '<meta name="referrer" content="unsafe-url">' + page
    assert outbound(_page(meta, [("Referrer-Policy", "no-referrer")])) == ("unsafe-url", ["https://help.example/x"])
    assert outbound(_page('<a rel="noopener noreferrer" href="https://help.example/x">h</a>'))[1] == []
    assert outbound(_page('<script referrerpolicy="no-referrer" src="https://cdn.example/a.js"></script>'))[1] == []


def test_text_candidates_prefer_keyed_values() -> None:
    link = "https://shop.test/reset?token=Zx81aa9Qm2Lw0vB7"
    found = {c.value: c for c in text_candidates(f"reset for 7: {link} code=991AB77QX request=8f2e9a1c4b7d6e3f9a2b",
                                                 "log")}
    assert found["Zx81aa9Qm2Lw0vB7"].keyed and found["Zx81aa9Qm2Lw0vB7"].url == link
    assert found["991AB77QX"].keyed
    assert not found["8f2e9a1c4b7d6e3f9a2b"].keyed


# --- third-party apps ---------------------------------------------------------------------------------------


def shop_app(*, log_tokens: bool = False, log_reset: bool = False, referrer: str | None = None) -> Flask:
    """A small shop API: JSON login for a bearer JWT, a forgot/reset flow with a landing page."""
    app = Flask(__name__)
    key = secrets.token_urlsafe(32)
    users = {"dana@shop.test": PASSWORD}
    resets: dict[str, str] = {}

    def user() -> str | None:
        auth = request.headers.get("Authorization", "")
        try:
            return str(pyjwt.decode(auth[7:], key, algorithms=["HS256"])["sub"]) if auth[:7] == "Bearer " else None
        except pyjwt.PyJWTError:
            return None

    @app.post("/auth/session")
    def login() -> Any:
        body = request.get_json(silent=True) or {}
        if users.get(str(body.get("email"))) != body.get("password"):
            return jsonify(error="bad credentials"), 401
        token = pyjwt.encode({"sub": body["email"], "iss": "shop"}, key, algorithm="HS256")
        if log_tokens:
            log.info("login password=%s issued %s", body["password"], token)
        else:
            log.info("login ok")
        return jsonify(access_token=token)

    @app.get("/orders")
    def orders() -> Any:
        who = user()
        if who is None:
            return jsonify(error="login required"), 401
        return jsonify(owner=who, orders=[])

    @app.post("/account/forgot")
    def forgot() -> Any:
        email = request.form.get("email", "")
        if email in users:
            token = secrets.token_urlsafe(24)
            resets[token] = email
            link = f"{request.host_url}account/reset/new?token={token}"
            log.info("reset link: %s", link) if log_reset else log.info("reset mailed")
        return jsonify(message="if the address exists, we sent a link")

    @app.get("/account/reset/new")
    def landing() -> Any:
        token = request.args.get("token", "").replace('"', "")
        html = (f'<form method="post" action="/account/reset/new"><input type="hidden" name="token" value="{token}">'
                '<input type="password" name="password"><button>Save</button></form>'
                '<a href="https://help.shop-partner.example/reset">Help</a>')
        resp = app.response_class(html, mimetype="text/html")
        if referrer:
            resp.headers["Referrer-Policy"] = referrer
        return resp

    @app.post("/account/reset/new")
    def confirm() -> Any:
        email = resets.pop(request.form.get("token", ""), None)
        if email is None:
            return jsonify(error="invalid token"), 400
        users[email] = request.form.get("password", "")
        return jsonify(message="password changed")

    return app


def scan_shop(**flags: Any) -> ScanResult:
    target = Target.from_app(shop_app(**flags))
    surface = discover(target, crawl=False)
    configs = {"dana": RoleConfig.model_validate({"login": {"path": "/auth/session", "json": {
        "email": "dana@shop.test", "password": PASSWORD}}})}
    roles = login_roles_sync(target, configs)
    return run_scan(target, surface, ScanOptions(checks=MINE, roles=roles, role_configs=configs, secrets=[PASSWORD]))


def _fired(result: ScanResult) -> dict[str, list[str]]:
    errors = [e for c in result.checks for e in c.errors]
    assert not errors, errors
    out: dict[str, list[str]] = {}
    for f in result.findings:
        out.setdefault(f.check_id, []).append(f.location.path or "")
    return out


def test_third_party_safe_shop_is_clean() -> None:
    assert _fired(scan_shop(referrer="strict-origin-when-cross-origin")) == {}


def test_third_party_token_and_password_in_one_record_are_two_findings() -> None:
    result = scan_shop(log_tokens=True, referrer="no-referrer")
    assert set(_fired(result)) == {"jwt.token-in-logs", "privacy.secrets-in-logs"}
    (token,) = findings_of(result, "jwt.token-in-logs")
    (privacy,) = findings_of(result, "privacy.secrets-in-logs")
    # One record (the login line) holds both: the password is privacy's finding, the token this check's.
    assert (token.location.file, token.location.line) == (privacy.location.file, privacy.location.line)
    assert token.location.file == "tests/checks/test_token_leaks.py" and token.role == "dana"
    assert "password" in privacy.title and "jwt" not in privacy.title.lower()
    dumped = json.dumps([f.public_dict() for f in result.findings])
    assert PASSWORD not in dumped and not JWT_IN_TEXT.search(dumped)


def test_third_party_reset_link_in_logs_and_referer() -> None:
    result = scan_shop(log_reset=True)
    fired = _fired(result)
    assert fired["authn.reset-token-in-logs"] == ["/account/forgot"]
    assert fired["authn.reset-token-referer"] == ["/account/reset/new"]
    (logged,) = findings_of(result, "authn.reset-token-in-logs")
    # dana's own account, and no reset hook to restore her password: the token is not used, only reported.
    assert logged.confidence == Confidence.firm
    (referer,) = findings_of(result, "authn.reset-token-referer")
    # No policy at all: a finding, but only firm (current browsers strip cross-origin paths by default).
    assert referer.confidence == Confidence.firm and "no Referrer-Policy" in referer.title


@pytest.mark.parametrize("policy", ["no-referrer", "same-origin", "strict-origin"])
def test_third_party_referer_is_silent_under_a_stripping_policy(policy: str) -> None:
    assert "authn.reset-token-referer" not in _fired(scan_shop(log_reset=True, referrer=policy))
