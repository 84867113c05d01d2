"""The pytest plugin: options, fixtures, the threat marker and coverage output."""

from __future__ import annotations

import json

import pytest

APP = '''
from flask import Flask, request

def create_app():
    app = Flask(__name__)

    @app.get("/hello")
    def hello():
        return {"hello": request.args.get("name", "world")}

    return app
'''

USER_TESTS = '''
import pytest

@pytest.mark.threat("injection.sql")
def test_hello_is_json(bastion_client, payloads):
    assert payloads.names()
    r = bastion_client.get("/hello", params={"name": "x'"})
    assert r.status == 200 and r.header("content-type") == "application/json"

@pytest.mark.threat("headers.csp-missing")
def test_fails_on_purpose(bastion_client):
    assert bastion_client.get("/hello").header("content-security-policy") is not None

@pytest.mark.threat("no.such-threat")
def test_unknown_threat(bastion_client):
    pass

def test_out_of_scope_is_refused(bastion_client):
    from bastion.errors import ScopeError
    with pytest.raises(ScopeError):
        bastion_client.get("http://example.com/")
'''


def test_user_tests_use_fixtures_and_count_in_coverage(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(userapp=APP, test_user=USER_TESTS)
    pytester.syspathinsert()
    cov = pytester.path / "cov.json"
    result = pytester.runpytest("--bastion-app", "userapp:create_app()",
                                "--bastion-coverage", str(cov), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1, warnings=1)
    result.stdout.fnmatch_lines(["*bastion threat coverage*", "*catalog threats exercised by your tests*"])
    data = json.loads(cov.read_text())
    assert data["threats"]["injection.sql"] == {"test_user.py::test_hello_is_json": "passed"}
    assert data["threats"]["headers.csp-missing"] == {"test_user.py::test_fails_on_purpose": "failed"}


def test_no_target_skips_with_a_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_a(bastion_client):\n    pass\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no Bastion target*"])
