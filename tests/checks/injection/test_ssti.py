"""injection.ssti: fires when input is compiled as a template, silent when it is passed to one."""

from __future__ import annotations

import re

import jinja2
import pytest
from flask import Flask, jsonify, render_template_string, request

from bastion.engine import ScanOptions, run_scan
from bastion.findings.model import Finding
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target
from bastion.testing import findings_of, reproduction_passes, scan_app

CHECK = "injection.ssti"


def _homegrown_render(template: str) -> str:
    """A hand-rolled `${expr}` template engine that evaluates Python expressions."""
    return re.sub(r"\$\{(.+?)\}", lambda m: str(eval(m.group(1), {"__builtins__": {}})), template)


def vulnerable_app() -> Flask:
    app = Flask("vulnerable_app")

    @app.get("/hello")
    def hello():  # Jinja2 via Flask, query string
        return render_template_string("<p>Hello " + request.args.get("name", "guest") + "</p>")

    @app.get("/banner")
    def banner():  # Jinja2 environment, header-borne
        env = jinja2.Environment(autoescape=True)
        return env.from_string("<h1>" + request.headers.get("X-Banner", "Welcome") + "</h1>").render()

    @app.post("/api/notify")
    def notify():  # home-grown ${} engine, JSON body
        subject = (request.get_json(silent=True) or {}).get("subject", "hi")
        try:
            return jsonify({"preview": _homegrown_render("Subject: " + subject)})
        except Exception:
            return jsonify({"error": "template error"}), 400

    return app


def safe_app() -> Flask:
    app = Flask("safe_app")

    @app.get("/hello")
    def hello():  # constant template, value passed in (escaped reflection of the literal)
        return render_template_string("<p>Hello {{ name }}</p>", name=request.args.get("name", "guest"))

    @app.get("/banner")
    def banner():  # raw echo of the literal
        return "<h1>" + request.headers.get("X-Banner", "Welcome").replace("<", "&lt;") + "</h1>"

    @app.post("/api/notify")
    def notify():  # a lenient calculator: strips everything but arithmetic, then computes
        subject = (request.get_json(silent=True) or {}).get("subject", "1")
        expr = re.sub(r"[^0-9*+\-/]", "", subject)
        m = re.fullmatch(r"(\d+)\*(\d+)", expr)
        return jsonify({"result": int(m.group(1)) * int(m.group(2)) if m else None})

    return app


def fixed_app() -> Flask:
    """The vulnerable app done right: user data goes into templates as variables."""
    app = Flask("fixed_app")

    @app.get("/hello")
    def hello():
        return render_template_string("<p>Hello {{ name }}</p>", name=request.args.get("name", "guest"))

    @app.get("/banner")
    def banner():
        env = jinja2.Environment(autoescape=True)
        banner = request.headers.get("X-Banner", "Welcome")
        return env.from_string("<h1>{{ banner }}</h1>").render(banner=banner)

    @app.post("/api/notify")
    def notify():
        return jsonify({"preview": "Subject: " + (request.get_json(silent=True) or {}).get("subject", "hi")})

    return app


def _surface() -> Surface:
    return Surface([
        EntryPoint("GET", "/hello", [Input("query", "name")]),
        EntryPoint("GET", "/banner", [Input("header", "X-Banner")]),
        EntryPoint("POST", "/api/notify", [Input("json", "subject")], consumes=["application/json"]),
    ])


def _scan(app: Flask) -> list[Finding]:
    result = scan_app(app, _surface(), checks=[CHECK], spec=f"{__name__}:{app.name}()")
    return [f for f in result.findings if f.check_id == CHECK]


@pytest.fixture(scope="module")
def findings() -> dict[str, Finding]:
    return {f.location.input.name: f for f in _scan(vulnerable_app()) if f.location.input}


def test_jinja2_in_query(findings: dict[str, Finding]) -> None:
    f = findings["name"]
    assert f.confidence == "confirmed" and "Jinja2" in f.title and f.severity == "high"
    assert f.location.path == "/hello" and f.location.input and f.location.input.in_ == "query"


def test_jinja2_in_header(findings: dict[str, Finding]) -> None:
    f = findings["X-Banner"]
    assert f.confidence == "confirmed" and "Jinja2" in f.title
    assert f.location.input and f.location.input.in_ == "header"


def test_dollar_brace_engine_in_json(findings: dict[str, Finding]) -> None:
    f = findings["subject"]
    assert f.confidence == "confirmed" and "Python-expression engine" in f.title


def test_reproduction_fails_while_flawed_and_passes_once_fixed(findings: dict[str, Finding]) -> None:
    for name in ("name", "X-Banner", "subject"):
        source = findings[name].reproduction.pytest
        assert not reproduction_passes(source)
        assert reproduction_passes(source, replace=("vulnerable_app()", "fixed_app()"))


def test_escaped_echo_and_calculators_scan_clean() -> None:
    assert _scan(safe_app()) == []


def test_fires_on_demo_cookie_flaw(scan_demo) -> None:
    result = scan_demo(flaws="ssti", checks=[CHECK])
    hits = findings_of(result, CHECK)
    located = [(f.location.input.in_, f.confidence) for f in hits if f.location.input]
    assert located == [("cookie", "confirmed")]
    assert "Jinja2" in hits[0].title


def test_silent_on_hardened_demo(scan_demo) -> None:
    result = scan_demo(flaws="none", checks=[CHECK])
    assert all(not c.errors for c in result.checks), [c.errors for c in result.checks]
    assert [f.title for f in result.findings if f.check_id == CHECK] == []


def test_fastapi_demo(scan_demo) -> None:
    flawed = scan_demo(flaws="ssti", checks=[CHECK], framework="fastapi")
    assert all(not c.errors for c in flawed.checks)
    assert any(f.check_id == CHECK and f.confidence == "confirmed" for f in flawed.findings)
    hardened = scan_demo(flaws="none", checks=[CHECK], framework="fastapi")
    assert [f.title for f in hardened.findings if f.check_id == CHECK] == []


def test_request_budget_per_input() -> None:
    result = run_scan(Target.from_app(safe_app(), spec=f"{__name__}:safe_app()"), _surface(),
                      ScanOptions(checks=[CHECK]))
    assert result.checks[0].requests <= 8 * len(result.checks[0].units)
