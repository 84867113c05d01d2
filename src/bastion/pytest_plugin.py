"""Bastion as a pytest plugin: fixtures for writing your own security tests, and threat coverage.

    @pytest.mark.threat("injection.sql")
    def test_search_is_parameterised(bastion_client, payloads):
        for p in payloads.get("sql-errors-probe"):
            r = bastion_client.get("/search", params={"q": p})
            assert "syntax error" not in r.text

Options: --bastion-config FILE, --bastion-app MODULE:FACTORY, --bastion-url URL,
--bastion-coverage-out FILE (write the threats your tests exercised, as JSON, for
`bastion coverage --tests FILE`; also works under pytest-xdist).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.doubles.fixtures import faults, message_queue, redis_server, smtp_outbox, vault  # noqa: F401 -- registers the fixtures
from bastion.identity.fixtures import oidc_provider, tokens, totp  # noqa: F401 -- registers the fixtures
from bastion.identity.jwt_fixture import forge_jwt  # noqa: F401 -- registers the fixture
from bastion.payloads import Payloads, load_payloads
from bastion.target.budget import Limits
from bastion.target.client import ProbeClient
from bastion.target.exchange import Exchange
from bastion.target.target import IN_PROCESS_BASE_URL, Target

# node id -> {"outcome": ..., "threats": [...], "roles": [...]}, collected on the controller.
_COVERAGE_KEY = pytest.StashKey[dict[str, dict[str, Any]]]()
# Roles a test acted as through `as_role(...)` (per item).
_ROLES_KEY = pytest.StashKey[set[str]]()
# The report attribute carrying a marked test's threats and roles: pytest serializes extra report
# attributes, so pytest-xdist delivers it from the worker to the controller with the report.
_REPORT_ATTR = "bastion_threat_coverage"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bastion", "Bastion security testing")
    group.addoption("--bastion-config", default=None, help="Threat-model file (bastion.yaml) for bastion fixtures.")
    group.addoption("--bastion-app", default=None, help="In-process app 'module:factory()' for bastion fixtures.")
    group.addoption("--bastion-url", default=None, help="Running service URL for bastion fixtures.")
    group.addoption("--bastion-coverage-out", "--bastion-coverage", dest="bastion_coverage", default=None,
                    help="Write the threats exercised by @pytest.mark.threat tests to this JSON file "
                         "(for `bastion coverage --tests FILE`).")
    parser.addini("bastion_config", "Default threat-model file for bastion fixtures.", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "threat(id, ...): the catalog threat(s) this test exercises.")
    config.stash[_COVERAGE_KEY] = {}
    config.pluginmanager.register(_CoverageCollector(config), "bastion-threat-coverage")


def _threat_ids(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for mark in item.iter_markers("threat"):
        ids.extend(str(a) for a in mark.args)
    return ids


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from bastion.catalog import load_catalog

    known = load_catalog()
    for item in items:
        for tid in _threat_ids(item):
            if tid not in known:
                item.warn(pytest.PytestWarning(f"@pytest.mark.threat({tid!r}): unknown threat id; "
                                               "`bastion catalog` lists them"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    ids = _threat_ids(item)
    if ids and (report.when == "call" or report.outcome != "passed"):
        used: set[str] = item.stash.get(_ROLES_KEY, set())
        roles = sorted(used)
        setattr(report, _REPORT_ATTR, {"threats": ids, "roles": roles})
    return report


class _CoverageCollector:
    """Collects marked tests' outcomes from their reports, wherever they ran (in-process or xdist worker)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, _REPORT_ATTR, None)
        if not isinstance(data, dict):
            return
        tests = self.config.stash[_COVERAGE_KEY]
        entry = tests.setdefault(report.nodeid, {"outcome": report.outcome, "threats": [], "roles": []})
        # A later phase that did not pass (teardown error) overrides a passed call.
        entry["outcome"] = report.outcome
        entry["threats"] = sorted({*entry["threats"], *data.get("threats", ())})
        entry["roles"] = sorted({*entry["roles"], *data.get("roles", ())})


