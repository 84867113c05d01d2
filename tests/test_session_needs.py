"""Planning starts only the dependency doubles the selected checks and roles need, and every entry point that
plans a scan (scan_from_options, `bastion scan`) stops them at its end."""

from __future__ import annotations

import inspect
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

import bastion.drills.alerts as alerts
import bastion.resilience.wiring as wiring
import bastion.session as session
from bastion.checks.registry import NEEDS, check, load_checks
from bastion.cli import cli
from bastion.demo import demo_config
from bastion.errors import BastionError
from bastion.model import BastionConfig

# Names through which a check reaches what planning started: such a check must declare `needs`.
WIRING_NAMES = ("doubles_for", "wired_doubles", "queue_targets", "sinks_for", "AlertWatch")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ports(wired: wiring.WiredDoubles) -> list[int]:
    """The loopback ports of the doubles (their settings keep the URLs after they stop)."""
    ports = []
    for item in wired.deps.values():
        for value in item.raw.values():
            parts = urlsplit(value)
            if parts.scheme.startswith(("http", "redis", "smtp")) and parts.port:
                ports.append(parts.port)
        if item.raw.get("SMTP_PORT", "").isdigit():
            ports.append(int(item.raw["SMTP_PORT"]))
    return ports


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """Records every double set and alert listener planning starts (the wiring hook)."""
    seen: dict[str, list[Any]] = {"doubles": [], "sinks": []}
    real_wire, real_sinks = wiring.wire_dependencies, alerts.start_alert_sinks

    def wire(deps: Any) -> wiring.WiredDoubles | None:
        wired = real_wire(deps)
        seen["doubles"].extend([wired] if wired is not None else [])
        return wired

    def sinks(*args: Any, **kwargs: Any) -> alerts.AlertSinks | None:
        listener = real_sinks(*args, **kwargs)
        seen["sinks"].extend([listener] if listener is not None else [])
        return listener

    monkeypatch.setattr(wiring, "wire_dependencies", wire)
    monkeypatch.setattr(alerts, "start_alert_sinks", sinks)
    yield seen
    for wired in seen["doubles"]:
        wired.close()
    for listener in seen["sinks"]:
        listener.close()


# --- what each check declares ------------------------------------------------------------------------------


def test_unknown_needs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown needs"):
        check(id="x.needs-typo", threat="injection.sql", scope="target", needs=("idp",))


def test_checks_that_drive_doubles_declare_what_they_need() -> None:
    checks = load_checks()
    assert checks["jwt.expired-accepted-idp"].needs == ("oidc",)
    assert checks["privacy.pii-in-mail"].needs == ("smtp",)
    assert checks["queues.service-token"].needs == ("oidc",)
    for cid, spec in checks.items():
        assert set(spec.needs) <= NEEDS, cid
        if spec.family in ("queues", "resilience", "drills"):
            assert spec.needs, f"{cid} drives a double or listener but declares no needs"
        if spec.family == "resilience":
            assert spec.needs == ("dependencies",), cid
        # A check body reaching the scan's doubles or listeners directly must say so.
        source = inspect.getsource(inspect.unwrap(spec.func))
        if any(name in source for name in WIRING_NAMES):
            assert spec.needs, f"{cid} reads what planning started but declares no needs"
    assert not checks["injection.sql"].needs and not checks["headers.hsts-missing"].needs


# --- what planning computes --------------------------------------------------------------------------------


def _deps() -> dict[str, Any]:
    cfg = BastionConfig.model_validate({"target": {"app": "m:app"}, "dependencies": {
        "idp": {"kind": "oidc", "double": True}, "jobs": {"kind": "queue", "double": True},
        "db": {"kind": "sqlite", "path": "x.db"}}})
    return dict(cfg.dependencies)


def test_the_demo_gets_exactly_the_kinds_needed() -> None:
    deps = _deps()
    assert session.needed_dependencies(deps, set(), demo=True) == {}
    assert session.needed_dependencies(deps, {"alerts"}, demo=True) == {}
    assert list(session.needed_dependencies(deps, {"oidc"}, demo=True)) == ["idp"]
    assert sorted(session.needed_dependencies(deps, {"dependencies"}, demo=True)) == ["db", "idp", "jobs"]


def test_a_users_service_gets_all_or_nothing() -> None:
    deps = _deps()
    assert session.needed_dependencies(deps, set(), demo=False) == {}
    assert sorted(session.needed_dependencies(deps, {"oidc"}, demo=False)) == ["db", "idp", "jobs"]
    assert sorted(session.needed_dependencies(deps, {"alerts"}, demo=False)) == ["db", "idp", "jobs"]


def test_needs_follow_selection_exclusion_and_roles() -> None:
    assert session.scan_needs(["injection.sql", "headers"]) == frozenset()
    assert session.scan_needs(["jwt"]) == {"oidc"}
    assert session.scan_needs(["queues"]) == {"queue", "oidc"}
    assert session.scan_needs(["queues"], ["queues.service-token"]) == {"queue"}
    assert {"dependencies", "alerts", "smtp"} <= session.scan_needs(None)  # a full scan starts everything
    roles = BastionConfig.model_validate({"target": {"app": "m:app"}, "roles": {"partner": {"oidc": {
        "issuer": "http://127.0.0.1:9/realms/x", "client_id": "c", "client_secret": "s",
        "flow": "client_credentials"}}}}).roles
    assert session.scan_needs(["injection.sql"], roles=roles) == {"oidc"}


# --- the demo ----------------------------------------------------------------------------------------------


