"""Zero-config identities: two throw-away users signed up through the service's own sign-up become roles.

No `from __future__ import annotations`: FastAPI resolves the `Depends` of the in-function apps at runtime.
"""

import json
import secrets
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Form, HTTPException
from fastapi.security import OAuth2PasswordBearer
from flask import Flask, jsonify, make_response, render_template_string, request
from pydantic import BaseModel

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.engine.writes import WritePolicy
from bastion.identity.autoroles import (
    AUTO_ROLES,
    MAX_SIGNUP_ATTEMPTS,
    add_auto_roles,
    find_login,
    find_signups,
    wanted,
)
from bastion.session import discover, plan_scan
from bastion.target.target import Target


class SignUp(BaseModel):
    username: str
    password: str


class ItemIn(BaseModel):
    title: str
    note: str = ""


def items_app(owner_checked: bool = False, signup_open: bool = True) -> FastAPI:
    """OAuth2 password flow at /token, sign-up at POST /users, items owned by users (BOLA unless checked)."""
    app = FastAPI()
    users: dict[str, str] = {"ana": "ana-password-1"}
    tokens: dict[str, str] = {}
    items: dict[int, dict[str, Any]] = {1: {"id": 1, "owner": "ana", "title": "ana's", "note": "private"}}
    scheme = OAuth2PasswordBearer(tokenUrl="token")
    app.state.users = users
    app.state.attempts = 0

    def current(token: Annotated[str, Depends(scheme)]) -> str:
        if token not in tokens:
            raise HTTPException(401, "bad token")
        return tokens[token]

    @app.post("/users", status_code=201)
    def sign_up(body: SignUp) -> dict[str, str]:
        app.state.attempts += 1
        if not signup_open:
            raise HTTPException(403, "sign-up closed")
        if body.username in users:
            raise HTTPException(409, "taken")
        users[body.username] = body.password
        return {"username": body.username}

    @app.post("/token")
    def login(username: Annotated[str, Form()], password: Annotated[str, Form()]) -> dict[str, str]:
        if users.get(username) != password:
            raise HTTPException(400, "Incorrect username or password")
        token = secrets.token_urlsafe(16)
        tokens[token] = username
        return {"access_token": token, "token_type": "bearer"}

    @app.get("/items")
    def mine(user: Annotated[str, Depends(current)]) -> list[dict[str, Any]]:
        return [i for i in items.values() if i["owner"] == user]

    @app.post("/items", status_code=201)
    def create(body: ItemIn, user: Annotated[str, Depends(current)]) -> dict[str, Any]:
        new_id = max(items) + 1
        items[new_id] = {"id": new_id, "owner": user, "title": body.title, "note": body.note}
        return items[new_id]

    @app.get("/items/{item_id}")
    def read(item_id: int, user: Annotated[str, Depends(current)]) -> dict[str, Any]:
        item = items.get(item_id)
        if item is None or (owner_checked and item["owner"] != user):
            raise HTTPException(404, "Item not found")
        return item

    return app


FORM = """<form method="post" action="{{ action }}"><input type="hidden" name="csrf" value="{{ csrf }}">
<input name="username"><input name="email"><input type="password" name="password"></form>"""


def form_app() -> Flask:
    """HTML sign-up and login forms, each with a CSRF token tied to a cookie; a session cookie after login."""
    app = Flask(__name__)
    users: dict[str, str] = {}
    sessions: dict[str, str] = {}

    def page(action: str) -> Any:
        csrf = secrets.token_hex(8)
        resp = make_response(render_template_string(FORM, action=action, csrf=csrf))
        resp.set_cookie("csrf", csrf)
        return resp

    def csrf_ok() -> bool:
        return bool(request.form.get("csrf")) and request.form.get("csrf") == request.cookies.get("csrf")

    @app.get("/accounts/register")
    def register_page() -> Any:
        return page("/accounts/register")

    @app.post("/accounts/register")
    def register() -> Any:
        if not csrf_ok():
            return "csrf", 403
        users[request.form["username"]] = request.form["password"]
        return "", 303, {"Location": "/accounts/login"}

    @app.get("/accounts/login")
    def login_page() -> Any:
        return page("/accounts/login")

    @app.post("/accounts/login")
    def login() -> Any:
        if not csrf_ok() or users.get(request.form.get("username", "")) != request.form.get("password"):
            return "no", 401
        sid = secrets.token_hex(16)
        sessions[sid] = request.form["username"]
        resp = make_response("", 303, {"Location": "/me"})
        resp.set_cookie("sid", sid)
        return resp

    @app.get("/me")
    def me() -> Any:
        user = sessions.get(request.cookies.get("sid", ""))
        return (jsonify(username=user), 200) if user else ("login", 401)

    return app


