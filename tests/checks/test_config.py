"""config.* against small third-party-style apps (Flask, FastAPI, raw WSGI) and the demo."""

from __future__ import annotations

import sqlite3
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from fastapi import FastAPI
from flask import Flask, Response, jsonify, request
from werkzeug.debug import DebuggedApplication

from bastion.checks.config import _python_marker, control_path, version_disclosed
from bastion.engine.runner import ScanResult
from bastion.findings.model import Finding
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.exchange import Exchange, SentRequest
from bastion.testing import reproduction_passes as run_reproduction
from bastion.testing import scan_app

REPRO_MODULE = "bastion_cfg_repro_app"
DEBUG, STACK, BANNER, FILES = ("config.debug-exposed", "config.stack-trace", "config.version-banner",
                               "config.file-exposure")


def _scan(app: object, surface: Surface, checks: list[str]) -> ScanResult:
    result = scan_app(app, surface, checks=checks,
                      spec=f"{REPRO_MODULE}:app", base_url="https://app.example.test")
    return result


def reproduction_passes(finding: Finding, app: object) -> bool:
    """Run the finding's generated pytest test against `app`: True when it passes (flaw gone)."""
    return run_reproduction(finding.reproduction.pytest, app=app, module=REPRO_MODULE)


Answer = tuple[int, list[tuple[str, str]], bytes]


def _wsgi(routes: dict[str, Answer], default: Callable[[str], Answer]) -> Callable[..., Iterable[bytes]]:
    """A raw WSGI app serving fixed bodies by path, `default(path)` for anything else."""
    reasons = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        status, headers, body = routes.get(path) or default(path)
        start_response(f"{status} {reasons.get(status, 'X')}", headers)
        return [body]

    return app


def _not_found(_path: str) -> Answer:
    return 404, [("Content-Type", "text/html")], b"<html><body>Not Found</body></html>"


TEXT = [("Content-Type", "text/plain")]
ENV = b"DATABASE_URL=postgres://app:hunter2@db/app\nSECRET_KEY=s3cr3t-value\nDEBUG=false\n"
GIT_CONFIG = b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
SOURCE = b"import os\n\nfrom flask import Flask\n\napp = Flask(__name__)\n\n\ndef main():\n    pass\n"
LISTING = (b"<html><head><title>Index of /static/</title></head><body><h1>Index of /static/</h1>"
           b'<a href="app.css">app.css</a></body></html>')
EXPOSED = {"/.env": (200, TEXT, ENV), "/.git/config": (200, TEXT, GIT_CONFIG),
           "/main.py.bak": (200, [("Content-Type", "application/octet-stream")], SOURCE),
           "/static/": (200, [("Content-Type", "text/html")], LISTING)}


# --- config.file-exposure ------------------------------------------------------------------------

def test_exposed_files_are_confirmed_by_content_and_controls() -> None:
    app = _wsgi(EXPOSED, _not_found)
    result = _scan(app, Surface([EntryPoint("GET", "/")]), [FILES])
    paths = {f.location.path: f for f in result.findings}
    assert set(paths) == {"/.env", "/.git/config", "/main.py.bak", "/static/"}
    assert all(f.confidence == "confirmed" for f in result.findings)
    assert paths["/static/"].severity == "medium" and paths["/.env"].severity == "high"
    # The report shows the shape of the .env file, not its secrets.
    env = paths["/.env"]
    dumped = env.model_dump_json()
    assert "hunter2" not in dumped and "s3cr3t-value" not in dumped
    assert "DATABASE_URL=" in dumped
    # Each reproduction fails on the vulnerable app and passes once the file is gone.
    fixed = _wsgi({}, _not_found)
    for f in result.findings:
        assert not reproduction_passes(f, app), f.location.path
        assert reproduction_passes(f, fixed), f.location.path


def test_spa_catch_all_is_silent() -> None:
    """A single-page app answers 200 with its index page for every path: no file is exposed."""
    index = b"<!doctype html><html><head><title>App</title></head><body><div id=root></div></body></html>"
    app = _wsgi({}, lambda _p: (200, [("Content-Type", "text/html")], index))
    assert _scan(app, Surface([EntryPoint("GET", "/")]), [FILES]).findings == []


def test_catch_all_returning_file_like_content_is_silent() -> None:
    """Even env-looking or source-looking text is no proof when every random path gets the same."""
    app = _wsgi({}, lambda _p: (200, TEXT, ENV + SOURCE))
    assert _scan(app, Surface([EntryPoint("GET", "/")]), [FILES]).findings == []


