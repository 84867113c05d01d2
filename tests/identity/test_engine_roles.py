"""The engine with roles: per-role units, credentials per request, redaction of login secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from flask import Flask, jsonify, request

from bastion.checks.registry import REGISTRY, check
from bastion.engine.runner import ScanOptions, run_scan
from bastion.identity.session import RoleSession
from bastion.model.schema import BastionConfig
from bastion.surface.model import EntryPoint, Surface
from bastion.target.target import Target


def whoami_app() -> Flask:
    app = Flask("whoami")

    @app.get("/whoami")
    def whoami() -> Any:
        return jsonify(cookie=request.cookies.get("sid", ""), auth=request.headers.get("Authorization", ""))

    return app


@pytest.fixture
def probe_check() -> Iterator[list[tuple[str | None, str]]]:
    """A temporary per-role check that records who it ran as and what the app saw."""
    seen: list[tuple[str | None, str]] = []

    @check(id="test.roles-probe", threat="authz.bola", scope="target", roles=True)
    async def roles_probe(ctx: Any) -> AsyncIterator[Any]:
        ex = await ctx.send("GET", "/whoami")
        seen.append((ctx.role, ex.text))
        anon = await ctx.send("GET", "/whoami", as_role="anonymous")
        seen.append(("anonymous", anon.text))
        yield ctx.finding(title=f"saw {ex.text}")

    yield seen
    del REGISTRY["test.roles-probe"]


def _surface() -> Surface:
    return Surface(entry_points=[EntryPoint(method="GET", path="/whoami")])


def test_a_roles_check_runs_once_per_role_with_its_credentials(probe_check: list) -> None:
    roles = {"alice": RoleSession("alice", cookies={"sid": "alice-session-cookie"}),
             "svc": RoleSession("svc", headers={"Authorization": "Bearer svc-token-value"})}
    result = run_scan(Target.from_app(whoami_app()), _surface(),
                      ScanOptions(checks=["test.roles-probe"], roles=roles))
    assert sorted(r for r, _ in probe_check if r != "anonymous") == ["alice", "svc"]
    by_role = dict(p for p in probe_check if p[0] != "anonymous")
    assert "alice-session-cookie" in by_role["alice"] and "svc-token-value" in by_role["svc"]
    assert all('"auth":""' in t.replace(" ", "") and '"cookie":""' in t.replace(" ", "")
               for r, t in probe_check if r == "anonymous")
    assert result.checks[0].units == ["target as alice", "target as svc"]
    assert {f.role for f in result.findings} == {"alice", "svc"}
    # Session values obtained at login never reach the findings.
    dumped = "".join(f.model_dump_json() for f in result.findings)
    assert "alice-session-cookie" not in dumped and "svc-token-value" not in dumped


def test_without_roles_a_roles_check_has_no_units(probe_check: list) -> None:
    result = run_scan(Target.from_app(whoami_app()), _surface(), ScanOptions(checks=["test.roles-probe"]))
    assert result.checks[0].units == [] and probe_check == []


def test_default_checks_stay_anonymous_and_keep_their_units() -> None:
    roles = {"alice": RoleSession("alice", cookies={"sid": "x" * 8})}
    target = Target.from_app(whoami_app())
    plain = run_scan(target, _surface(), ScanOptions(checks=["headers"]))
    with_roles = run_scan(target, _surface(), ScanOptions(checks=["headers"], roles=roles))
    assert [(c.check_id, c.units, c.requests) for c in plain.checks] == \
        [(c.check_id, c.units, c.requests) for c in with_roles.checks]


def test_unknown_role_in_send_is_an_error_of_the_check(probe_check: list) -> None:
    @check(id="test.bad-role", threat="authz.bola", scope="target")
    async def bad_role(ctx: Any) -> AsyncIterator[Any]:
        await ctx.send("GET", "/whoami", as_role="mallory")
        yield ctx.finding()

    try:
        result = run_scan(Target.from_app(whoami_app()), _surface(), ScanOptions(checks=["test.bad-role"]))
    finally:
        del REGISTRY["test.bad-role"]
    assert "unknown role 'mallory'" in result.checks[0].errors[0]


def test_login_settings_parse_and_typos_are_errors() -> None:
    cfg = BastionConfig.model_validate({"target": {"app": "m:app"}, "roles": {
        "alice": {"login": {"path": "/login", "form": {"u": "a"}, "csrf_field": "_csrf", "form_page": "/in"}},
        "bot": {"login": {"path": "/token", "json": {"k": "v"}, "token_path": "data.token"}},
        "dave": {"basic": {"username": "d", "password": "p"}}}})
    assert cfg.roles["bot"].login is not None and cfg.roles["bot"].login.token_prefix == "Bearer"
    with pytest.raises(ValueError, match="extra"):
        BastionConfig.model_validate({"target": {"app": "m:app"},
                                      "roles": {"d": {"basic": {"username": "d", "pasword": "p"}}}})
