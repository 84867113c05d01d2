"""Crawler: links and forms within scope, unsafe links never followed, budgets, hostile pages, live URL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from flask import Flask, Response
from werkzeug.serving import make_server

from bastion.surface.crawl import crawl_site, is_unsafe_link
from bastion.surface.discover import discover_surface, introspect_app, normalise
from bastion.surface.model import EntryPoint, Surface
from bastion.target import Limits, Target

INDEX = """<!doctype html><html><head><base href="/"><title>Shop</title>
<link rel="alternate" href="/feed.xml"><script src="/static/app.js"></script></head><body>
<a href="/about?lang=en">About</a> <a href="/about?lang=fr">Über</a>
<a href="/invoices/7">Invoice 7</a> <a href="/invoices/8">Invoice 8</a>
<a href="/logout">Log out</a> <a href="/account/delete">Delete my account</a>
<a href="http://evil.example/steal">elsewhere</a> <a href="//evil.example/proto-relative">x</a>
<a href="mailto:admin@example.com">mail</a> <a href="javascript:alert(1)">js</a> <a href="#top">top</a>
<map><area href="/area-target"></map> <iframe src="/framed"></iframe>
<form method="post" action="/comment" enctype="multipart/form-data">
  <input type="hidden" name="csrf_token" value="tok-123"><textarea name="body">hello</textarea>
  <input type="file" name="attachment"><select name="priority"><option value="low">L</option>
  <option value="high" selected>H</option></select><input type="checkbox" name="notify">
  <input type="reset" name="reset_me"><button name="action" value="save">Save</button></form>