def test_near_miss_bodies_are_not_files() -> None:
    """Real 200 answers at those paths, but not the files: HTML pages, JSON, one KEY=VALUE line."""
    routes = {
        "/.env": (200, TEXT, b"ONLY_ONE=line\n"),
        "/.git/config": (200, [("Content-Type", "text/html")], b"<html><body>[core] docs</body></html>"),
        "/app.py.bak": (200, [("Content-Type", "application/json")], b'{"backup": "disabled"}'),
        "/static/": (200, [("Content-Type", "text/html")], b"<html><body>Static files</body></html>"),
    }
    assert _scan(_wsgi(routes, _not_found), Surface([EntryPoint("GET", "/")]), [FILES]).findings == []


def test_files_under_a_served_directory_from_the_surface() -> None:
    routes = {"/downloads/.env": (200, TEXT, ENV)}
    served = EntryPoint("GET", "/downloads/{filename}", [Input("path", "filename", required=True)])
    surface = Surface([served])
    result = _scan(_wsgi(routes, _not_found), surface, [FILES])
    assert [f.location.path for f in result.findings] == ["/downloads/.env"]


@pytest.mark.parametrize(("path", "shape"), [
    ("/.env", "/.bstX"), ("/.env.local", "/.bstX.local"), ("/.git/config", "/.git/bstX"),
    ("/app.py.bak", "/bstX.py.bak"), ("/settings.py~", "/bstX.py~"), ("/backup/", "/bstX/"),
    ("/files/.env", "/files/.bstX"), ("/.git/HEAD", "/.git/bstX"),
])
def test_control_paths_keep_the_shape(path: str, shape: str) -> None:
    assert control_path(path, "bstX") == shape


# --- config.version-banner -----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "shown"), [
    ("Werkzeug/3.1.3 Python/3.11.7", "Werkzeug/3.1.3 Python/3.11.7"),
    ("nginx/1.25.3", "nginx/1.25.3"),
    ("Microsoft-IIS/10.0", "Microsoft-IIS/10.0"),
    ("nginx", None), ("uvicorn", None), ("gunicorn", None), ("Express", None), ("cloudflare", None),
    ("0.012345", None), ("1.1 vegur", None),
])
def test_version_disclosed(value: str, shown: str | None) -> None:
    assert version_disclosed(value) == shown


def test_version_only_headers() -> None:
    assert version_disclosed("4.0.30319", version_only=True) == "4.0.30319"
    assert version_disclosed("enabled", version_only=True) is None


def banner_app(server: str, powered: str | None = None) -> Flask:
    app = Flask("banner")

    @app.get("/")
    def home() -> str:
        return "ok"

    @app.after_request
    def banner(resp: Response) -> Response:
        resp.headers["Server"] = server
        if powered:
            resp.headers["X-Powered-By"] = powered
        return resp

    return app


def test_versions_are_reported_once_per_header() -> None:
    app = banner_app("Werkzeug/3.1.3 Python/3.11.7", "PHP/8.1.2")
    result = _scan(app, Surface([EntryPoint("GET", "/"), EntryPoint("GET", "/other")]), [BANNER])
    by_header = {f.location.input.name: f for f in result.findings}  # type: ignore[union-attr]
    assert set(by_header) == {"Server", "X-Powered-By"}
    assert all(f.severity == "low" and f.confidence == "confirmed" for f in result.findings)
    assert "Werkzeug/3.1.3" in by_header["Server"].title
    assert reproduction_passes(by_header["Server"], banner_app("uvicorn"))
    assert not reproduction_passes(by_header["Server"], app)


def test_bare_product_names_are_not_reported() -> None:
    assert _scan(banner_app("uvicorn", "Express"), Surface([EntryPoint("GET", "/")]), [BANNER]).findings == []


# --- config.stack-trace --------------------------------------------------------------------------

def leaky_app() -> Flask:
    """Bad input raises; the error handler hands the traceback (or the DB error) to the client."""
    app = Flask("leaky")
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("CREATE TABLE items (id INTEGER, name TEXT)")

    @app.get("/items")
    def items() -> Response:
        page = int(request.args.get("page", "1"))
        return jsonify({"page": page})

    @app.get("/lookup")
    def lookup() -> Response:
        name = request.args.get("name", "")
        rows = db.execute(f"SELECT id FROM items WHERE name = '{name}'").fetchall()  # noqa: S608
        return jsonify(rows)

    @app.post("/api/orders")
    def orders() -> Response:
        import json
        doc = json.loads(request.get_data())
        return jsonify({"ok": bool(doc)})

    @app.get("/safe")
    def safe() -> Response:
        return jsonify({"q": request.args.get("q", "")})

    @app.errorhandler(Exception)
    def leak(exc: Exception) -> tuple[str, int]:
        return traceback.format_exc(), 500

    return app


def hardened_errors_app() -> Flask:
    """Same handlers, generic error page: nothing leaks."""
    app = leaky_app()
    app.error_handler_spec[None].clear()  # drop the leaking handler

    @app.errorhandler(Exception)
    def generic(exc: Exception) -> tuple[str, int]:
        return "<html><body><h1>Something went wrong</h1><p>Error id 42</p></body></html>", 500

    return app