def test_a_narrow_demo_scan_starts_no_double(started: dict[str, list[Any]]) -> None:
    env_before = dict(os.environ)
    result = session.scan_from_options(demo=True, checks=["injection.sql"], crawl=False)
    assert started == {"doubles": [], "sinks": []}
    assert [c.check_id for c in result.checks] == ["injection.sql"] and not result.checks[0].errors
    assert {f.check_id for f in result.findings} == {"injection.sql"}  # the demo built and was scanned
    assert dict(os.environ) == env_before


def test_an_idp_check_starts_the_idp_only(started: dict[str, list[Any]]) -> None:
    with session.plan_scan(demo=True, checks=["jwt.expired-accepted-idp"], crawl=False) as plan:
        assert plan.wired == ["idp"]
        [wired] = started["doubles"]
        assert [w.kind for w in wired.deps.values()] == ["oidc"]
        assert wiring.doubles_for(plan.target) is wired
        assert any("not wired" in note and "jobs" in note for note in plan.notes)
        ports = _ports(wired)
        assert ports and all(_port_open(p) for p in ports)
    assert not any(_port_open(p) for p in ports)  # leaving the plan released them
    assert started["sinks"] == []


def test_a_resilience_check_starts_every_dependency(started: dict[str, list[Any]]) -> None:
    with session.plan_scan(demo=True, checks=["resilience.fail-open"], crawl=False) as plan:
        [wired] = started["doubles"]
        kinds = {w.kind for w in wired.deps.values()}
        assert {"oidc", "queue", "smtp", "sqlite"} <= kinds
        assert set(plan.wired) == set(demo_config().dependencies)
        ports = _ports(wired)
        assert all(_port_open(p) for p in ports)
    assert not any(_port_open(p) for p in ports)


def test_a_drill_starts_the_alert_listener_and_no_double(started: dict[str, list[Any]]) -> None:
    with session.plan_scan(demo=True, checks=["drills.credential-stuffing-undetected"], crawl=False) as plan:
        assert started["doubles"] == [] and plan.wired == []
        [listener] = started["sinks"]
        port = listener.server.server_address[1]
        assert _port_open(port)
    assert not _port_open(port)


def test_bastion_scan_releases_the_doubles_at_its_end(started: dict[str, list[Any]], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["scan", "--demo", "--checks", "resilience.fail-open", "-q", "--no-history",
                                      "--format", "json", "--out", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 1, result.output  # the planted fail-open flaws
    [wired] = started["doubles"]
    ports = _ports(wired)
    assert ports and not any(_port_open(p) for p in ports)
    assert wired._closed


def test_bastion_scan_releases_the_doubles_when_the_scan_fails(started: dict[str, list[Any]],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import bastion.engine.runner as runner

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise BastionError("the scan broke")

    monkeypatch.setattr(runner, "run_scan", broken)
    result = CliRunner().invoke(cli, ["scan", "--demo", "--no-crawl", "--checks", "jwt.expired-accepted-idp",
                                      "-q", "--no-history"])
    assert result.exit_code == 2 and "the scan broke" in result.output
    [wired] = started["doubles"]
    assert not any(_port_open(p) for p in _ports(wired))


# --- a user's service --------------------------------------------------------------------------------------

APP = '''
import os
from flask import Flask


def create_app(strict=False):
    issuer = os.environ["SSO_ISSUER"] if strict else os.environ.get("SSO_ISSUER", "")
    app = Flask(__name__)

    @app.get("/")
    def index():
        return "sso at " + ("configured" if issuer else "unset")

    return app
'''


def _service(tmp_path: Path, module: str, strict: bool) -> Path:
    (tmp_path / f"{module}.py").write_text(APP)
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(f"target: {{app: '{module}:create_app(strict={strict})'}}\n"
                   "dependencies:\n"
                   "  sso: {kind: oidc, double: true, env: {OIDC_ISSUER: SSO_ISSUER}}\n"
                   "  jobs: {kind: queue, double: true}\n")
    return cfg


@pytest.fixture
def fresh_modules() -> Iterator[None]:
    before = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("needs_service_"):
            del sys.modules[name]
    sys.path[:] = path


@pytest.mark.usefixtures("fresh_modules")
def test_a_service_whose_checks_need_nothing_runs_without_doubles(started: dict[str, list[Any]],
                                                                    tmp_path: Path) -> None:
    with session.plan_scan(config=_service(tmp_path, "needs_service_lax", False), checks=["headers"],
                           crawl=False) as plan:
        assert started["doubles"] == [] and plan.wired == []
        assert any("jobs, sso" in note for note in plan.notes)


@pytest.mark.usefixtures("fresh_modules")
def test_a_service_needing_one_double_gets_them_all(started: dict[str, list[Any]], tmp_path: Path) -> None:
    with session.plan_scan(config=_service(tmp_path, "needs_service_one", False),
                           checks=["jwt.expired-accepted-idp"], crawl=False) as plan:
        assert plan.wired == ["jobs", "sso"]


@pytest.mark.usefixtures("fresh_modules")
def test_a_factory_requiring_a_setting_gets_every_dependency(started: dict[str, list[Any]],
                                                              tmp_path: Path) -> None:
    env_before = dict(os.environ)
    with session.plan_scan(config=_service(tmp_path, "needs_service_strict", True), checks=["headers"],
                           crawl=False) as plan:
        assert plan.wired == ["jobs", "sso"]  # the first build raised KeyError: SSO_ISSUER
        assert not [n for n in plan.notes if "scanning anonymously" not in n]
        [wired] = started["doubles"]
    assert not any(_port_open(p) for p in _ports(wired))
    assert dict(os.environ) == env_before
