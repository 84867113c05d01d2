"""injection.sql: fires on error/boolean/time-based SQL injection, silent on parameterised code."""

from __future__ import annotations

import hashlib
import html
import itertools
import re
import secrets
import sqlite3
import tempfile
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask, jsonify, request

from bastion.engine import ScanOptions, run_scan
from bastion.findings.model import Finding
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target
from bastion.testing import reproduction_passes

CHECK = "injection.sql"
ROWS = [("pen", "office", "paid", "acme"), ("ink", "office", "open", "acme"),
        ("mug", "kitchen", "paid", "zeta")]


class _Db:
    """A file database; each request opens its own connection (sqlite connections are not shareable)."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="bastion-sql-")) / "app.db"
        with closing(sqlite3.connect(self.path)) as conn, conn:
            conn.execute("CREATE TABLE products (name TEXT, category TEXT, status TEXT, tenant TEXT)")
            conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?)", ROWS)

    def execute(self, sql: str, params: tuple[object, ...] = (),
                sleep: bool = True) -> list[tuple[object, ...]]:
        with closing(sqlite3.connect(self.path)) as conn:
            if sleep:
                conn.create_function("sleep", 1, _sleep)
            return conn.execute(sql, params).fetchall()


def _sleep(seconds: object) -> int:
    """MySQL-like SLEEP(), capped at 3 s."""
    time.sleep(min(float(seconds or 0), 3.0))  # type: ignore[arg-type]
    return 0


def vulnerable_app() -> Flask:
    """Third-party style app with one flaw per SQL technique, plus a numeric one."""
    app = Flask("vulnerable_app")
    conn = _Db()

    @app.get("/products")
    def products():  # error-based: DB error text returned
        try:
            category = request.args.get("category", "")
            rows = conn.execute(f"SELECT name FROM products WHERE category = '{category}'")
            return jsonify([r[0] for r in rows])
        except sqlite3.Error as exc:
            return f"database error: {type(exc).__module__}.{type(exc).__name__}: {exc}", 500

    @app.get("/catalog")
    def catalog():  # error-based, the error text HTML-escaped in a page
        try:
            rows = conn.execute(f"SELECT name FROM products WHERE name = \"{request.args.get('name', '')}\"")
            return "<ul>" + "".join(f"<li>{r[0]}</li>" for r in rows) + "</ul>"
        except sqlite3.Error as exc:
            return f"<p class=error>Query failed: {html.escape(str(exc))}</p>", 500

    @app.post("/api/search")
    def search():  # boolean-based: errors swallowed, default value matches no row
        status = ((request.get_json(silent=True) or {}).get("filter") or {}).get("status", "")
        try:
            rows = conn.execute(f"SELECT name FROM products WHERE (status = '{status}') ORDER BY name")
        except sqlite3.Error:
            rows = []
        return jsonify({"results": [r[0] for r in rows]})

    @app.get("/item")
    def item():  # numeric boolean-based, errors swallowed
        try:
            rows = conn.execute(f"SELECT name FROM products WHERE rowid = {request.args.get('id', '1')}")
        except sqlite3.Error:
            rows = []
        return f"<html><body><h1>Item</h1><ul>{''.join(f'<li>{r[0]}</li>' for r in rows)}</ul></body></html>"

    @app.get("/orders")
    def orders():  # boolean-based in a page with a fresh CSRF token and clock on every response
        try:
            status = request.args.get("status", "")
            rows = conn.execute(f"SELECT name FROM products WHERE status = '{status}'")
        except sqlite3.Error:
            rows = []
        items = "".join(f"<li>{r[0]}</li>" for r in rows)
        token, clock = secrets.token_hex(16), datetime.now().time().isoformat()
        return f"<form><input name=csrf value={token}></form><p>{clock}</p><ul>{items}</ul>"

    @app.get("/touch")
    def touch():  # numeric, result ignored, error shown: no balanced form, no boolean, no delay
        try:
            row = request.args.get("id", "1")
            conn.execute(f"SELECT count(*) FROM products WHERE rowid = {row}", sleep=False)
        except sqlite3.Error as exc:
            return jsonify({"error": f"sqlite3.OperationalError: {exc}"}), 500
        return jsonify({"touched": True})

    @app.get("/stats")
    def stats():  # time-based only, through a header
        try:
            conn.execute(f"SELECT count(*) FROM products WHERE tenant = '{request.headers.get('X-Org', '')}'")
        except sqlite3.Error:
            pass
        return jsonify({"ok": True})

    return app


def safe_app() -> Flask:
    """Parameterised queries, reflections, pagination, dynamic content, input hashing: must scan clean."""
    app = Flask("safe_app")
    conn = _Db()
    counter = itertools.count()

    @app.get("/products")
    def products():
        category = request.args.get("category", "")
        rows = conn.execute("SELECT name FROM products WHERE category = ?", (category,))
        items = "".join(f"<li>{r[0]}</li>" for r in rows)
        return f"<p>Results for {html.escape(category)}</p><ul>{items}</ul>"

    @app.post("/api/search")
    def search():
        status = ((request.get_json(silent=True) or {}).get("filter") or {}).get("status", "")
        rows = conn.execute("SELECT name FROM products WHERE status LIKE '%' || ? || '%'", (status,))
        return jsonify({"query": status, "results": [r[0] for r in rows]})

    @app.get("/page")
    def page():  # pagination: different values give different data
        try:
            n = int(request.args.get("page", "1"))
        except ValueError:
            return jsonify({"error": "page must be an integer"}), 400
        return jsonify({"page": n, "items": [r[0] for r in ROWS[n - 1:n]]})

    @app.get("/lenient")
    def lenient():  # leading digits only (parseInt-style)
        digits = "".join(itertools.takewhile(str.isdigit, request.args.get("n", "1"))) or "0"
        return jsonify({"n": int(digits), "square": int(digits) ** 2})

    @app.get("/hash")
    def digest():  # any change to the value changes the page
        value = request.args.get("v", "")
        return jsonify({"sha": hashlib.sha256(value.encode()).hexdigest()[:12]})

    @app.get("/noisy")
    def noisy():  # dynamic content on every request
        q = request.args.get("q", "")
        rows = conn.execute("SELECT name FROM products WHERE name = ?", (q,))
        stamp = f"request {next(counter)} at {time.perf_counter_ns()}"
        return f"<html><p>{stamp}</p><p>{len(rows)} rows</p></html>"

    @app.get("/quotes")
    def quotes():  # rejects quotes with a message that is not a DB error
        q = request.args.get("q", "")
        if "'" in q or '"' in q:
            return jsonify({"error": "invalid characters in q"}), 400
        return jsonify({"q": q})

    return app


def _surface() -> Surface:
    return Surface([
        EntryPoint("GET", "/products", [Input("query", "category")]),
        EntryPoint("GET", "/catalog", [Input("query", "name")]),
        EntryPoint("GET", "/orders", [Input("query", "status")]),
        EntryPoint("GET", "/touch", [Input("query", "id", kind="integer")]),
        EntryPoint("POST", "/api/search", [Input("json", "filter.status")], consumes=["application/json"]),
        EntryPoint("GET", "/item", [Input("query", "id", kind="integer")]),
        EntryPoint("GET", "/stats", [Input("header", "X-Org")]),
    ])


def _scan(app: Flask, surface: Surface, seed: int = 0) -> tuple[list[Finding], list[str]]:
    spec = f"{__name__}:{app.name}()"  # importable, so the generated reproduction can rebuild the app
    result = run_scan(Target.from_app(app, spec=spec), surface, ScanOptions(checks=[CHECK], seed=seed))
    errors = [e for c in result.checks for e in c.errors]
    return [f for f in result.findings if f.check_id == CHECK], errors


def _by_input(findings: list[Finding]) -> dict[str, Finding]:
    return {f.location.input.name: f for f in findings if f.location.input}


@pytest.fixture(scope="module")
def vulnerable_findings() -> list[Finding]:
    findings, errors = _scan(vulnerable_app(), _surface())
    assert not errors
    return findings


def test_error_based_confirmed_with_dbms(vulnerable_findings: list[Finding]) -> None:
    f = _by_input(vulnerable_findings)["category"]
    assert f.confidence == "confirmed"
    assert "error-based" in f.title and "SQLite" in f.title
    assert f.location.path == "/products" and f.location.input and f.location.input.in_ == "query"
    assert f.reproduction.curl and "products?category=" in f.reproduction.curl
    assert f.cwe == 89 and f.severity == "critical"


def test_boolean_based_nested_json_or_form(vulnerable_findings: list[Finding]) -> None:
    f = _by_input(vulnerable_findings)["filter.status"]
    assert f.confidence == "confirmed"
    assert "boolean-based" in f.title and "SQLite" in f.title
    assert "OR form" in " ".join(e.content for e in f.evidence)


def test_boolean_based_numeric(vulnerable_findings: list[Finding]) -> None:
    f = next(f for f in vulnerable_findings if f.location.path == "/item")
    assert f.confidence == "confirmed" and "boolean-based" in f.title


@pytest.mark.slow
def test_time_based_through_header(vulnerable_findings: list[Finding]) -> None:
    f = _by_input(vulnerable_findings)["X-Org"]
    assert f.confidence == "confirmed" and "time-based" in f.title
    assert f.location.input and f.location.input.in_ == "header"
    assert "r.elapsed.total_seconds() >=" in f.reproduction.pytest


def test_one_finding_per_input(vulnerable_findings: list[Finding]) -> None:
    names = ["X-Org", "category", "filter.status", "id", "name", "status"]
    assert sorted({f.location.input.name for f in vulnerable_findings if f.location.input}) == names
    assert len(vulnerable_findings) == len(names) + 1  # two inputs called "id"


def test_unbalanced_error_is_only_firm(vulnerable_findings: list[Finding]) -> None:
    f = next(f for f in vulnerable_findings if f.location.path == "/touch")
    assert f.confidence == "firm" and "error-based" in f.title


def test_boolean_based_despite_dynamic_tokens(vulnerable_findings: list[Finding]) -> None:
    f = _by_input(vulnerable_findings)["status"]
    assert f.confidence == "confirmed" and "boolean-based" in f.title


def test_error_based_html_escaped_double_quotes(vulnerable_findings: list[Finding]) -> None:
    f = _by_input(vulnerable_findings)["name"]
    assert f.confidence == "confirmed" and "error-based" in f.title and "SQLite" in f.title


def test_reproduction_fails_while_flawed_and_passes_once_fixed(vulnerable_findings: list[Finding]) -> None:
    """The generated pytest reproduction fails on the flawed app and passes on the safe one."""
    for f in vulnerable_findings:
        if "time-based" in f.title:
            continue  # would sleep; its condition is elapsed_at_least
        source = f.reproduction.pytest
        assert "vulnerable_app()" in source
        assert not reproduction_passes(source)
        assert reproduction_passes(source, replace=("vulnerable_app()", "safe_app()"))


def test_safe_app_scans_clean() -> None:
    surface = Surface([
        EntryPoint("GET", "/products", [Input("query", "category")]),
        EntryPoint("POST", "/api/search", [Input("json", "filter.status")], consumes=["application/json"]),
        EntryPoint("GET", "/page", [Input("query", "page", kind="integer")]),
        EntryPoint("GET", "/lenient", [Input("query", "n", kind="integer")]),
        EntryPoint("GET", "/hash", [Input("query", "v")]),
        EntryPoint("GET", "/noisy", [Input("query", "q")]),
        EntryPoint("GET", "/quotes", [Input("query", "q")]),
    ])
    findings, errors = _scan(safe_app(), surface)
    assert not errors
    assert findings == []


def test_request_budget_per_input() -> None:
    surface = Surface([EntryPoint("GET", "/hash", [Input("query", "v")])])
    result = run_scan(Target.from_app(safe_app(), spec="tests:app"), surface, ScanOptions(checks=[CHECK]))
    assert result.checks[0].requests <= 20


@pytest.mark.parametrize(("message", "dbms"), [
    ('sqlite3.OperationalError: near "\'": syntax error', "SQLite"),
    ("(sqlite3.OperationalError) unrecognized token: \"'\"", "SQLite"),
    ('psycopg2.errors.SyntaxError: syntax error at or near "\'"', "PostgreSQL"),
    ("ERROR: unterminated quoted string at or near \"'\"", "PostgreSQL"),
    ("You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version",
     "MySQL"),
    ("pymysql.err.ProgrammingError: (1064, ...)", "MySQL"),
    ("Unclosed quotation mark after the character string ''.", "Microsoft SQL Server"),
    ("ORA-01756: quoted string not properly terminated", "Oracle"),
    ("sqlalchemy.exc.ProgrammingError: (pg8000.exceptions.DatabaseError)", "unknown (SQLAlchemy)"),
])
def test_error_signatures(message: str, dbms: str) -> None:
    from bastion.payloads import load_payloads

    signatures = load_payloads().get("sql-error-signatures")
    hits = [s["dbms"] for s in signatures if re.search(s["pattern"], message)]
    assert hits and hits[0] == dbms


@pytest.mark.parametrize("message", [
    'File "/usr/lib/python3.11/sqlite3/__init__.py", line 57, in <module>',
    "sqlite3.IntegrityError: UNIQUE constraint failed: users.email",
    "ValueError: invalid literal for int() with base 10: \"1'\"",
    "Syntax error in your search query",
])
def test_error_signatures_ignore_non_injection_errors(message: str) -> None:
    from bastion.payloads import load_payloads

    assert not any(re.search(s["pattern"], message) for s in load_payloads().get("sql-error-signatures"))


def test_fires_on_demo_flaws(scan_demo) -> None:
    result = scan_demo(flaws="sqli_error,sqli_boolean,sqli_time", checks=[CHECK])
    assert all(not c.errors for c in result.checks), [c.errors for c in result.checks]
    found = {(f.location.path, f.location.input.in_, f.location.input.name): f
             for f in result.findings if f.check_id == CHECK and f.location.input}
    assert found[("/products", "query", "category")].confidence == "confirmed"
    assert "error-based" in found[("/products", "query", "category")].title
    assert found[("/api/invoices/search", "json", "filter.status")].confidence == "confirmed"
    tenant = [f for (path, loc, name), f in found.items() if path == "/api/stats" and loc == "header"]
    assert tenant and tenant[0].confidence == "confirmed" and "time-based" in tenant[0].title


def test_silent_on_hardened_demo(scan_demo) -> None:
    result = scan_demo(flaws="none", checks=[CHECK])
    assert all(not c.errors for c in result.checks), [c.errors for c in result.checks]
    assert [f.title for f in result.findings if f.check_id == CHECK] == []


def test_fastapi_demo_error_based(scan_demo) -> None:
    result = scan_demo(flaws="sqli_error", checks=[CHECK], framework="fastapi")
    assert all(not c.errors for c in result.checks)
    assert any(f.check_id == CHECK and f.confidence == "confirmed" for f in result.findings)


def test_fastapi_hardened_demo_silent(scan_demo) -> None:
    result = scan_demo(flaws="none", checks=[CHECK], framework="fastapi")
    assert all(not c.errors for c in result.checks)
    assert [f.title for f in result.findings if f.check_id == CHECK] == []