def leaky_surface() -> Surface:
    return Surface([
        EntryPoint("GET", "/items", [Input("query", "page", kind="integer")]),
        EntryPoint("GET", "/lookup", [Input("query", "name")]),
        EntryPoint("POST", "/api/orders", [Input("json", "sku")]),
        EntryPoint("GET", "/safe", [Input("query", "q")]),
    ])


def test_stack_traces_and_db_errors_are_confirmed() -> None:
    app = leaky_app()
    result = _scan(app, leaky_surface(), [STACK])
    by_path = {f.location.path: f for f in result.findings}
    assert set(by_path) == {"/items", "/lookup", "/api/orders"}
    assert by_path["/items"].location.input.name == "page"  # type: ignore[union-attr]
    assert "wrong type" in by_path["/items"].title
    assert by_path["/api/orders"].location.input is None and "broken JSON" in by_path["/api/orders"].title
    assert all(f.confidence == "confirmed" for f in result.findings)
    for f in result.findings:
        assert not reproduction_passes(f, app)
        assert reproduction_passes(f, hardened_errors_app())


def test_generic_error_pages_are_silent() -> None:
    assert _scan(hardened_errors_app(), leaky_surface(), [STACK]).findings == []


def test_signature_already_in_the_baseline_is_not_a_leak() -> None:
    """A tutorial page that always shows a traceback example, whatever the input."""
    app = Flask("tutorial")

    @app.get("/docs")
    def docs() -> str:
        _ = request.args.get("page")
        return '<pre>Traceback (most recent call last):\n  File "demo.py", line 1, in &lt;module&gt;</pre>'

    surface = Surface([EntryPoint("GET", "/docs", [Input("query", "page", kind="integer")])])
    assert _scan(app, surface, [STACK]).findings == []


def test_fastapi_validation_errors_are_not_leaks() -> None:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int, limit: int = 10) -> dict[str, int]:
        return {"id": item_id, "limit": limit}

    surface = Surface([EntryPoint("GET", "/items/{item_id}", [
        Input("path", "item_id", kind="integer", required=True), Input("query", "limit", kind="integer")])])
    assert _scan(app, surface, [STACK]).findings == []


def test_invalid_utf8_in_the_query_reaches_the_app() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from urllib.parse import unquote_to_bytes
        raw = unquote_to_bytes(environ["QUERY_STRING"])
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b'Traceback (most recent call last):\n  File "/srv/app.py", line 9, in app\n'
                    b"UnicodeDecodeError: invalid start byte\n"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    surface = Surface([EntryPoint("GET", "/search", [Input("query", "q")])])
    (f,) = _scan(app, surface, [STACK]).findings
    assert "invalid UTF-8" in f.title and f.location.input.name == "q"  # type: ignore[union-attr]


# --- config.debug-exposed ------------------------------------------------------------------------

def _plain_flask(debug: bool = False) -> Flask:
    app = Flask("plain")
    app.debug = debug  # what `app.run(debug=True)` does: exceptions reach the debugger

    @app.get("/")
    def home() -> str:
        return "<html><body>home</body></html>"

    @app.get("/boom")
    def boom() -> str:
        return str(int(request.args.get("n", "1")))

    return app


def test_werkzeug_console_is_confirmed_critical() -> None:
    app = DebuggedApplication(_plain_flask(debug=True), evalex=True)
    app.trusted_hosts.append(".example.test")  # Werkzeug >= 3.0.3 serves the console to trusted hosts only
    result = _scan(app, Surface([EntryPoint("GET", "/")]), [DEBUG])
    (f,) = result.findings
    assert f.location.path == "/console" and f.confidence == "confirmed" and f.severity == "critical"
    assert not reproduction_passes(f, app)
    assert reproduction_passes(f, _plain_flask())


@pytest.mark.parametrize("evalex", [True, False])
def test_werkzeug_traceback_page_is_found_through_an_error(evalex: bool) -> None:
    # Untrusted host (or evalex off): no /console, but errors still render the debugger's page.
    app = DebuggedApplication(_plain_flask(debug=True), evalex=evalex)
    surface = Surface([EntryPoint("GET", "/boom", [Input("query", "n", kind="integer")])])
    (f,) = _scan(app, surface, [DEBUG]).findings
    assert f.location.path == "/boom" and f.location.input.name == "n"  # type: ignore[union-attr]
    assert f.confidence == "confirmed"


