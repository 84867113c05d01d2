"""Starlette/FastAPI introspection: declared params, Pydantic bodies, mounts, middlewares, AST reads."""

from __future__ import annotations

import warnings
from enum import StrEnum
from typing import Annotated

import pytest
from fastapi import Body, Cookie, Depends, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.security import APIKeyCookie, HTTPBearer
from flask import Flask
from flask import request as flask_request
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bastion.surface.discover import discover_surface, introspect_app
from bastion.surface.model import EntryPoint, Surface
from bastion.target import Target


class Colour(StrEnum):
    red = "red"
    blue = "blue"


class Address(BaseModel):
    city: str
    zip_code: str = Field(alias="zip")


class Line(BaseModel):
    sku: str
    qty: int = 1


class Order(BaseModel):
    name: str
    address: Address
    items: list[Line] = []
    tags: list[str] = []
    colour: Colour = Colour.red
    meta: dict[str, str] = {}


class Node(BaseModel):
    """Self-referential: discovery must not loop."""

    label: str
    children: list[Node] = []


def tenant_dep(x_tenant: str = Header()) -> str:
    return x_tenant


def audit_dep(request: Request) -> str:
    return request.headers.get("X-Request-Id", "")


bearer = HTTPBearer()
session_cookie = APIKeyCookie(name="session")


def build_api() -> FastAPI:
    api = FastAPI()

    @api.post("/orders/{order_id}")
    async def create_order(order_id: int, order: Order, request: Request,
                           tenant: str = Depends(tenant_dep), audit: str = Depends(audit_dep),
                           sess: str | None = Cookie(None), dry_run: bool = False,
                           limit: Annotated[int, Query(alias="max")] = 10):
        debug = request.query_params.get("debug")
        return {"debug": debug}

    @api.get("/headers")
    def headers(user_agent: str = Header(), x_raw_name: str = Header(convert_underscores=False),
                x_alias: str = Header(alias="X-Custom-Alias")):
        return {}

    @api.post("/upload")
    def upload(title: str = Form(), document: UploadFile = File()):
        return {}

    @api.post("/login")
    def login(username: str = Form(), password: str = Form()):
        return {}

    @api.post("/embedded")
    def embedded(order: Order = Body(embed=True), note: str = Body()):
        return {}

    @api.post("/tree")
    def tree(node: Node):
        return {}

    @api.get("/private")
    def private(token=Depends(bearer), sess=Depends(session_cookie)):
        return {}

    @api.get("/files/{file_path:path}")
    def files(file_path: str, colour: Colour = Colour.blue):
        return {}

    return api


async def plain_home(request):
    q = request.query_params["q"]
    c = request.cookies.get("c")
    data = await request.json()
    return PlainTextResponse(f"{q}{c}{data['name']}")


async def plain_form(request):
    form = await request.form()
    return PlainTextResponse(str(form.get("field")))


class ItemEndpoint(HTTPEndpoint):
    async def get(self, request):
        return PlainTextResponse(request.headers.get("X-Item", ""))

    async def delete(self, request):
        return PlainTextResponse("gone")


def build_starlette(static_dir) -> Starlette:
    with warnings.catch_warnings():  # deprecated in Starlette, still what many apps use
        warnings.simplefilter("ignore")
        from starlette.middleware.wsgi import WSGIMiddleware

    legacy = Flask("legacy")

    @legacy.route("/old")
    def old():
        return flask_request.args.get("ref", "")

    return Starlette(routes=[
        Route("/", plain_home, methods=["GET", "POST"]),
        Route("/form", plain_form, methods=["POST"]),
        Route("/items/{item_id:int}", ItemEndpoint),
        Mount("/api", routes=[
            Mount("/v1", routes=[Route("/users/{uid:int}", plain_home)]),
        ]),
        Mount("/fastapi", app=build_api()),
        Mount("/static", app=StaticFiles(directory=str(static_dir)), name="static"),
        Mount("/legacy", app=WSGIMiddleware(legacy)),
    ])


@pytest.fixture(scope="module")
def api_surface() -> Surface:
    return discover_surface(Target.from_app(CORSMiddleware(build_api(), allow_origins=["*"])), crawl=False)


def ep(surface: Surface, method: str, path: str) -> EntryPoint:
    found = surface.get(method, path)
    assert found is not None, f"{method} {path} not in {[e.key for e in surface.entry_points]}"
    return found


def names(entry: EntryPoint, location: str) -> set[str]:
    return {i.name for i in entry.inputs if i.location == location}


