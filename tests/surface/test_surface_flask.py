"""Flask introspection and handler source reading (AST), with helpers and middlewares."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import wraps

import flask
import pytest
from flask import Flask, jsonify, request
from flask.views import MethodView
from werkzeug.debug import DebuggedApplication
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

from bastion.surface.discover import discover_surface, introspect_app, normalise, surface_rows
from bastion.surface.handler_ast import read_function
from bastion.surface.model import EntryPoint, Surface
from bastion.target import Target


def get_tenant() -> str | None:
    """App helper: reads a header through the global proxy."""
    return request.headers.get("X-Tenant")


def level1() -> object:
    return level2()


def level2() -> object:
    return level3()


def level3() -> object:
    request.headers.get("X-Depth-Three")
    return level4()


def level4() -> object:
    return request.headers.get("X-Depth-Four")


def require_api_key(view):  # an app decorator that reads an input of its own
    @wraps(view)
    def wrapper(*args, **kwargs):
        if request.headers.get("X-Api-Key") != "k":
            return "no", 401
        return view(*args, **kwargs)

    return wrapper


def build_app() -> Flask:
    app = Flask(__name__, static_folder=None)

    @app.route("/search")
    def search():
        q = request.args.get("q", "")
        page = request.args.get("page", 1, type=int)
        tags = request.args.getlist("tag")
        limit = int(request.args["limit"])
        if "debug" in request.args:
            pass
        mixed = request.values.get("mixed")
        return jsonify(q=q, page=page, tags=tags, limit=limit, mixed=mixed)

    @app.route("/items/<int:item_id>/<path:rest>", methods=["GET", "POST"])
    def item(item_id, rest):
        if request.method == "POST":
            name = request.form["name"]
            note = request.form.get("note")
            mixed = request.values.get("mixed")
            return jsonify(name=name, note=note, mixed=mixed)
        return "ok"

    @app.post("/upload")
    def upload():
        f = request.files["document"]
        title = request.form.get("title")
        return jsonify(name=f.filename, title=title)

    @app.post("/orders")
    def orders():
        data = request.get_json(silent=True) or {}
        status = data.get("filter", {}).get("status")
        city = data["address"]["city"]
        for line in data["items"]:
            line["sku"]
        return jsonify(status=status, city=city, total=request.json["total"])

    @app.put("/profile")
    def profile():
        body = request.get_json()
        return jsonify(nick=body.get("nick"))

    @app.post("/import")
    def import_xml():
        doc = ET.fromstring(request.data)
        return doc.tag

    @app.post("/raw")
    def raw():
        return str(len(request.get_data()))

    @app.route("/whoami")
    def whoami():
        tenant = get_tenant()
        session_id = request.cookies.get("sid")
        lang = request.headers["Accept-Language"]
        return jsonify(tenant=tenant, sid=session_id, lang=lang, ua=str(request.user_agent),
                       ref=request.referrer, route=request.access_route)

    @app.route("/deep")
    def deep():
        level1()
        return "deep"

    @app.route("/guarded")
    @require_api_key
    def guarded():
        return "secret"

    @app.route("/module-proxy")
    def module_proxy():
        return flask.request.args.get("via_module", "")

    @app.route("/uuid/<uuid:token>")
    def by_uuid(token):
        return str(token)

    @app.route("/num/<float:x>")
    def by_float(x):
        return str(x)

    class ThingAPI(MethodView):
        def get(self):
            return request.args.get("fields", "")

        def post(self):
            return request.form.get("label", "")

    app.add_url_rule("/things", view_func=ThingAPI.as_view("things"))
    # A view whose source cannot be read must not break discovery.
    app.add_url_rule("/builtin", "builtin", view_func=eval("lambda: 'x'"))  # noqa: S307
    return app


@pytest.fixture(scope="module")
def surface() -> Surface:
    return normalise(introspect_app(build_app()))


def ep(surface: Surface, method: str, path: str) -> EntryPoint:
    found = surface.get(method, path)
    assert found is not None, f"{method} {path} not found in {[e.key for e in surface.entry_points]}"
    return found


def names(entry: EntryPoint, location: str) -> set[str]:
    return {i.name for i in entry.inputs if i.location == location}


def test_query_accessors(surface: Surface) -> None:
    search = ep(surface, "GET", "/search")
    assert names(search, "query") == {"q", "page", "tag", "limit", "debug", "mixed"}
    assert search.input("query", "page").kind == "integer"
    assert search.input("query", "page").example == "1"
    assert search.input("query", "limit").kind == "integer"  # int(request.args["limit"])
    # GET cannot carry a body: request.values is the query string only.
    assert names(search, "form") == set()
    assert all(i.source == "ast" for i in search.inputs)


def test_inputs_carry_file_and_real_line(surface: Surface) -> None:
    q = ep(surface, "GET", "/search").input("query", "q")
    assert q.file is not None and q.file.endswith("test_surface_flask.py")
    with open(__file__, encoding="utf-8") as fh:
        source_line = fh.read().splitlines()[q.line - 1]
    assert 'request.args.get("q"' in source_line


def test_path_params_methods_and_converters(surface: Surface) -> None:
    get_item = ep(surface, "GET", "/items/{item_id}/{rest}")
    post_item = ep(surface, "POST", "/items/{item_id}/{rest}")
    assert get_item.input("path", "item_id").kind == "integer"
    assert get_item.input("path", "rest").kind == "string"
    assert get_item.input("path", "item_id").source == "declared"
    assert names(get_item, "form") == set()
    assert names(post_item, "form") == {"name", "note", "mixed"}
    assert "mixed" in names(post_item, "query")
    assert post_item.consumes == ["application/x-www-form-urlencoded"]
    assert ep(surface, "GET", "/uuid/{token}").input("path", "token").example
    assert ep(surface, "GET", "/num/{x}").input("path", "x").kind == "number"
    methods = {e.method for e in surface.entry_points}
    assert "HEAD" not in methods and "OPTIONS" not in methods
    assert get_item.source == "flask" and get_item.handler.endswith("item")
    assert get_item.file.endswith("test_surface_flask.py") and get_item.line


def test_files_mark_multipart(surface: Surface) -> None:
    upload = ep(surface, "POST", "/upload")
    doc = upload.input("multipart", "document")
    assert doc is not None and doc.kind == "file"
    assert upload.input("form", "title") is not None
    assert upload.consumes[0] == "multipart/form-data"


def test_json_reads_nested_and_through_variables(surface: Surface) -> None:
    orders = ep(surface, "POST", "/orders")
    assert names(orders, "json") == {"filter.status", "address.city", "items[].sku", "total"}
    assert "application/json" in orders.consumes
    assert ep(surface, "PUT", "/profile").input("json", "nick") is not None


def test_raw_body_and_xml_parser(surface: Surface) -> None:
    imp = ep(surface, "POST", "/import")
    assert imp.input("body", "body") is not None
    assert imp.consumes == ["application/xml"]
    raw = ep(surface, "POST", "/raw")
    assert raw.input("body", "body") is not None
    assert "application/xml" not in raw.consumes


def test_headers_cookies_and_request_attributes(surface: Surface) -> None:
    who = ep(surface, "GET", "/whoami")
    assert names(who, "header") == {"X-Tenant", "Accept-Language", "User-Agent", "Referer", "X-Forwarded-For"}
    assert names(who, "cookie") == {"sid"}


def test_helper_followed_with_its_own_location(surface: Surface) -> None:
    tenant = ep(surface, "GET", "/whoami").input("header", "X-Tenant")
    assert tenant.source == "ast"
    assert tenant.line == get_tenant.__code__.co_firstlineno + 2


def test_helpers_followed_three_levels_not_four(surface: Surface) -> None:
    deep = ep(surface, "GET", "/deep")
    assert names(deep, "header") == {"X-Depth-Three"}


def test_app_decorator_reads_counted(surface: Surface) -> None:
    assert names(ep(surface, "GET", "/guarded"), "header") == {"X-Api-Key"}


def test_flask_request_through_module_attribute(surface: Surface) -> None:
    assert names(ep(surface, "GET", "/module-proxy"), "query") == {"via_module"}


def test_class_based_view_methods(surface: Surface) -> None:
    assert names(ep(surface, "GET", "/things"), "query") == {"fields"}
    assert names(ep(surface, "POST", "/things"), "form") == {"label"}


def test_view_without_source_is_listed_without_inputs(surface: Surface) -> None:
    builtin = ep(surface, "GET", "/builtin")
    assert builtin.inputs == []


def test_static_listed_only_when_a_folder_is_served(tmp_path) -> None:
    assert all("static" not in e.path for e in introspect_app(build_app()).entry_points)
    (tmp_path / "static").mkdir()
    app = Flask("static_app", static_folder=str(tmp_path / "static"))
    paths = {e.key for e in introspect_app(app).entry_points}
    assert paths == {"GET /static/{filename}"}
    missing = Flask("no_static_dir", static_folder=str(tmp_path / "absent"))
    assert introspect_app(missing).entry_points == []


def test_shared_helper_counts_for_every_caller() -> None:
    app = Flask("shared")

    @app.route("/a")
    def a():
        return get_tenant() or ""

    @app.route("/b")
    def b():
        return get_tenant() or ""

    surface = introspect_app(app)
    for path in ("/a", "/b"):
        assert surface.get("GET", path).input("header", "X-Tenant") is not None


def test_recursive_helpers_terminate() -> None:
    def ping(n: int) -> int:
        request.args.get("ping")
        return pong(n)

    def pong(n: int) -> int:
        return ping(n - 1) if n else 0

    globals()["ping"], globals()["pong"] = ping, pong
    try:
        reads = read_function(ping)
    finally:
        del globals()["ping"], globals()["pong"]
    assert ("query", "ping") in reads.inputs


@pytest.mark.parametrize("wrap", [
    pytest.param(lambda app: DebuggedApplication(app), id="debugged"),
    pytest.param(lambda app: ProxyFix(app.wsgi_app), id="proxyfix-on-wsgi-app"),
    pytest.param(lambda app: (lambda environ, start_response: app(environ, start_response)), id="closure"),
])
def test_middleware_unwrapped(wrap) -> None:
    surface = introspect_app(wrap(build_app()))
    assert surface.get("GET", "/search") is not None


def test_inner_wsgi_app_wrapped_in_place() -> None:
    app = build_app()
    app.wsgi_app = ProxyFix(app.wsgi_app)  # the usual way to add a middleware to Flask
    assert introspect_app(app).get("GET", "/whoami") is not None


def test_dispatcher_mounts_keep_their_prefix() -> None:
    frontend = Flask("front")

    @frontend.route("/")
    def home():
        return "home"

    combined = DispatcherMiddleware(frontend, {"/api": build_app()})
    surface = introspect_app(combined)
    assert surface.get("GET", "/") is not None
    assert surface.get("GET", "/api/search").input("query", "q") is not None


def test_surface_is_deterministic() -> None:
    first = discover_surface(Target.from_app(build_app()), crawl=False)
    second = discover_surface(Target.from_app(build_app()), crawl=False)
    assert first == second
    assert [e.key for e in first.entry_points] == sorted(
        (e.key for e in first.entry_points), key=lambda k: (k.split(" ", 1)[1], k.split(" ", 1)[0]))


def test_surface_rows() -> None:
    rows = surface_rows(discover_surface(Target.from_app(build_app()), crawl=False))
    assert all(len(r) == 5 for r in rows)
    by_key = {(r[0], r[1], r[2], r[3]): r[4] for r in rows}
    q = discover_surface(Target.from_app(build_app()), crawl=False).get("GET", "/search").input("query", "q")
    assert by_key[("GET", "/search", "query", "q")] == f"{q.file}:{q.line}"
    assert by_key[("GET", "/search", "query", "q")].endswith(f"test_surface_flask.py:{q.line}")
    assert by_key[("GET", "/builtin", "", "")] == "flask"


API_KEY_HEADER = "X-Service-Key"


def int_arg(name: str, default: int = 1) -> int:
    """App helper taking the parameter name from its caller."""
    return int(request.args.get(name) or default)


def text_arg(name: str = "fallback_name") -> str:
    return request.args.get(name, "")


def load_user() -> None:
    """An app-wide before_request hook: every route reads this cookie."""
    request.cookies.get("sid")


def check_service_key() -> None:
    request.headers.get(API_KEY_HEADER)


def test_names_passed_to_helpers_and_constants() -> None:
    app = Flask("names", static_folder=None)

    @app.route("/list")
    def listing():
        page = int_arg("page")
        size = int_arg(name="size")
        text_arg()
        key = "local_key"
        request.args.get(key)
        return str(page + size)

    surface = introspect_app(app)
    assert names(surface.get("GET", "/list"), "query") == {"page", "size", "fallback_name", "local_key"}


def test_before_request_hooks_and_session() -> None:
    app = Flask("hooks", static_folder=None)
    app.config["SESSION_COOKIE_NAME"] = "my_session"
    app.before_request(load_user)
    api = flask.Blueprint("api", __name__)
    api.before_request(check_service_key)

    @api.route("/data")
    def data():
        return flask.session.get("user", "")

    @app.route("/")
    def home():
        return "home"

    app.register_blueprint(api, url_prefix="/api")
    surface = introspect_app(app)
    home_ep, data_ep = surface.get("GET", "/"), surface.get("GET", "/api/data")
    assert names(home_ep, "cookie") == {"sid"} and names(home_ep, "header") == set()
    # A hook's inputs are attacked once, through the first route that runs the hook.
    assert names(data_ep, "cookie") == {"my_session"}
    assert names(data_ep, "header") == {"X-Service-Key"}
    assert data_ep.handler.endswith("data")


def read_header_of(req) -> str:
    """Starlette-style helper receiving the request as an argument."""
    return req.headers["X-Passed-Through"]


def test_more_read_patterns() -> None:
    app = Flask("patterns", static_folder=None)

    @app.post("/patterns")
    def patterns():
        from flask import request as local_request

        joined = ", ".join(local_request.args.getlist("multi"))
        data = local_request.get_json()
        first = data["lines"][0]["sku"]
        read_header_of(local_request)
        return joined + first

    entry = introspect_app(app).get("POST", "/patterns")
    assert names(entry, "query") == {"multi"}
    assert names(entry, "json") == {"lines[].sku"}
    assert names(entry, "header") == {"X-Passed-Through"}


def test_hostile_view_source_is_tolerated(tmp_path, monkeypatch) -> None:
    import importlib
    import linecache

    chain = ".".join(["request"] + ["attr"] * 1500)  # compiles, but nests deeper than the recursion limit
    source = tmp_path / "hostile_views.py"
    source.write_text("from flask import request\n\n\ndef view():\n    request.args.get('kept')\n"
                      f"    return {chain}\n\n\ndef changed():\n    return request.args.get('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("hostile_views")
    assert ("query", "kept") in read_function(module.view).inputs
    # Source edited on disk after import (here: no longer Python) is skipped, not an error.
    source.write_text("def changed(:\n")
    linecache.checkcache(str(source))
    assert read_function(module.changed).inputs == {}


def test_json_read_survives_a_type_guard() -> None:
    app = Flask("guarded")

    @app.post("/refresh")
    def refresh():
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}  # arrays and scalars are not objects
        return jsonify(token=str(body.get("refresh_token", "")))

    ep = introspect_app(app).get("POST", "/refresh")
    assert ep.input("json", "refresh_token") is not None


def test_request_values_field_is_sent_once_in_the_body() -> None:
    from bastion.surface.requests import build_request

    app = Flask("values")

    @app.post("/login")
    def login():
        return request.values.get("username", "") + request.form.get("next", "")

    ep = introspect_app(app).get("POST", "/login")
    assert ep.input("query", "username") is not None and ep.input("form", "username") is not None
    spec = build_request(ep, ep.input("form", "next"), "X")
    assert "username" not in spec.params and spec.form is not None and "username" in spec.form
    injected = build_request(ep, ep.input("query", "username"), "Q")
    assert injected.params["username"] == "Q"