def test_django_debug_404_page() -> None:
    page = (b"<html><body><h1>Page not found (404)</h1><p>You're seeing this error because you have "
            b"<code>DEBUG = True</code> in your Django settings file.</p></body></html>")
    app = _wsgi({"/": (200, [("Content-Type", "text/html")], b"<html>home</html>")},
                lambda _p: (404, [("Content-Type", "text/html")], page))
    (f,) = _scan(app, Surface([EntryPoint("GET", "/")]), [DEBUG]).findings
    assert "Django" in f.title and f.confidence == "confirmed"


def test_starlette_debug_traceback() -> None:
    app = FastAPI(debug=True)

    @app.get("/calc")
    def calc(n: str = "1") -> dict[str, int]:
        return {"n": int(n)}

    surface = Surface([EntryPoint("GET", "/calc", [Input("query", "n", kind="integer")])])
    (f,) = _scan(app, surface, [DEBUG]).findings
    assert "Starlette" in f.title and f.confidence == "confirmed"
    # The page is HTML for browsers only: the reproduction must send the same Accept header.
    assert "text/html" in f.reproduction.pytest and "text/html" in f.reproduction.curl


def test_debug_check_is_silent_without_debug() -> None:
    app = FastAPI()

    @app.get("/calc")
    def calc(n: str = "1") -> dict[str, int]:
        return {"n": int(n)}

    surface = Surface([EntryPoint("GET", "/calc", [Input("query", "n", kind="integer")])])
    assert _scan(app, surface, [DEBUG]).findings == []
    assert _scan(_plain_flask(), Surface([EntryPoint("GET", "/boom", [Input("query", "n", kind="integer")])]),
                 [DEBUG]).findings == []


# --- the demo (oracle) ---------------------------------------------------------------------------

CONFIG_CHECKS = [DEBUG, STACK, BANNER, FILES]


def test_demo_debug_console(scan_demo: Any) -> None:
    result = scan_demo(flaws="debug_console", checks=CONFIG_CHECKS)
    (f,) = [f for f in result.findings if f.check_id == DEBUG]
    assert f.location.path == "/console" and f.confidence == "confirmed" and f.severity == "critical"


def test_demo_verbose_errors(scan_demo: Any) -> None:
    result = scan_demo(flaws="verbose_errors", checks=CONFIG_CHECKS)
    found = {(f.location.path, f.location.input.name if f.location.input else None): f
             for f in result.findings if f.check_id == STACK}
    assert ("/invoices", "page") in found
    assert all(f.confidence == "confirmed" for f in found.values())
    assert {f.check_id for f in result.findings} == {STACK}


def test_demo_version_banner(scan_demo: Any) -> None:
    result = scan_demo(flaws="version_banner", checks=CONFIG_CHECKS)
    headers = {f.location.input.name for f in result.findings if f.check_id == BANNER}  # type: ignore[union-attr]
    assert headers == {"Server", "X-Powered-By"}
    assert {f.check_id for f in result.findings} == {BANNER}


def test_demo_version_banner_fastapi(scan_demo: Any) -> None:
    result = scan_demo(flaws="version_banner", checks=CONFIG_CHECKS, framework="fastapi")
    assert {f.location.input.name for f in result.findings} == {"Server", "X-Powered-By"}  # type: ignore[union-attr]


def test_demo_exposed_files(scan_demo: Any) -> None:
    result = scan_demo(flaws="exposed_files", checks=CONFIG_CHECKS)
    paths = {f.location.path for f in result.findings if f.check_id == FILES}
    assert {"/.env", "/.git/config", "/.git/HEAD", "/app.py.bak", "/settings.py~", "/backup/"} <= paths
    assert all(f.confidence == "confirmed" for f in result.findings)
    assert {f.check_id for f in result.findings} == {FILES}


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_hardened_twin_is_clean(scan_demo: Any, framework: str) -> None:
    result = scan_demo(flaws="none", checks=CONFIG_CHECKS, framework=framework)
    assert result.findings == []
    assert all(not c.errors for c in result.checks)


# --- hostile bodies ------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b"(" * 100_000, b"1+" * 200_000 + b"1", b"\xff\xfe\x00" * 1000, b"def f(:\n", b"x = 1\n" * 5_000,
], ids=["nested-parens", "long-expression", "binary", "syntax-error", "no-definitions"])
def test_source_detection_survives_hostile_bodies(body: bytes) -> None:
    ex = Exchange(SentRequest("GET", "https://x/app.py.bak", []), 200, TEXT, body)
    assert _python_marker(ex) is None


def test_root_directory_listing() -> None:
    listing = (b"<!DOCTYPE HTML><html><head><title>Directory listing for /</title></head><body>"
               b'<h1>Directory listing for /</h1><ul><li><a href="app.py">app.py</a></li></ul>'
               b"</body></html>")
    app = _wsgi({"/": (200, [("Content-Type", "text/html")], listing)}, _not_found)
    (f,) = _scan(app, Surface([EntryPoint("GET", "/")]), [FILES]).findings
    assert f.location.path == "/" and "listing" in f.title