def test_declared_params(api_surface: Surface) -> None:
    order = ep(api_surface, "POST", "/orders/{order_id}")
    assert order.input("path", "order_id").kind == "integer"
    assert names(order, "query") == {"dry_run", "max", "debug"}
    assert order.input("query", "dry_run").kind == "boolean"
    assert order.input("query", "dry_run").source == "declared"
    assert order.input("query", "debug").source == "ast"
    assert order.input("query", "max").example == "10"
    assert names(order, "cookie") == {"sess"}
    assert order.source == "starlette"


def test_header_alias_conversion(api_surface: Surface) -> None:
    headers = ep(api_surface, "GET", "/headers")
    assert names(headers, "header") == {"user-agent", "x_raw_name", "X-Custom-Alias"}
    # Headers read by dependencies, declared or through `request.headers`.
    assert names(ep(api_surface, "POST", "/orders/{order_id}"), "header") == {"x-tenant", "X-Request-Id"}


def test_nested_pydantic_body(api_surface: Surface) -> None:
    order = ep(api_surface, "POST", "/orders/{order_id}")
    assert names(order, "json") == {"name", "address.city", "address.zip", "items[].sku", "items[].qty",
                                    "tags[]", "colour", "meta"}
    assert order.input("json", "items[].qty").kind == "integer"
    assert order.input("json", "colour").example == "red"
    assert order.input("json", "meta").kind == "object"
    assert order.input("json", "name").required
    assert order.consumes == ["application/json"]
    # `await request.json()` next to the declared model is the same body, not a raw one.
    assert order.input("body", "body") is None


def test_embedded_body_params_are_prefixed(api_surface: Surface) -> None:
    assert names(ep(api_surface, "POST", "/embedded"), "json") == {
        "order.name", "order.address.city", "order.address.zip", "order.items[].sku", "order.items[].qty",
        "order.tags[]", "order.colour", "order.meta", "note"}


def test_self_referential_model_terminates(api_surface: Surface) -> None:
    tree = names(ep(api_surface, "POST", "/tree"), "json")
    assert "label" in tree and "children[].label" in tree


def test_form_and_file_params(api_surface: Surface) -> None:
    upload = ep(api_surface, "POST", "/upload")
    assert upload.input("multipart", "document").kind == "file"
    assert upload.input("multipart", "title").kind == "string"
    assert upload.consumes == ["multipart/form-data"]
    login = ep(api_surface, "POST", "/login")
    assert names(login, "form") == {"username", "password"}
    assert login.consumes == ["application/x-www-form-urlencoded"]


def test_security_schemes_declare_credentials(api_surface: Surface) -> None:
    private = ep(api_surface, "GET", "/private")
    assert names(private, "header") == {"Authorization"}
    assert names(private, "cookie") == {"session"}


def test_path_convertor_and_enum_example(api_surface: Surface) -> None:
    files = ep(api_surface, "GET", "/files/{file_path}")
    assert files.input("path", "file_path") is not None
    assert files.input("query", "colour").example == "blue"


def test_starlette_routes_mounts_and_ast(tmp_path) -> None:
    app = GZipMiddleware(build_starlette(tmp_path))
    surface = discover_surface(Target.from_app(app), crawl=False)
    home = ep(surface, "POST", "/")
    assert names(home, "query") == {"q"} and names(home, "cookie") == {"c"}
    assert names(home, "json") == {"name"}
    assert names(ep(surface, "GET", "/"), "json") == set()  # a GET carries no body
    assert names(ep(surface, "POST", "/form"), "form") == {"field"}
    users = ep(surface, "GET", "/api/v1/users/{uid}")
    assert users.input("path", "uid").kind == "integer"
    assert names(users, "query") == {"q"}
    item = ep(surface, "GET", "/items/{item_id}")
    assert names(item, "header") == {"X-Item"}
    assert surface.get("DELETE", "/items/{item_id}") is not None
    assert surface.get("POST", "/items/{item_id}") is None
    assert ep(surface, "GET", "/fastapi/headers").input("header", "user-agent") is not None
    assert ep(surface, "GET", "/static/{path}") is not None
    assert names(ep(surface, "GET", "/legacy/old"), "query") == {"ref"}


def test_fastapi_surface_is_deterministic() -> None:
    first = introspect_app(build_api())
    second = introspect_app(build_api())
    assert [(e.key, e.inputs) for e in first.sorted()] == [(e.key, e.inputs) for e in second.sorted()]


def test_crawl_of_asgi_target(tmp_path) -> None:
    async def page(request):
        html = "<a href='/next?x=1'>n</a><form method=post action='/send'><input name='msg'></form>"
        return PlainTextResponse(html, media_type="text/html")

    app = Starlette(routes=[Route("/", page), Route("/next", page)])
    surface = discover_surface(Target.from_app(app))
    assert ep(surface, "GET", "/next").input("query", "x").example == "1"
    assert ep(surface, "POST", "/send").input("form", "msg").source == "crawl"
