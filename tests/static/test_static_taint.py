"""The taint model: what propagates request data, what stops it, and how helpers are followed."""

from __future__ import annotations

import textwrap

from bastion.static.files import Skipped
from bastion.static.python_scan import analyse_python

HEADER = "from flask import Flask, request\nimport sqlite3\napp = Flask(__name__)\ndb = sqlite3.connect('x')\n"


def _rules(body: str) -> list[str]:
    skipped: list[Skipped] = []
    findings, _ = analyse_python(HEADER + textwrap.dedent(body), "app.py", skipped)
    return [f.check_id for f in findings]


def test_fstring_percent_plus_and_format_propagate() -> None:
    for expr in ('f"SELECT {v}"', '"SELECT %s" % v', '"SELECT " + v', '"SELECT {}".format(v)',
                 '"SELECT " + str(v).strip()', '" ".join(["SELECT", v])'):
        body = f"""
        @app.get("/x")
        def view():
            v = request.args.get("v")
            q = {expr}
            return db.execute(q)
        """
        assert _rules(body) == ["static.sql-string-building"], expr


def test_casts_allowlists_and_unknown_functions_stop_taint() -> None:
    for expr in ('int(v)', 'ALLOWED.get(v, "name")', 'quote(v)', 'len(v)', 'v == "x"'):
        body = f"""
        ALLOWED = {{"a": "a"}}
        @app.get("/x")
        def view():
            v = request.args.get("v")
            q = f"SELECT {{{expr}}}"
            return db.execute(q)
        """
        assert _rules(body) == [], expr


def test_constant_sql_with_bound_parameters_is_silent() -> None:
    body = """
    @app.get("/x")
    def view():
        return db.execute("SELECT * FROM t WHERE a = ?", (request.args["a"],))
    """
    assert _rules(body) == []


def test_reassignment_in_one_branch_keeps_taint_from_the_other() -> None:
    body = """
    @app.get("/x")
    def view():
        v = request.args.get("v")
        if v.isdigit():
            v = "1"
        return db.execute("SELECT " + v)
    """
    assert _rules(body) == ["static.sql-string-building"]


def test_sanitising_reassignment_kills_taint() -> None:
    body = """
    @app.get("/x")
    def view():
        v = request.args.get("v")
        v = int(v)
        return db.execute(f"SELECT {v}")
    """
    assert _rules(body) == []


def test_helpers_are_followed_through_parameters_and_return_values() -> None:
    body = """
    def build(where):
        return "SELECT * FROM t WHERE " + where

    def run(sql):
        return db.execute(sql)

    @app.get("/x")
    def view():
        return run(build(request.args["w"]))

    def unused(sql):
        return db.execute(sql)
    """
    assert _rules(body) == ["static.sql-string-building"]


def test_helper_called_only_with_constants_is_silent() -> None:
    body = """
    def run(sql):
        return db.execute(sql)

    @app.get("/x")
    def view():
        return run("SELECT 1")
    """
    assert _rules(body) == []


def test_request_object_itself_is_not_data() -> None:
    body = """
    @app.get("/x")
    def view():
        log = request
        return db.execute("SELECT 1", log)
    """
    assert _rules(body) == []
