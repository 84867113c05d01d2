"""The pytest fixtures `as_role` and `roles`, run with pytester against a small multi-user app."""

from __future__ import annotations

import pytest

APP = '''
from flask import Flask, request

USERS = {"ann": "ann-Passw0rd", "ben": "ben-Passw0rd"}
SESSIONS = {}

def create_app():
    app = Flask(__name__)

    @app.post("/login")
    def login():
        if USERS.get(request.form.get("user")) != request.form.get("password"):
            return "no", 401
        sid = "s-" + request.form["user"] + "-" + str(len(SESSIONS))
        SESSIONS[sid] = request.form["user"]
        resp = app.make_response(("ok", 200))
        resp.set_cookie("sid", sid)
        return resp

    @app.get("/me")
    def me():
        return {"user": SESSIONS.get(request.cookies.get("sid"), "anonymous")}

    return app
'''

CONFIG = '''
target: {app: "userapp:create_app()"}
roles:
  anonymous: {}
  ann: {login: {path: /login, form: {user: ann, password: "${ANN_PASSWORD}"}}}
  ben: {login: {path: /login, form: {user: ben, password: ben-Passw0rd}}}
'''

USER_TESTS = '''
import pytest

@pytest.mark.threat("authz.bola")
def test_me_as_ann(as_role):
    assert as_role("ann").get("/me").text.count("ann") == 1
    assert "anonymous" in as_role("anonymous").get("/me").text

def test_each_role_sees_itself(roles, as_role):
    assert roles in as_role(roles).get("/me").text

def test_unknown_role(as_role):
    with pytest.raises(pytest.UsageError, match="no such role"):
        as_role("mallory")
'''


def test_as_role_and_roles_fixtures(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANN_PASSWORD", "ann-Passw0rd")
    pytester.makepyfile(userapp=APP, test_user=USER_TESTS)
    pytester.makefile(".yaml", bastion=CONFIG)
    pytester.syspathinsert()
    result = pytester.runpytest("--bastion-config", "bastion.yaml", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*test_each_role_sees_itself?anonymous? PASSED*",
                                 "*test_each_role_sees_itself?ben? PASSED*"])


def test_roles_without_a_threat_model_skips(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_a(roles):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)


def test_a_failed_login_is_an_error_naming_the_role(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANN_PASSWORD", "wrong")
    pytester.makepyfile(userapp=APP, test_user="def test_a(as_role):\n    as_role('ann')\n")
    pytester.makefile(".yaml", bastion=CONFIG)
    pytester.syspathinsert()
    result = pytester.runpytest("--bastion-config", "bastion.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*role 'ann': login failed at POST /login*"])
