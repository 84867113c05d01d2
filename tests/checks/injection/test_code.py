"""injection.code: fires when input runs as Python, silent on safe arithmetic evaluators."""

from __future__ import annotations

import ast
import operator
import re
import traceback

import pytest
from flask import Flask, jsonify, request

from bastion.engine import ScanOptions, run_scan
from bastion.findings.model import Finding
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target
from bastion.testing import findings_of, reproduction_passes, scan_app

CHECK = "injection.code"
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _calculate(expr: str) -> float:
    """A safe arithmetic evaluator: numbers and + - * / only."""
    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError("unsupported expression")
    return ev(ast.parse(expr, mode="eval"))


def greet(name: str) -> str:
    return f"Hello {name}"


def vulnerable_app() -> Flask:
    app = Flask("vulnerable_app")

    @app.get("/calc")
    def calc():  # bare expression
        try:
            return jsonify({"result": str(eval(request.args.get("expr", "1")))})
        except Exception:
            return jsonify({"error": "bad expression"}), 400

    @app.post("/greet")
    def greeting():  # inside a single-quoted string literal
        try:
            source = "greet('" + request.form.get("name", "") + "')"
            return f"<p>{eval(source)}</p>"
        except Exception:
            return "<p>error</p>", 400

    @app.post("/run")
    def run():  # exec without builtins: no output, tracebacks shown
        try:
            exec(request.form.get("code", "pass"), {"__builtins__": {}})
            return "ok"
        except Exception:
            return f"<pre>{traceback.format_exc()}</pre>", 500

    @app.post("/hooks")
    def hooks():  # exec: no output, errors swallowed
        try:
            exec(request.form.get("source", "pass"), {})
        except Exception:
            pass
        return jsonify({"saved": True})

    return app


def safe_app() -> Flask:
    app = Flask("safe_app")

    @app.get("/calc")
    def calc():  # ast-based: computes arithmetic, rejects everything else
        try:
            return jsonify({"result": str(_calculate(request.args.get("expr", "1")))})
        except (ValueError, SyntaxError, ZeroDivisionError) as exc:
            return jsonify({"error": f"invalid expression: {exc}"}), 400

    @app.post("/greet")
    def greeting():  # slug of the value, echoed
        return f"<p>{greet(re.sub(r'[^a-z0-9]+', '', request.form.get('name', '').lower()))}</p>"

    @app.post("/hooks")
    def hooks():  # stores the source, never runs it
        return jsonify({"saved": True, "length": len(request.form.get("source", ""))})

    @app.post("/run")
    def run():  # literal_eval, error text shown
        try:
            return jsonify({"value": repr(ast.literal_eval(request.form.get("code", "1")))})
        except (ValueError, SyntaxError) as exc:
            return jsonify({"error": str(exc)}), 400

    return app


def _surface() -> Surface:
    form = ["application/x-www-form-urlencoded"]
    return Surface([
        EntryPoint("GET", "/calc", [Input("query", "expr")]),
        EntryPoint("POST", "/greet", [Input("form", "name")], consumes=form),
        EntryPoint("POST", "/run", [Input("form", "code")], consumes=form),
        EntryPoint("POST", "/hooks", [Input("form", "source")], consumes=form),
    ])


def _scan(app: Flask) -> list[Finding]:
    result = scan_app(app, _surface(), checks=[CHECK], spec=f"{__name__}:{app.name}()")
    return [f for f in result.findings if f.check_id == CHECK]


@pytest.fixture(scope="module")
def findings() -> dict[str, Finding]:
    return {f.location.input.name: f for f in _scan(vulnerable_app()) if f.location.input}


def test_bare_eval(findings: dict[str, Finding]) -> None:
    f = findings["expr"]
    assert f.confidence == "confirmed" and f.severity == "critical" and f.cwe == 94
    assert f.location.path == "/calc" and f.location.input and f.location.input.in_ == "query"


def test_eval_inside_string_literal(findings: dict[str, Finding]) -> None:
    f = findings["name"]
    assert f.confidence == "confirmed" and "single-quoted" in f.title


def test_syntax_error_is_only_a_hint(findings: dict[str, Finding]) -> None:
    f = findings["code"]
    assert f.confidence == "tentative" and "SyntaxError" in f.title


@pytest.mark.slow
def test_blind_exec_time_based(findings: dict[str, Finding]) -> None:
    f = findings["source"]
    assert f.confidence == "confirmed" and "time-based" in f.title
    assert "r.elapsed.total_seconds() >=" in f.reproduction.pytest


def test_reproduction_fails_while_flawed_and_passes_once_fixed(findings: dict[str, Finding]) -> None:
    for name in ("expr", "name", "code"):
        source = findings[name].reproduction.pytest
        assert not reproduction_passes(source)
        assert reproduction_passes(source, replace=("vulnerable_app()", "safe_app()"))


def test_safe_evaluators_scan_clean() -> None:
    assert _scan(safe_app()) == []


def test_fires_on_demo_flaw(scan_demo) -> None:
    result = scan_demo(flaws="code_injection", checks=[CHECK])
    hits = findings_of(result, CHECK)
    assert [(f.location.path, f.location.input.name, f.confidence) for f in hits if f.location.input] == [
        ("/tools/calc", "expr", "confirmed")]


def test_silent_on_hardened_demo(scan_demo) -> None:
    result = scan_demo(flaws="none", checks=[CHECK])
    assert all(not c.errors for c in result.checks), [c.errors for c in result.checks]
    assert [f.title for f in result.findings if f.check_id == CHECK] == []


def test_fastapi_demo(scan_demo) -> None:
    flawed = scan_demo(flaws="code_injection", checks=[CHECK], framework="fastapi")
    assert all(not c.errors for c in flawed.checks)
    assert any(f.check_id == CHECK and f.confidence == "confirmed" and f.location.path == "/tools/calc"
               for f in flawed.findings)
    hardened = scan_demo(flaws="none", checks=[CHECK], framework="fastapi")
    assert [f.title for f in hardened.findings if f.check_id == CHECK] == []


def test_request_budget_per_input() -> None:
    result = run_scan(Target.from_app(safe_app(), spec=f"{__name__}:safe_app()"), _surface(),
                      ScanOptions(checks=[CHECK]))
    assert result.checks[0].requests <= 7 * len(result.checks[0].units)