def threat_coverage(config: pytest.Config) -> dict[str, dict[str, str]]:
    """threat id -> {test node id: outcome} for the tests marked with @pytest.mark.threat."""
    out: dict[str, dict[str, str]] = {}
    for nodeid, info in sorted(config.stash.get(_COVERAGE_KEY, {}).items()):
        for tid in info["threats"]:
            out.setdefault(tid, {})[nodeid] = info["outcome"]
    return out


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    cov = threat_coverage(config)
    if not cov:
        return
    from bastion.catalog import load_catalog

    catalog = load_catalog()
    covered = sorted(t for t in cov if t in catalog)
    terminalreporter.write_sep("-", "bastion threat coverage")
    terminalreporter.write_line(f"{len(covered)}/{len(catalog)} catalog threats exercised by your tests: "
                                + ", ".join(covered))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write --bastion-coverage-out on the controller (an xdist worker only forwards its reports)."""
    config = session.config
    out = config.getoption("--bastion-coverage-out")
    if not out or hasattr(config, "workerinput"):
        return
    from bastion.coverage.user_tests import user_tests_document

    path = Path(out)
    tmp = path.with_suffix(path.suffix + ".tmp")
    doc = user_tests_document(config.stash.get(_COVERAGE_KEY, {}))
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
    os.replace(tmp, path)


class BastionClient:
    """A synchronous client for tests, with Bastion's scope guard and budgets; returns Exchanges."""

    def __init__(self, target: Target, limits: Limits | None = None, role: Any = None) -> None:
        self.target = target
        # A bastion.identity.RoleSession: its cookies and headers go on every request.
        self.role = role
        self._runner = asyncio.Runner()
        self._client = ProbeClient(target, limits=limits or Limits(max_requests=10_000))
        self._lifespan = target.running()
        self._runner.run(self._lifespan.__aenter__())

    def request(self, method: str, path: str, **kwargs: Any) -> Exchange:
        if self.role is not None:
            kwargs = self.role.apply(kwargs)
        return self._runner.run(self._client.request(method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("DELETE", path, **kwargs)

    @property
    def requests_sent(self) -> int:
        return self._client.budget.requests

    def close(self) -> None:
        try:
            self._runner.run(self._client.aclose())
            self._runner.run(self._lifespan.__aexit__(None, None, None))
        finally:
            self._runner.close()


@pytest.fixture(scope="session")
def bastion_config(request: pytest.FixtureRequest) -> Any:
    """The loaded threat model (bastion.model.BastionConfig), or None when no file is given."""
    path = request.config.getoption("--bastion-config") or request.config.getini("bastion_config")
    if not path:
        return None
    from bastion.model import load_config

    return load_config(path)


@pytest.fixture(scope="session")
def bastion_target(request: pytest.FixtureRequest, bastion_config: Any) -> Target:
    """The service under test, from --bastion-app / --bastion-url / --bastion-config."""
    app = request.config.getoption("--bastion-app")
    url = request.config.getoption("--bastion-url")
    if bastion_config is not None:
        app = app or bastion_config.target.app
        url = url or bastion_config.target.url
    if app:
        target = Target.from_spec(app, base_url=IN_PROCESS_BASE_URL)
    elif url:
        target = Target.from_url(url)
    else:
        pytest.skip("no Bastion target: pass --bastion-config, --bastion-app or --bastion-url "
                    "(or override the bastion_target fixture)")
    if bastion_config is not None:
        target.scope_hosts = list(bastion_config.scope.hosts)
    return target


@pytest.fixture
def bastion_client(bastion_target: Target) -> Iterator[BastionClient]:
    """A client bound to the target, with scope guard and budgets (fresh per test)."""
    client = BastionClient(bastion_target)
    yield client
    client.close()


@pytest.fixture(scope="session")
def payloads() -> Payloads:
    """Bastion's payload corpora: `payloads.get("name")`; `payloads.names()` lists them."""
    return load_payloads()


# --- grey-box sensors ---------------------------------------------------------------------------


@pytest.fixture
def sensors() -> Iterator[Any]:
    """A sensor session active for the test: `sensors.events` lists what the code under test did.

    Events are `SensorEvent(kind, detail, file, line)` with kind sql, open, subprocess, compile,
    exec, pickle, connect or resolve; `sensors.matching(text)` and `sensors.of_kind(kind)` filter them.
    Request it before `bastion_client` so the client's event loop inherits the session.
    """
    from bastion.sensors import SensorSession, sensor_session

    with sensor_session(SensorSession()) as session:
        yield session


# --- roles ----------------------------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize tests that take `roles` with every role of the threat model (anonymous first)."""
    if "roles" not in metafunc.fixturenames:
        return
    defs = metafunc._arg2fixturedefs.get("roles") or ()
    if not defs or getattr(defs[-1].func, "__module__", "") != __name__:  # a project's own `roles` wins
        return
    path = metafunc.config.getoption("--bastion-config") or metafunc.config.getini("bastion_config")
    names: list[str] = []
    if path:
        from bastion.model import load_config

        names = load_config(path).role_names()
    metafunc.parametrize("roles", names, ids=names)


@pytest.fixture
def roles() -> str:
    """The role name this test runs as; the test runs once per role of the threat model."""
    pytest.skip("the roles fixture needs a threat model with roles (--bastion-config)")


@pytest.fixture(scope="session")
def bastion_sessions(bastion_target: Target, bastion_config: Any) -> dict[str, Any]:
    """Every role of the threat model logged in once (name -> bastion.identity.RoleSession)."""
    from bastion.identity.login import login_roles_sync

    if bastion_config is None:
        return {}
    return login_roles_sync(bastion_target, bastion_config.roles)


@pytest.fixture
def as_role(request: pytest.FixtureRequest, bastion_target: Target,
            bastion_sessions: dict[str, Any]) -> Iterator[Any]:
    """`as_role("alice")`: a BastionClient that sends every request as that logged-in role."""
    clients: list[BastionClient] = []

    def client_for(name: str) -> BastionClient:
        if name != "anonymous" and name not in bastion_sessions:
            known = ", ".join(["anonymous", *bastion_sessions])
            raise pytest.UsageError(f"as_role({name!r}): no such role in the threat model (roles: {known})")
        client = BastionClient(bastion_target, role=bastion_sessions.get(name))
        clients.append(client)
        # The threat-coverage file records which roles a marked test acted as.
        request.node.stash.setdefault(_ROLES_KEY, set()).add(name)
        return client

    yield client_for
    for client in clients:
        client.close()
