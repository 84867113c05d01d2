"""Login flows against a small third-party-style app: form + CSRF, JSON bearer, basic, API key."""

from __future__ import annotations

import base64
import secrets

import pytest
from flask import Flask, jsonify, make_response, request

from bastion.errors import ConfigError
from bastion.identity.login import login_form_fields, login_roles_sync, token_from_json
from bastion.model.schema import RoleConfig
from bastion.target.target import Target

PASSWORD = "s3cret-Passw0rd"


def notes_app() -> Flask:
    """Sessions with a CSRF token bound to a pre-login cookie; JSON tokens; basic auth; API keys."""
    app = Flask("notes")
    csrf: dict[str, str] = {}
    sessions: dict[str, str] = {}
    tokens: dict[str, str] = {}

    @app.get("/signin")
    def signin_page():  # type: ignore[no-untyped-def]
        pre, token = secrets.token_hex(8), secrets.token_hex(8)
        csrf[pre] = token
        resp = make_response(
            "<html><body><form action='/search'><input name=q></form>"
            f"<form method=post action='/signin'><input type=hidden name=_csrf value='{token}'>"
            "<input type=hidden name=lang value=en><input name=user><input type=password name=pw>"
            "</form></body></html>")
        resp.set_cookie("pre", pre)
        return resp

    @app.post("/signin")
    def signin():  # type: ignore[no-untyped-def]
        if csrf.get(request.cookies.get("pre", "")) != request.form.get("_csrf"):
            return "bad csrf", 400
        if request.form.get("pw") != PASSWORD:
            return "<form method=post action='/signin'>wrong password</form>", 200
        sid = secrets.token_hex(16)
        sessions[sid] = request.form["user"]
        resp = make_response("", 302)
        resp.headers["Location"] = "/home"
        resp.set_cookie("sid", sid, httponly=True)
        resp.set_cookie("pre", "", max_age=0)
        return resp

    @app.post("/api/auth")
    def api_auth():  # type: ignore[no-untyped-def]
        body = request.get_json(silent=True) or {}
        if body.get("password") != PASSWORD:
            return jsonify(error="no"), 401
        token = secrets.token_hex(16)
        tokens[token] = body["user"]
        return jsonify(data={"auth": {"bearer": token}}, access_token=token)

    @app.get("/me")
    def me():  # type: ignore[no-untyped-def]
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:] in tokens:
            return jsonify(user=tokens[auth[7:]])
        if auth.startswith("Basic "):
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            if pw == PASSWORD:
                return jsonify(user=user)
        if request.headers.get("X-API-Key") == "key-123456":
            return jsonify(user="service")
        if request.cookies.get("sid") in sessions:
            return jsonify(user=sessions[request.cookies["sid"]])
        return jsonify(error="who are you"), 401

    return app


def _role(data: dict) -> RoleConfig:
    return RoleConfig.model_validate(data)


def _login(role: dict, name: str = "carol") -> dict:
    return login_roles_sync(Target.from_app(notes_app()), {name: _role(role)})


def test_form_login_copies_the_csrf_token_and_keeps_the_session_cookie() -> None:
    sessions = _login({"login": {"path": "/signin", "form": {"user": "carol", "pw": PASSWORD}}})
    carol = sessions["carol"]
    assert set(carol.cookies) == {"sid"}  # the pre-login cookie was deleted by the login response
    assert PASSWORD in carol.secret_values() and carol.cookies["sid"] in carol.secret_values()


def test_form_login_with_a_named_csrf_field_and_a_separate_form_page() -> None:
    sessions = _login({"login": {"path": "/signin", "form_page": "/signin", "csrf_field": "_csrf",
                                 "form": {"user": "carol", "pw": PASSWORD}}})
    assert "sid" in sessions["carol"].cookies


def test_missing_csrf_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no hidden field 'token'"):
        _login({"login": {"path": "/signin", "csrf_field": "token", "form": {"user": "c", "pw": PASSWORD}}})


def test_wrong_password_is_a_config_error_naming_role_and_path() -> None:
    with pytest.raises(ConfigError) as err:
        _login({"login": {"path": "/signin", "form": {"user": "carol", "pw": "nope"}}})
    assert "'carol'" in str(err.value) and "POST /signin" in str(err.value)
    assert err.value.exit_code == 2


def test_json_login_uses_the_default_token_key() -> None:
    carol = _login({"login": {"path": "/api/auth", "json": {"user": "carol", "password": PASSWORD}}})["carol"]
    token = carol.headers["Authorization"].removeprefix("Bearer ")
    assert token in carol.secrets and len(token) == 32


def test_json_login_with_a_token_path_and_a_raw_header() -> None:
    carol = _login({"login": {"path": "/api/auth", "json": {"user": "carol", "password": PASSWORD},
                              "token_path": "data.auth.bearer", "token_header": "X-Token",
                              "token_prefix": ""}})["carol"]
    assert len(carol.headers["X-Token"]) == 32


def test_json_login_without_a_token_at_the_path_fails() -> None:
    with pytest.raises(ConfigError, match="no token at 'data.jwt'"):
        _login({"login": {"path": "/api/auth", "json": {"user": "c", "password": PASSWORD},
                          "token_path": "data.jwt"}})


def test_rejected_json_login_fails() -> None:
    with pytest.raises(ConfigError, match="status 401"):
        _login({"login": {"path": "/api/auth", "json": {"user": "c", "password": "x"}}})


def test_basic_and_api_key_roles_need_no_request() -> None:
    sessions = login_roles_sync(Target.from_app(notes_app()), {
        "anonymous": RoleConfig(),
        "dave": _role({"basic": {"username": "dave", "password": PASSWORD}}),
        "svc": _role({"headers": {"X-API-Key": "key-123456"}, "cookies": {"theme": "dark"}}),
    })
    assert set(sessions) == {"dave", "svc"}
    assert sessions["dave"].headers["Authorization"].startswith("Basic ")
    assert PASSWORD in sessions["dave"].secret_values()
    kwargs = sessions["svc"].apply({"headers": {"Accept": "text/html"}, "cookies": {"a": "b"}})
    assert kwargs["headers"] == {"x-api-key": "key-123456", "accept": "text/html"}
    assert kwargs["cookies"] == {"theme": "dark", "a": "b"}


def test_form_parser_picks_the_login_form() -> None:
    page = ("<form action='/x'><input type=hidden name=a value=1></form>"
            "<form action='/login' method=post><input type=hidden name=csrf value='t&amp;k'></form>")
    assert login_form_fields(page, "https://h/login", "/login") == {"csrf": "t&k"}
    assert login_form_fields("<p>no form</p>", "https://h/", "/login") is None


def test_token_from_json_paths() -> None:
    assert token_from_json({"jwt": "abc"}, None) == "abc"
    assert token_from_json({"a": {"b": "t"}}, "a.b") == "t"
    assert token_from_json({"a": ["x"]}, "a.b") is None
    assert token_from_json({"token": ""}, None) is None
