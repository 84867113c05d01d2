"""injection.xss-reflected and injection.xss-stored against small third-party-style apps and the demo."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from flask import Flask, Response, request
from markupsafe import escape

from bastion.checks.injection.xss import _canary_in_code, find_execution, parse_html, reflection_contexts
from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target

REFLECTED = "injection.xss-reflected"
STORED = "injection.xss-stored"


def _scan(app: object, surface: Surface, checks: list[str], target: Target | None = None) -> ScanResult:
    result = run_scan(target or Target.from_app(app, spec="tests:app"), surface, ScanOptions(checks=checks))
    assert all(not c.errors for c in result.checks), [c.errors for c in result.checks]
    return result


def _q(path: str, name: str = "q", location: str = "query") -> EntryPoint:
    return EntryPoint("GET", path, [Input(location, name)])  # type: ignore[arg-type]


# --- reflected: vulnerable app -------------------------------------------------------------------

def vulnerable_app() -> Flask:
    app = Flask("xss_vulnerable")

    @app.get("/search")
    def search() -> str:
        return f"<html><body><h1>Results for {request.args.get('q', '')}</h1></body></html>"

    @app.get("/attr")
    def attr() -> str:
        return f'<html><body><input name="v" value="{request.args.get("v", "")}"></body></html>'

    @app.get("/js")
    def js() -> str:
        return f"<html><body><script>var s = '{request.args.get('s', '')}';</script></body></html>"

    @app.get("/link")
    def link() -> str:
        # Escaped, but any scheme allowed: javascript: URLs execute on click.
        return f'<html><body><a href="{escape(request.args.get("u", ""))}">back</a></body></html>'

    @app.post("/upload")
    def upload() -> str:
        f = request.files["doc"]
        return f"<html><body>Uploaded {f.filename}</body></html>"

    @app.get("/lang")
    def lang() -> str:
        return f"<html><body>Language: {request.headers.get('X-Lang', 'en')}</body></html>"

    @app.get("/hello")
    def hello() -> str:
        # No Content-Type header at all, body sniffed as HTML by browsers.
        resp = Response(f"<html><body>Hello {request.cookies.get('name', '')}</body></html>")
        del resp.headers["Content-Type"]
        return resp  # type: ignore[return-value]

    return app


def vulnerable_surface() -> Surface:
    return Surface([
        _q("/search"), _q("/attr", "v"), _q("/js", "s"), _q("/link", "u"),
        EntryPoint("POST", "/upload", [Input("multipart", "doc", kind="file")]),
        _q("/lang", "X-Lang", location="header"), _q("/hello", "name", location="cookie"),
    ])


@pytest.fixture(scope="module")
def vulnerable_result() -> ScanResult:
    return _scan(vulnerable_app(), vulnerable_surface(), [REFLECTED])


@pytest.mark.parametrize(("path", "where", "name", "context"), [
    ("/search", "query", "q", "HTML text"),
    ("/attr", "query", "v", "HTML attribute"),
    ("/js", "query", "s", "script"),
    ("/link", "query", "u", "URL attribute"),
    ("/upload", "multipart", "doc", "HTML text"),
    ("/lang", "header", "X-Lang", "HTML text"),
    ("/hello", "cookie", "name", "HTML text"),
])
def test_reflected_fires_in_every_context(vulnerable_result: ScanResult, path: str, where: str, name: str,
                                          context: str) -> None:
    hits = [f for f in vulnerable_result.findings if f.location.path == path]
    assert len(hits) == 1, [f.title for f in vulnerable_result.findings]
    f = hits[0]
    assert f.check_id == REFLECTED and f.confidence == "confirmed" and f.severity == "high" and f.cwe == 79
    assert f.location.input is not None and (f.location.input.in_, f.location.input.name) == (where, name)
    assert context in f.title
    assert f.reproduction.curl and "r.text" in f.reproduction.pytest
    assert f.evidence and f.evidence[0].kind == "request"


# --- reflected: safe app and near misses ---------------------------------------------------------

def safe_app() -> Flask:
    app = Flask("xss_safe")

    @app.get("/search")
    def search() -> str:
        return f"<html><body><h1>Results for {escape(request.args.get('q', ''))}</h1></body></html>"

    @app.get("/attr")
    def attr() -> str:
        return f'<html><body><input value="{escape(request.args.get("v", ""))}"></body></html>'

    @app.get("/js")
    def js() -> str:
        value = json.dumps(request.args.get("s", "")).replace("<", "\\u003c").replace(">", "\\u003e")
        return f"<html><body><script>var s = {value};</script></body></html>"

    @app.get("/js-escaped-quote")
    def js_quote() -> str:
        s = request.args.get("s", "").replace("\\", "\\\\").replace("'", "\\'").replace("<", "\\x3c")
        return f"<html><body><script>var s = '{s}';</script></body></html>"

    @app.get("/link")
    def link() -> str:
        u = request.args.get("u", "")
        u = u if u.startswith(("http://", "https://", "/")) else "/"
        return f'<html><body><a href="{escape(u)}">back</a></body></html>'

    @app.get("/api/echo")
    def api_echo() -> Response:
        return Response(json.dumps({"q": request.args.get("q", "")}), mimetype="application/json")

    @app.get("/plain")
    def plain() -> Response:
        return Response(f"you said {request.args.get('q', '')}", mimetype="text/plain")

    @app.get("/textarea")
    def textarea() -> str:
        return f"<html><body><textarea>{escape(request.args.get('q', ''))}</textarea></body></html>"

    @app.get("/data-block")
    def data_block() -> str:
        # A JSON data block is not executed, even when the value sits outside a string.
        q = "".join(ch for ch in request.args.get("q", "") if ch.isalnum())
        return f'<html><body><script type="application/json">{{"n": {q}}}</script></body></html>'

    @app.post("/upload")
    def upload() -> str:
        return f"<html><body>Uploaded {escape(request.files['doc'].filename or '')}</body></html>"

    @app.get("/export")
    def export() -> Response:
        # Raw HTML, but served as a download: the browser never renders it.
        return Response(f"<p>{request.args.get('q', '')}</p>", mimetype="text/html",
                        headers={"Content-Disposition": "attachment; filename=export.html"})

    @app.get("/go")
    def go() -> Response:
        # A redirect body is never rendered by a browser.
        return Response(f"<a href='{request.args.get('q', '')}'>moved</a>", status=302,
                        headers={"Location": "/"}, mimetype="text/html")

    return app


def test_reflected_silent_on_safe_app_and_near_misses() -> None:
    surface = Surface([
        _q("/search"), _q("/attr", "v"), _q("/js", "s"), _q("/js-escaped-quote", "s"), _q("/link", "u"),
        _q("/api/echo"), _q("/plain"), _q("/textarea"), _q("/data-block"), _q("/go"), _q("/export"),
        EntryPoint("POST", "/upload", [Input("multipart", "doc", kind="file")]),
    ])
    result = _scan(safe_app(), surface, [REFLECTED])
    assert result.findings == []
    # It did look: every input got at least its probe.
    assert result.checks[0].requests >= len(surface.entry_points)


def test_reflected_on_an_asgi_app() -> None:
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    api = FastAPI()

    @api.get("/greet", response_class=HTMLResponse)
    async def greet(name: str = "") -> str:
        return f"<html><body><p title='{name}'>hi</p></body></html>"

    @api.get("/api/greet")
    async def api_greet(name: str = "") -> dict[str, str]:
        return {"greeting": f"<b>{name}</b>"}

    surface = Surface([_q("/greet", "name"), _q("/api/greet", "name")])
    result = _scan(api, surface, [REFLECTED])
    assert [(f.location.path, "HTML attribute" in f.title) for f in result.findings] == [("/greet", True)]


# --- parser-level behaviour ----------------------------------------------------------------------

def test_contexts_and_executions_follow_the_browser_parse() -> None:
    c = "bstabc123"
    page = (f'<p>{c}</p><input value="{c}"><a href="{c}">x</a><script>var a="{c}";</script>'
            f"<textarea>{c}</textarea><!-- {c} -->")
    assert reflection_contexts(parse_html(page), c) == ["html", "attribute", "url", "script", "rcdata",
                                                        "comment"]
    assert find_execution(parse_html(page), c) is None
    assert find_execution(parse_html(f"<textarea><{c}></textarea>"), c) is None
    assert find_execution(parse_html(f"&lt;{c}&gt;"), c) is None
    assert find_execution(parse_html(f"<div><{c} x=1></div>"), c).kind == "element"  # type: ignore[union-attr]
    assert find_execution(parse_html(f'<input value="" on{c}=1 x="">'), c).kind == "event-handler"  # type: ignore[union-attr]
    assert find_execution(parse_html(f'<a href=" JaVa&#x09;script:{c}()">'), c).kind == "javascript-url"  # type: ignore[union-attr]
    assert find_execution(parse_html(f"<script>var s='';{c}//';</script>"), c).kind == "script"  # type: ignore[union-attr]


def test_js_lexer_keeps_strings_comments_and_escapes_apart() -> None:
    c = "bstzz"
    assert _canary_in_code(f"x = 1; {c}();", c)
    assert not _canary_in_code(f"x = '{c}';", c)
    assert not _canary_in_code(f"x = '\\';{c}//';", c)
    assert not _canary_in_code(f'x = "a\\"{c}";', c)
    assert not _canary_in_code(f"x = `${{a}} {c}`;", c)
    assert not _canary_in_code(f"// {c}\n", c)
    assert not _canary_in_code(f"/* {c} */", c)
    assert _canary_in_code(f"/* a */ {c}", c)


# --- stored --------------------------------------------------------------------------------------

def guestbook_app(escape_output: bool) -> Flask:
    """Guestbook (form) and profile bios (JSON); `escape_output` gives the well-built twin."""
    app = Flask("guestbook")
    entries: list[dict[str, str]] = []
    bios: list[str] = []
    out = escape if escape_output else str

    @app.post("/guestbook")
    def sign() -> tuple[str, int]:
        entries.append({"author": request.form.get("author", ""), "message": request.form.get("message", "")})
        return "", 303

    @app.get("/guestbook")
    def read() -> str:
        rows = "".join(f"<li><b>{escape(e['author'])}</b>: {out(e['message'])}</li>" for e in entries)
        return f"<html><body><ul>{rows}</ul></body></html>"

    @app.post("/api/profile")
    def profile() -> Response:
        body = request.get_json(silent=True) or {}
        bios.append(str(body.get("bio", "")))
        return Response(json.dumps({"ok": True}), mimetype="application/json")

    @app.get("/api/profiles")
    def profiles_json() -> Response:
        # Stored raw, but served as JSON: not XSS.
        return Response(json.dumps(bios), mimetype="application/json")

    @app.get("/people")
    def people() -> str:
        return "<html><body>" + "".join(f"<p>{out(b)}</p>" for b in bios) + "</body></html>"

    @app.get("/edit")
    def edit() -> str:
        # Raw text inside <textarea> cannot create elements unless the payload closes it.
        last = escape(entries[-1]["message"]) if entries else ""
        return f"<html><body><textarea>{last}</textarea></body></html>"

    @app.post("/echo")
    def echo() -> str:
        # Reflected in the immediate response only, never stored: the reflected check's job.
        return f"<html><body>{request.form.get('text', '')}</body></html>"

    @app.get("/")
    def home() -> str:
        return "<html><body>home</body></html>"

    return app


def guestbook_surface() -> Surface:
    return Surface([
        EntryPoint("POST", "/guestbook", [Input("form", "author"), Input("form", "message")]),
        EntryPoint("GET", "/guestbook"),
        EntryPoint("POST", "/api/profile", [Input("json", "bio"), Input("json", "age", kind="integer")]),
        EntryPoint("GET", "/api/profiles"), EntryPoint("GET", "/people"), EntryPoint("GET", "/edit"),
        EntryPoint("POST", "/echo", [Input("form", "text")]), EntryPoint("GET", "/"),
        EntryPoint("GET", "/items/{id}", [Input("path", "id")]),
    ])


def test_stored_fires_and_maps_back_to_the_storing_input() -> None:
    result = _scan(guestbook_app(escape_output=False), guestbook_surface(), [STORED])
    got = {(f.location.method, f.location.path, f.location.input.in_, f.location.input.name)  # type: ignore[union-attr]
           for f in result.findings}
    assert got == {("POST", "/guestbook", "form", "message"), ("POST", "/api/profile", "json", "bio")}
    for f in result.findings:
        assert f.check_id == STORED and f.confidence == "confirmed" and f.cwe == 79
        pages = " ".join(e.summary for e in f.evidence)
        assert "/guestbook" in pages or "/people" in pages
        assert [e.kind for e in f.evidence[:4]] == ["request", "response", "request", "response"]
    by_input = {f.location.input.name: f for f in result.findings}  # type: ignore[union-attr]
    assert "/people" in by_input["bio"].title and "/guestbook" in by_input["message"].title


def test_stored_silent_when_output_is_escaped() -> None:
    result = _scan(guestbook_app(escape_output=True), guestbook_surface(), [STORED])
    assert result.findings == []
    assert result.checks[0].requests >= 5  # it submitted and fetched


# --- over real HTTP ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served_apps() -> Iterator[tuple[str, str]]:
    from werkzeug.serving import make_server

    servers = [make_server("127.0.0.1", 0, app, threaded=True) for app in (vulnerable_app(), safe_app())]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        yield tuple(f"http://127.0.0.1:{s.server_port}" for s in servers)  # type: ignore[misc]
    finally:
        for s in servers:
            s.shutdown()


def test_reflected_over_real_http(served_apps: tuple[str, str]) -> None:
    vulnerable_url, safe_url = served_apps
    surface = Surface([_q("/search"), _q("/attr", "v"), _q("/js", "s"), _q("/plain"), _q("/api/echo")])
    found = _scan(None, surface, [REFLECTED], target=Target.from_url(vulnerable_url))
    assert {f.location.path for f in found.findings} == {"/search", "/attr", "/js"}
    assert all(f.location.url and f.location.url in f.reproduction.curl for f in found.findings)
    assert _scan(None, surface, [REFLECTED], target=Target.from_url(safe_url)).findings == []


# --- demo oracle ---------------------------------------------------------------------------------

# The same tuple in every injection-client test module, so the session cache scans the demo once.
CLIENT_CHECKS = ("injection.crlf", "injection.open-redirect", "injection.xss-reflected",
                 "injection.xss-stored", "injection.xxe")


def _located(result: ScanResult, check_id: str) -> set[tuple[str, str, str, str]]:
    return {(f.location.method or "", f.location.path or "", f.location.input.in_, f.location.input.name)
            for f in result.findings if f.check_id == check_id and f.location.input is not None}


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_reflected_xss_found(scan_demo, framework: str) -> None:  # type: ignore[no-untyped-def]
    result = scan_demo(flaws="all", checks=CLIENT_CHECKS, framework=framework)
    found = _located(result, REFLECTED)
    assert ("GET", "/search", "query", "q") in found
    if framework == "flask":
        assert ("POST", "/upload", "multipart", "document") in found
    assert all(f.confidence == "confirmed" for f in result.findings if f.check_id == REFLECTED)


def test_demo_stored_xss_found(scan_demo) -> None:  # type: ignore[no-untyped-def]
    result = scan_demo(flaws="all", checks=CLIENT_CHECKS)
    assert _located(result, STORED) == {("POST", "/guestbook", "form", "message")}
    f = next(f for f in result.findings if f.check_id == STORED)
    assert f.confidence == "confirmed" and "/guestbook" in f.title


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_demo_hardened_twin_is_clean(scan_demo, framework: str) -> None:  # type: ignore[no-untyped-def]
    result = scan_demo(flaws="none", checks=CLIENT_CHECKS, framework=framework)
    assert [f for f in result.findings if f.check_id in CLIENT_CHECKS] == []
    assert all(not c.errors for c in result.checks)
    assert {c.check_id for c in result.checks} == set(CLIENT_CHECKS)


def test_demo_reflected_xss_over_real_http() -> None:
    from bastion.demo.serve import start_background_server
    from bastion.session import scan_from_options

    for flaws, expected in (("xss_reflected", {("GET", "/search", "query", "q")}), ("none", set())):
        url, stop = start_background_server(flaws, "flask")
        try:
            result = scan_from_options(url=url, checks=[REFLECTED])
        finally:
            stop()
        assert _located(result, REFLECTED) == expected


@pytest.mark.parametrize(("payload", "vulnerable", "fixed"), [
    ("<{c}>", "<p><{c}></p>", "<p>&lt;{c}&gt;</p>"),
    ('" on{c}=1 x="', '<input value="" on{c}=1 x="">', '<input value="&#34; on{c}=1 x=&#34;">'),
    (" on{c}=1 x=", "<input value=bastion on{c}=1 x=>", '<input value="bastion on{c}=1 x=">'),
    ("javascript:{c}(1)", '<a href="javascript:{c}(1)">', '<a href="/">'),
    ("';{c}//", "<script>var s='';{c}//';</script>", "<script>var s='\\';{c}//';</script>"),
    ("';{c}//", "<script>var s='';{c}//';</script>", "<script>var s=\"';{c}//\";</script>"),
])
def test_proof_condition_holds_while_vulnerable_and_not_once_fixed(payload: str, vulnerable: str,
                                                                  fixed: str) -> None:
    from bastion.checks.injection.xss import _proof_condition

    c = "bstproof1"
    vulnerable, fixed, payload = (x.replace("{c}", c) for x in (vulnerable, fixed, payload))
    execution = find_execution(parse_html(vulnerable), c)
    assert execution is not None and find_execution(parse_html(fixed), c) is None
    condition = _proof_condition(execution, payload, c, vulnerable)
    assert condition.holds(200, {}, vulnerable, 0.0)
    assert not condition.holds(200, {}, fixed, 0.0)