def _zero_config(app: Any, checks: list[str], crawl: bool = False) -> tuple[ScanOptions, Target, str | None]:
    target = Target.from_app(app)
    surface = discover(target, crawl=crawl)
    options = ScanOptions(checks=checks, writes=WritePolicy.resolve("auto", in_process=True))
    message = add_auto_roles(target, surface, options)
    return options, target, message


def _scan(app: Any, checks: list[str]) -> tuple[ScanResult, ScanOptions]:
    options, target, _ = _zero_config(app, checks)
    return run_scan(target, discover(target, crawl=False), options), options


def test_finds_sign_up_and_oauth2_login_generically() -> None:
    surface = discover(Target.from_app(items_app()), crawl=False)
    assert [ep.path for ep in find_signups(surface)] == ["/users"]
    login = find_login(surface)
    assert login is not None and (login.path, login.body) == ("/token", "form")


def test_zero_config_registers_two_users_and_finds_bola(capsys: pytest.CaptureFixture[str]) -> None:
    result, options = _scan(items_app(), ["authz.bola"])
    assert sorted(options.roles) == list(AUTO_ROLES)
    assert "registered bastion_" in capsys.readouterr().err
    bola = [f for f in result.findings if f.check_id == "authz.bola"]
    assert bola and bola[0].location.path == "/items/{item_id}" and bola[0].role in AUTO_ROLES
    text = json.dumps([f.model_dump(mode="json") for f in result.findings])
    for password in options.secrets:
        assert password not in text


def test_owner_checked_twin_has_no_bola() -> None:
    result, options = _scan(items_app(owner_checked=True), ["authz.bola"])
    assert sorted(options.roles) == list(AUTO_ROLES)
    assert not [f for f in result.findings if f.check_id == "authz.bola"]


def test_form_sign_up_and_login_with_csrf_tokens() -> None:
    options, _, message = _zero_config(form_app(), ["headers"], crawl=True)
    assert sorted(options.roles) == list(AUTO_ROLES), message
    assert all("sid" in options.roles[r].cookies for r in AUTO_ROLES)


def test_closed_sign_up_warns_and_scans_anonymously(capsys: pytest.CaptureFixture[str]) -> None:
    app = items_app(signup_open=False)
    options, _, message = _zero_config(app, ["headers"])
    assert options.roles == {} and message is not None and "scanning anonymously" in message
    assert "warning" in capsys.readouterr().err
    assert app.state.attempts == MAX_SIGNUP_ATTEMPTS


def test_never_on_a_url_target_without_writes() -> None:
    surface = discover(Target.from_app(items_app()), crawl=False)
    read_only = ScanOptions(writes=WritePolicy.resolve("auto", in_process=False))
    assert not wanted(None, read_only, False, surface)
    allowed = ScanOptions(writes=WritePolicy.resolve(["POST /users"], in_process=False))
    assert wanted(None, allowed, False, surface)
    assert not wanted(None, ScanOptions(), True, surface, setting=False)


def test_roles_configured_means_no_sign_up() -> None:
    app = items_app()
    target = Target.from_app(app)
    options = ScanOptions(roles={"ana": object()})  # type: ignore[dict-item]
    assert add_auto_roles(target, discover(target, crawl=False), options) is None
    assert app.state.attempts == 0


def test_a_reset_that_drops_the_accounts_signs_them_up_again() -> None:
    import asyncio

    from bastion.target.client import ProbeClient

    app = items_app()
    target = Target.from_app(app)
    target.reset_hook = lambda a: [a.state.users.pop(n) for n in list(a.state.users) if n.startswith("bastion_")]
    options = ScanOptions(writes=WritePolicy.resolve("auto", in_process=True))
    add_auto_roles(target, discover(target, crawl=False), options)
    session = options.roles["auto-1"]

    async def after_reset() -> int:
        await target.reset()
        async with target.running(), ProbeClient(target) as client:
            assert await session.ensure_fresh(client)
            ex = await client.request("GET", "/items", **session.apply({}))
            return ex.status

    assert asyncio.run(after_reset()) == 200
    assert any(n.startswith("bastion_") for n in app.state.users)


def test_plan_scan_hook_and_switch() -> None:
    spec = "tests.identity.test_autoroles:items_app()"
    with plan_scan(app=spec, checks=["headers"], crawl=False) as plan:
        assert sorted(plan.options.roles) == list(AUTO_ROLES)
        assert sorted(plan.options.role_configs) == list(AUTO_ROLES)
        assert any("registered" in n for n in plan.notes)
    with plan_scan(app=spec, checks=["headers"], crawl=False, auto_roles=False) as plan:
        assert plan.options.roles == {}