<form action="/search"><input name="q" value="shoes"></form>
<form method="post" action="/logout"><button>bye</button></form>
"""


def build_site(visits: list[str]) -> Flask:
    app = Flask("crawl_site", static_folder=None)

    @app.before_request
    def record():
        from flask import request

        visits.append(request.full_path)

    @app.route("/")
    def index():
        return INDEX

    @app.route("/about")
    def about():
        return "<p>About <a href='/missing'>gone</a> <a href='/data.json'>data</a></p>"

    @app.route("/invoices/<int:invoice_id>")
    def invoice(invoice_id):
        return f"<h1>Invoice {invoice_id}</h1>"

    @app.route("/framed")
    def framed():
        return "<a href='/from-frame'>x</a>"

    @app.route("/from-frame")
    def from_frame():
        return "ok"

    @app.route("/area-target")
    def area_target():
        return "ok"

    @app.route("/data.json")
    def data():
        return Response('{"href": "<a href=\\"/hidden-in-json\\">"}', mimetype="application/json")

    @app.route("/logout")
    def logout():
        raise AssertionError("the crawler followed a logout link")

    @app.route("/account/delete")
    def delete_account():
        raise AssertionError("the crawler followed a delete link")

    @app.post("/comment")
    def comment():
        raise AssertionError("the crawler submitted a form")

    return app


@pytest.fixture(scope="module")
def crawled() -> tuple[Surface, list[str]]:
    visits: list[str] = []
    app = build_site(visits)
    return discover_surface(Target.from_app(app)), visits


def ep(surface: Surface, method: str, path: str) -> EntryPoint:
    found = surface.get(method, path)
    assert found is not None, f"{method} {path} not in {[e.key for e in surface.entry_points]}"
    return found


def test_links_found_and_followed(crawled) -> None:
    surface, visits = crawled
    about = ep(surface, "GET", "/about")
    assert about.input("query", "lang").example == "en"
    assert about.input("query", "lang").source == "crawl"
    for path in ("/area-target", "/framed", "/from-frame", "/data.json"):
        assert ep(surface, "GET", path) is not None
    assert "/from-frame?" in visits


def test_query_variants_fetched_once(crawled) -> None:
    _surface, visits = crawled
    # `/about` (a route) and `/about?lang=…` (two links differing only in the value) → two fetches.
    assert sorted(v for v in visits if v.startswith("/about?")) == ["/about?", "/about?lang=en"]


def test_concrete_paths_merge_into_templates(crawled) -> None:
    surface, visits = crawled
    invoice = ep(surface, "GET", "/invoices/{invoice_id}")
    assert invoice.input("path", "invoice_id").example == "7"
    assert invoice.source == "flask"
    assert surface.get("GET", "/invoices/7") is None
    assert len([v for v in visits if v.startswith("/invoices/")]) == 1


def test_forms_recorded_not_submitted(crawled) -> None:
    surface, visits = crawled
    comment = ep(surface, "POST", "/comment")
    assert comment.consumes == ["multipart/form-data"]
    assert comment.input("multipart", "csrf_token").example == "tok-123"
    assert comment.input("multipart", "attachment").kind == "file"
    assert comment.input("multipart", "body").example == "hello"
    assert comment.input("multipart", "priority").example == "high"
    assert comment.input("multipart", "notify").example == "on"
    assert comment.input("multipart", "action").example == "save"
    assert comment.input("multipart", "reset_me") is None
    search = ep(surface, "GET", "/search")
    assert search.input("query", "q").example == "shoes"
    assert not any(v.startswith(("/comment", "/search")) for v in visits)


def test_unsafe_and_out_of_scope_links_ignored(crawled) -> None:
    surface, visits = crawled
    assert not any("logout" in v or "delete" in v for v in visits)
    assert surface.get("POST", "/logout") is None  # a logout form is not recorded either
    assert all("steal" not in e.path and "proto-relative" not in e.path for e in surface.entry_points)
    assert is_unsafe_link("/users/3/Remove") and not is_unsafe_link("/users/3")


def test_scripts_noted_not_fetched_and_non_html_not_parsed(crawled) -> None:
    surface, visits = crawled
    assert ep(surface, "GET", "/static/app.js").source == "crawl"
    assert not any(v.startswith("/static/app.js") for v in visits)
    assert surface.get("GET", "/hidden-in-json") is None
    assert ep(surface, "GET", "/data.json").produces == ["application/json"]


def test_missing_pages_dropped(crawled) -> None:
    surface, visits = crawled
    assert "/missing?" in visits
    assert surface.get("GET", "/missing") is None


def test_crawl_is_deterministic() -> None:
    first = discover_surface(Target.from_app(build_site([])))
    second = discover_surface(Target.from_app(build_site([])))
    assert first == second


def chain_site(visits: list[str]) -> Flask:
    app = Flask("chain_site", static_folder=None)

    @app.route("/")
    def index():
        visits.append("/")
        return "".join(f"<a href='/p/{i}/0'>{i}</a>" for i in range(30))

    @app.route("/p/<int:branch>/<int:step>")
    def step(branch, step):
        visits.append(f"/p/{branch}/{step}")
        return f"<a href='/p/{branch}/{step + 1}'>next</a>"

    return app


def run_crawl(target: Target, **kwargs) -> Surface:
    return asyncio.run(crawl_site(target, **kwargs))


def test_max_pages_honoured() -> None:
    visits: list[str] = []
    surface = run_crawl(Target.from_app(chain_site(visits)), max_pages=5)
    assert len(visits) == 5
    assert len(surface.entry_points) >= 5  # links seen but not fetched are still listed


def test_depth_and_request_caps() -> None:
    visits: list[str] = []
    run_crawl(Target.from_app(chain_site(visits)), max_depth=2, max_pages=1000)
    assert max(int(v.rsplit("/", 1)[1]) for v in visits if v != "/") == 1
    visits.clear()
    run_crawl(Target.from_app(chain_site(visits)), max_requests=7, max_pages=1000)
    assert len(visits) == 7
    visits.clear()
    run_crawl(Target.from_app(chain_site(visits)), limits=Limits(max_requests=3), max_pages=1000)
    assert len(visits) == 3


def test_hostile_pages() -> None:
    app = Flask("hostile", static_folder=None)

    @app.route("/")
    def index():
        broken = b"<html><body><a href='/ok'>ok</a><div><p><table><form action='/f'><input name='a'>"
        invalid_utf8 = b"\xff\xfe\xc3(\x00\x01<a href='/after-bad-bytes'>x</a>"
        nested = b"<div>" * 20000
        return Response(broken + invalid_utf8 + nested, mimetype="text/html")

    @app.route("/ok")
    def ok():
        return Response("<a href='/ok'>self</a>" + "<p>filler</p>" * 200000, mimetype="text/html")

    @app.route("/after-bad-bytes")
    def after():
        return "fine"

    surface = run_crawl(Target.from_app(app), limits=Limits(max_response_bytes=256 * 1024))
    paths = {e.key for e in surface.entry_points}
    assert {"GET /ok", "GET /after-bad-bytes", "GET /f"} <= paths


def test_redirect_out_of_scope_not_followed() -> None:
    app = Flask("redirector", static_folder=None)

    @app.route("/")
    def index():
        return "<a href='/away'>away</a>"

    @app.route("/away")
    def away():
        return "", 302, {"Location": "http://evil.example/"}

    surface = run_crawl(Target.from_app(app))
    assert all("evil" not in e.path for e in surface.entry_points)


@pytest.fixture
def live_server() -> Iterator[tuple[str, list[str]]]:
    visits: list[str] = []
    server = make_server(host="127.0.0.1", port=0, app=build_site(visits), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", visits
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_live_url_crawl(live_server) -> None:
    url, visits = live_server
    surface = discover_surface(Target.from_url(url))
    assert ep(surface, "GET", "/about").input("query", "lang").example == "en"
    assert ep(surface, "POST", "/comment").input("multipart", "csrf_token").example == "tok-123"
    # No introspection for a URL target: crawled paths stay concrete.
    assert ep(surface, "GET", "/invoices/{segment}").source == "crawl"  # sibling ids: a structural parameter
    assert not any("logout" in v or "delete" in v for v in visits)
    assert all(e.source == "crawl" for e in surface.entry_points)
    # Headers a server may log or trust are attacked once, at the root, for URL targets.
    root_headers = {i.name for i in ep(surface, "GET", "/").inputs if i.location == "header"}
    assert root_headers == {"User-Agent", "Referer", "X-Forwarded-For"}
    assert not any(i.location == "header" for e in surface.entry_points if e.path != "/" for i in e.inputs)


def test_crawl_can_be_disabled() -> None:
    visits: list[str] = []
    surface = discover_surface(Target.from_app(build_site(visits)), crawl=False)
    assert visits == []
    assert surface == normalise(introspect_app(build_site([])))


def test_html5lib_fallback_without_lxml(monkeypatch) -> None:
    import bastion.target.html as html_module

    monkeypatch.setattr(html_module, "_lxml_html", None)
    visits: list[str] = []
    surface = run_crawl(Target.from_app(build_site(visits)), known=introspect_app(build_site([])))
    assert surface.get("POST", "/comment").input("multipart", "csrf_token").example == "tok-123"
    assert surface.get("GET", "/invoices/{invoice_id}") is not None
    assert not any("logout" in v for v in visits)


def test_xml_declared_and_empty_pages() -> None:
    app = Flask("odd_pages", static_folder=None)

    @app.route("/")
    def index():
        body = '<?xml version="1.0" encoding="utf-8"?><html><body><a href="/empty">e</a></body></html>'
        return Response(body, mimetype="application/xhtml+xml")

    @app.route("/empty")
    def empty():
        return Response("   ", mimetype="text/html")

    surface = run_crawl(Target.from_app(app))
    assert surface.get("GET", "/empty") is not None


def test_excluded_paths_never_fetched() -> None:
    visits: list[str] = []
    surface = discover_surface(Target.from_app(build_site(visits)), exclude_paths=["/about", "/framed"])
    assert not any(v.startswith(("/about", "/framed")) for v in visits)
    assert surface.get("GET", "/area-target") is not None


SERVED_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "paths": {"/api/items/{item_id}": {"get": {
        "parameters": [{"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                       {"name": "expand", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "ok"}}}}},
}


def spec_site(spec_body: str) -> Flask:
    app = Flask("spec_site", static_folder=None)

    @app.route("/")
    def index():
        return "<a href='/api/items/5?expand=owner'>item</a>"

    @app.route("/openapi.json")
    def spec():
        return Response(spec_body, mimetype="application/json")

    @app.route("/api/items/<int:item_id>")
    def item(item_id):
        return {"id": item_id}

    return app


@pytest.fixture
def serve() -> Iterator:
    servers = []

    def start(app: Flask) -> str:
        server = make_server(host="127.0.0.1", port=0, app=app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_live_url_uses_a_served_openapi_document(serve) -> None:
    import json

    url = serve(spec_site(json.dumps(SERVED_SPEC)))
    surface = discover_surface(Target.from_url(url))
    item = ep(surface, "GET", "/api/items/{item_id}")
    assert item.source == "openapi"
    assert item.input("query", "expand") is not None
    assert item.input("path", "item_id").example == "5"  # the crawled link merged into the template
    assert surface.get("GET", "/api/items/5") is None


def test_broken_served_openapi_document_is_ignored(serve) -> None:
    url = serve(spec_site('{"openapi": "3.0.0", "paths": [1, 2'))
    surface = discover_surface(Target.from_url(url))
    assert ep(surface, "GET", "/api/items/5").source == "crawl"


def test_base_url_with_a_path_prefix(serve) -> None:
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    visits: list[str] = []
    inner = Flask("inner", static_folder=None)

    @inner.route("/")
    def home():
        visits.append("/")
        return "<a href='about?lang=en'>rel</a> <a href='/outside'>root</a> <a href='/app/deep'>abs</a>"

    @inner.route("/about")
    def about():
        visits.append("/about")
        return "about"

    @inner.route("/deep")
    def deep():
        visits.append("/deep")
        return "deep"

    outer = Flask("outer", static_folder=None)

    @outer.route("/outside")
    def outside():
        raise AssertionError("left the base path")

    url = serve(DispatcherMiddleware(outer, {"/app": inner}))
    surface = discover_surface(Target.from_url(url + "/app/"))
    assert ep(surface, "GET", "/about").input("query", "lang").example == "en"
    assert ep(surface, "GET", "/deep") is not None
    assert surface.get("GET", "/outside") is None and surface.get("GET", "/app/about") is None
    assert sorted(visits) == ["/", "/about", "/deep"]


def test_cookies_the_site_sets_become_cookie_inputs_at_root_and_setter() -> None:
    from flask import Flask, make_response

    app = Flask("cookies", static_folder=None)

    @app.get("/")
    def home():
        return '<a href="/prefs">prefs</a><a href="/about">about</a>'

    @app.get("/prefs")
    def prefs():
        resp = make_response("<p>saved</p>")
        resp.set_cookie("theme", "dark")
        return resp

    @app.get("/about")
    def about():
        return "<p>about</p>"

    import asyncio

    from bastion.surface.crawl import crawl_site
    from bastion.target import Target

    surface = asyncio.run(crawl_site(Target.from_app(app, spec="t:app")))
    with_cookie = sorted(ep.path for ep in surface.entry_points if ep.input("cookie", "theme"))
    assert with_cookie == ["/", "/prefs"]


def test_value_like_sibling_links_become_one_route_with_a_path_parameter() -> None:
    from flask import Flask

    app = Flask("files", static_folder=None)

    @app.get("/")
    def home():
        return ('<a href="/docs/a.pdf">a</a><a href="/docs/b.txt">b</a>'
                '<a href="/about">about</a><a href="/contact">contact</a><a href="/news/2024">n</a>')

    @app.get("/<path:anything>")
    def anything(anything):
        return "<p>page</p>"

    import asyncio

    from bastion.surface.crawl import crawl_site
    from bastion.target import Target

    surface = asyncio.run(crawl_site(Target.from_app(app, spec="t:app")))
    paths = {ep.path for ep in surface.entry_points}
    assert "/docs/{segment}" in paths and "/docs/a.pdf" not in paths
    assert surface.get("GET", "/docs/{segment}").input("path", "segment").example == "a.pdf"
    assert {"/about", "/contact", "/news/2024"} <= paths  # root pages and lone values stay concrete
