"""authz.undeclared-field: JSON responses carrying fields their OpenAPI response schema does not declare."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI, Header, HTTPException
from flask import Flask, abort, jsonify, request
from pydantic import BaseModel

from bastion.checks.exposure import sensitive_name, undeclared_fields
from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.target.target import Target

CHECKS = ["authz.undeclared-field"]
PASSWORD = "Ledger-Passw0rd!"
HASH = "pbkdf2:sha256:600000$Qm9iYnk$3f1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e"
MEMBERS = {"ivy": {"id": 7, "name": "Ivy", "email": "ivy@ledger.example", "password_hash": HASH,
                   "theme": "dark", "api_key": "lk_live_5b2e9c0d7f3a41e8"},
           "jon": {"id": 8, "name": "Jon", "email": "jon@ledger.example", "password_hash": HASH + "0",
                   "theme": "light", "api_key": "lk_live_0c4d8a2b6e1f93a7"}}


# --- the demo -------------------------------------------------------------------------------------------


def test_fires_on_the_account_summary_flaw(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="undeclared_password_hash_field", checks=CHECKS)
    [finding] = result.findings
    assert finding.location.path == "/api/account/summary" and finding.check_id == "authz.undeclared-field"
    assert "password_hash" in finding.title and "(as alice, bob, admin)" in finding.title
    assert "pbkdf2" not in finding.model_dump_json()  # the hash is named, never shown


def test_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=CHECKS)
    assert result.findings == [] and not [c.errors for c in result.checks if c.errors]


def test_silent_on_the_fastapi_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="all", framework="fastapi", checks=CHECKS)
    assert result.findings == [] and not [c.errors for c in result.checks if c.errors]


# --- a third-party Flask app with a hand-written OpenAPI document ----------------------------------------


def _member_schema(closed: bool, extra: Any = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"}}}
    if closed:
        schema["additionalProperties"] = False
    if extra is not None:
        schema["additionalProperties"] = extra
    return schema


def ledger_app(*, fields: tuple[str, ...], closed: bool = False, extra: Any = None,
               documented: bool = True) -> Flask:
    """Members read their own account and a team listing; `fields` are what the views add beyond the schema."""
    app = Flask("ledger")
    tokens: dict[str, str] = {}

    def me() -> str:
        name = tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if name is None:
            abort(401)
        return name

    def view(name: str) -> dict[str, Any]:
        member = MEMBERS[name]
        return {"id": member["id"], "name": member["name"], "email": member["email"],
                **{f: member[f] for f in fields}}

    @app.post("/login")
    def login() -> Any:
        body = request.get_json(silent=True) or {}
        if body.get("password") != PASSWORD or body.get("username") not in MEMBERS:
            abort(401)
        value = secrets.token_hex(16)
        tokens[value] = body["username"]
        return jsonify(token=value)

    @app.get("/v1/account")
    def account() -> Any:
        return jsonify(view(me()))

    @app.get("/v1/team")
    def team() -> Any:
        me()
        return jsonify(members=[{k: v for k, v in view(n).items() if k != "email"} for n in MEMBERS])

    @app.get("/openapi.json")
    def spec() -> Any:
        member = _member_schema(closed, extra)
        listed = {**member, "properties": {k: v for k, v in member["properties"].items() if k != "email"}}
        paths = {"/account": {"get": {"responses": {"200": {"description": "me", "content": {
                     "application/json": {"schema": {"$ref": "#/components/schemas/Member"}}}}}}},
                 "/team": {"get": {"responses": {"200": {"description": "team", "content": {"application/json": {
                     "schema": {"type": "object", "properties": {
                         "members": {"type": "array", "items": {"$ref": "#/components/schemas/Listed"}}}}}}}}}}}
        return jsonify(openapi="3.0.3", info={"title": "ledger", "version": "2"}, servers=[{"url": "/v1"}],
                       paths=paths if documented else {},
                       components={"schemas": {"Member": member, "Listed": listed}})

    return app


def scan(app: Any, roles: tuple[str, ...] = tuple(MEMBERS)) -> ScanResult:
    target = Target.from_app(app)
    surface = discover(target, crawl=False)
    configs = {name: RoleConfig.model_validate({"login": {"path": "/login", "json": {
        "username": name, "password": PASSWORD}}}) for name in roles}
    options = ScanOptions(checks=CHECKS, roles=login_roles_sync(target, configs), secrets=[PASSWORD])
    result = run_scan(target, surface, options)
    assert not [c.errors for c in result.checks if c.errors]
    return result


def test_an_undeclared_password_hash_is_reported() -> None:
    findings = scan(ledger_app(fields=("password_hash", "theme"))).findings
    assert {f.location.path for f in findings} == {"/v1/account", "/v1/team"}  # server prefix applied
    for finding in findings:
        assert "password_hash" in finding.title and "(as ivy, jon)" in finding.title
        assert "theme" not in finding.title  # harmless, and the schema does not close the object
        assert "pbkdf2" not in finding.model_dump_json()


def test_fields_inside_array_items_are_walked() -> None:
    findings = scan(ledger_app(fields=("api_key",))).findings
    by_path = {f.location.path: f for f in findings}
    assert set(by_path) == {"/v1/account", "/v1/team"}
    notes = [e.content for e in by_path["/v1/team"].evidence if e.kind == "note"]
    assert any("members[].api_key" in n for n in notes)
    assert "lk_live" not in by_path["/v1/team"].model_dump_json()


def test_a_closed_schema_makes_any_extra_field_count() -> None:
    findings = scan(ledger_app(fields=("theme",), closed=True)).findings
    assert {f.location.path for f in findings} == {"/v1/account", "/v1/team"}
    assert all("theme" in f.title for f in findings)


@pytest.mark.parametrize("kwargs", [
    {"fields": ()},  # exactly what is declared
    {"fields": ("theme",)},  # a harmless extra under an open schema
    {"fields": ("password_hash", "api_key"), "extra": True},  # the schema allows any extra key
    {"fields": ("password_hash",), "documented": False},  # no schema: nothing to compare with
], ids=["declared", "harmless-extra", "additional-properties", "undocumented"])
def test_near_misses_scan_clean(kwargs: dict[str, Any]) -> None:
    assert scan(ledger_app(**kwargs)).findings == []


def test_a_personal_value_under_an_innocent_name_is_reported() -> None:
    app = ledger_app(fields=())

    @app.get("/v1/contact")
    def contact() -> Any:
        return jsonify(id=1, name="Ivy", email="x", backup="ivy.private@home.example")

    @app.after_request
    def add_contact_spec(resp: Any) -> Any:
        if request.path == "/openapi.json":
            doc = resp.get_json()
            doc["paths"]["/contact"] = {"get": {"responses": {"200": {"description": "c", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Member"}}}}}}}
            resp.set_data(jsonify(doc).get_data())
        return resp

    [finding] = scan(app).findings
    assert finding.location.path == "/v1/contact" and "backup" in finding.title
    assert "ivy.private@home.example" not in finding.model_dump_json()


# --- a FastAPI app whose response_model filters the output ------------------------------------------------


class MemberOut(BaseModel):
    id: int
    name: str
    email: str


class Login(BaseModel):
    username: str
    password: str


def fastapi_ledger(*, filtered: bool = True) -> FastAPI:
    app = FastAPI()
    tokens: dict[str, str] = {}

    @app.post("/login")
    def login(body: Login) -> dict[str, str]:
        if body.password != PASSWORD or body.username not in MEMBERS:
            raise HTTPException(401)
        value = secrets.token_hex(16)
        tokens[value] = body.username
        return {"token": value}

    # `responses=` only documents the model; `response_model` also filters the output through it.
    @app.get("/account", response_model=MemberOut if filtered else None,
             responses={} if filtered else {200: {"model": MemberOut}})
    def account(authorization: str = Header("")) -> Any:
        name = tokens.get(authorization.removeprefix("Bearer "))
        if name is None:
            raise HTTPException(401)
        return MEMBERS[name]  # the whole record, password_hash included: response_model filters it

    return app


def test_fastapi_response_model_scans_clean() -> None:
    result = scan(fastapi_ledger())
    assert result.findings == []
    assert sum(c.requests for c in result.checks) >= 3  # the account was read as every role


def test_fastapi_documented_but_unfiltered_model_is_reported() -> None:
    [finding] = scan(fastapi_ledger(filtered=False)).findings
    assert finding.location.path == "/account"
    assert "password_hash" in finding.title and "api_key" in finding.title and "theme" not in finding.title


# --- the walk itself ------------------------------------------------------------------------------------


def test_walk_merges_all_of_and_stays_bounded() -> None:
    schema = {"allOf": [{"type": "object", "properties": {"id": {"type": "integer"}}},
                        {"type": "object", "properties": {"meta": {"type": "object"}}}]}
    body = {"id": 1, "meta": {"anything": 1}, "salt": "x" * 8}
    assert [f.path for f in undeclared_fields(body, schema)] == ["salt"]
    deep: Any = {"secret": "s"}
    for _ in range(200):
        deep = {"a": deep}
    schema_deep: dict[str, Any] = {"type": "object", "properties": {"secret": {"type": "string"}}}
    for _ in range(200):
        schema_deep = {"type": "object", "additionalProperties": False, "properties": {"a": schema_deep}}
    assert undeclared_fields(deep, schema_deep) == []
    wide = {"items": [{"k": i, f"x{i}": 1} for i in range(1000)]}
    closed = {"type": "object", "properties": {"items": {"type": "array", "items": {
        "type": "object", "additionalProperties": False, "properties": {"k": {"type": "integer"}}}}}}
    assert len(undeclared_fields(wide, closed)) <= 20


@pytest.mark.parametrize(("name", "sensitive"), [
    ("password_hash", True), ("passwordHash", True), ("is_admin", True), ("isAdmin", True), ("role", True),
    ("internal_notes", True), ("api_key", True), ("salt", True), ("public_key", False), ("token_type", False),
    ("theme", False), ("keyboard", False), ("display_name", False),
])
def test_sensitive_names(name: str, sensitive: bool) -> None:
    assert sensitive_name(name, {}) is sensitive
