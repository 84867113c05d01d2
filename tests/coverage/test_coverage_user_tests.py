"""Hand-written pytest tests count: the plugin's file (also under pytest-xdist) merged by `bastion coverage`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.coverage import Coverage, ThreatCoverage, load_user_tests, merge_user_tests
from bastion.coverage.model import ALL_ENTRIES, ANY_ROLE, NO_CHECK, NOT_TESTED, CoverageRow
from bastion.errors import ConfigError

APP = '''
from flask import Flask, request, session


def create_app():
    app = Flask(__name__)
    app.secret_key = "test-only"

    @app.post("/login")
    def login():
        if request.form.get("password") != "pw-" + request.form.get("username", ""):
            return "no", 401
        session["user"] = request.form["username"]
        return "ok"

    @app.get("/me")
    def me():
        user = session.get("user")
        return ({"user": user}, 200) if user else ("login first", 401)

    return app
'''

CONFIG = '''\
target: {app: "covapp_user:create_app()"}
roles:
  anonymous: {}
  alice: {login: {path: /login, form: {username: alice, password: pw-alice}}}
'''

USER_TESTS = '''
import pytest


@pytest.mark.threat("authz.bola")
def test_alice_reads_her_profile(as_role):
    assert as_role("alice").get("/me").status == 200


@pytest.mark.threat("authz.bola")
def test_anonymous_is_refused(as_role):
    assert as_role("anonymous").get("/me").status == 401


@pytest.mark.threat("ratelimit.login")
def test_fails_on_purpose(bastion_client):
    assert bastion_client.get("/me").status == 200


@pytest.mark.threat("no.such-threat")
def test_unknown_threat():
    pass


def test_unmarked(bastion_client):
    pass
'''


def _project(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(covapp_user=APP, test_user=USER_TESTS)
    pytester.makefile(".yaml", bastion=CONFIG)
    pytester.syspathinsert()
    return pytester.path / "cov.json"


def _check_file(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert doc["schema"] == "bastion-test-coverage/1"
    tests = doc["tests"]
    assert tests["test_user.py::test_alice_reads_her_profile"] == {
        "outcome": "passed", "threats": ["authz.bola"], "roles": ["alice"]}
    assert tests["test_user.py::test_anonymous_is_refused"]["roles"] == ["anonymous"]
    assert tests["test_user.py::test_fails_on_purpose"]["outcome"] == "failed"
    assert "test_user.py::test_unmarked" not in tests
    assert doc["threats"]["authz.bola"] == {"test_user.py::test_alice_reads_her_profile": "passed",
                                            "test_user.py::test_anonymous_is_refused": "passed"}


def test_plugin_writes_marked_tests_with_roles(pytester: pytest.Pytester) -> None:
    out = _project(pytester)
    result = pytester.runpytest("--bastion-config", "bastion.yaml", "--bastion-coverage-out", str(out),
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1, warnings=1)
    result.stdout.fnmatch_lines(["*unknown threat id*"])
    _check_file(out)


def test_plugin_merges_xdist_workers(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    out = _project(pytester)
    result = pytester.runpytest_subprocess("-n", "2", "--bastion-config", "bastion.yaml",
                                           "--bastion-coverage-out", str(out), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    _check_file(out)


def _bare_coverage() -> Coverage:
    rows = [CoverageRow(ALL_ENTRIES, ANY_ROLE, NOT_TESTED, NO_CHECK)]
    return Coverage(threats=[ThreatCoverage("authz.bola", "BOLA", "high", rows=list(rows)),
                             ThreatCoverage("ratelimit.login", "Login rate limit", "medium", rows=list(rows)),
                             ThreatCoverage("headers.csp-missing", "CSP", "medium", rows=list(rows))])


def test_merge_counts_passing_as_tested_and_failing_as_finding(pytester: pytest.Pytester) -> None:
    out = _project(pytester)
    pytester.runpytest("--bastion-config", "bastion.yaml", "--bastion-coverage-out", str(out))
    merged = merge_user_tests(_bare_coverage(), load_user_tests(out))
    bola = merged.get("authz.bola")
    assert bola is not None and bola.status == "tested" and bola.roles() == ["alice", "anonymous"]
    labels = {r.label() for r in bola.rows}
    assert "tested (user test: test_user.py::test_alice_reads_her_profile)" in labels
    assert all(r.reason != NO_CHECK for r in bola.rows)
    assert merged.get("ratelimit.login").status == "finding"  # type: ignore[union-attr]
    assert merged.get("headers.csp-missing").reason == NO_CHECK  # type: ignore[union-attr]
    assert any("test_user.py::test_unknown_threat" in w and "no.such-threat" in w for w in merged.warnings)


def test_old_format_and_bad_files(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": "bastion-test-coverage/1",
                               "threats": {"authz.bola": {"t.py::test_a": "passed"}}}))
    merged = merge_user_tests(_bare_coverage(), load_user_tests(old))
    assert merged.get("authz.bola").status == "tested"  # type: ignore[union-attr]
    for content in ("{", json.dumps({"schema": "other"}), json.dumps({"schema": "bastion-test-coverage/1",
                                                                        "threats": [1]})):
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(ConfigError, match="bad.json"):
            load_user_tests(bad)
    with pytest.raises(ConfigError, match="missing.json"):
        load_user_tests(tmp_path / "missing.json")
