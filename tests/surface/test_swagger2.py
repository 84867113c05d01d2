"""Swagger 2.0 documents (flasgger, flask-restx, connexion) become the same entry points as OpenAPI 3 ones."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bastion.errors import InputFileError
from bastion.surface.openapi import load_openapi_bytes
from bastion.surface.swagger2 import convert_swagger2

SWAGGER: dict[str, Any] = {
    "swagger": "2.0", "info": {"title": "Books", "version": "1"}, "basePath": "/api",
    "consumes": ["application/json"],
    "parameters": {"limit": {"name": "limit", "in": "query", "type": "integer", "x-example": 5},
                   "book": {"name": "payload", "in": "body", "required": True,
                            "schema": {"$ref": "#/definitions/Book"}}},
    "definitions": {"Book": {"type": "object", "required": ["title"],
                             "properties": {"title": {"type": "string", "example": "Dune"},
                                            "owner": {"$ref": "#/definitions/User"}}},
                    "User": {"type": "object", "properties": {"name": {"type": "string"}}}},
    "paths": {
        "/books": {"get": {"parameters": [{"$ref": "#/parameters/limit"}],
                           "responses": {"200": {"description": "ok", "schema": {
                               "type": "array", "items": {"$ref": "#/definitions/Book"}}}}},
                   "post": {"parameters": [{"$ref": "#/parameters/book"}], "responses": {"201": {"description": ""}}}},
        "/books/{book_id}": {"parameters": [{"name": "book_id", "in": "path", "required": True, "type": "integer"}],
                             "put": {"consumes": ["application/x-www-form-urlencoded"],
                                     "parameters": [{"name": "title", "in": "formData", "type": "string"}],
                                     "responses": {"204": {"description": ""}}}},
        "/covers": {"post": {"consumes": ["multipart/form-data"],
                             "parameters": [{"name": "image", "in": "formData", "type": "file", "required": True},
                                            {"name": "X-Trace", "in": "header", "type": "string"}],
                             "responses": {"default": {"description": ""}}}},
    },
}


def _surface(doc: dict[str, Any]) -> Any:
    return load_openapi_bytes(json.dumps(doc).encode(), name="swagger.json")


def test_paths_parameters_bodies_and_refs_are_converted() -> None:
    surface = _surface(SWAGGER)
    listing = surface.get("GET", "/api/books")
    assert listing is not None and listing.input("query", "limit").example == "5"
    create = surface.get("POST", "/api/books")
    assert create is not None
    assert {i.name for i in create.inputs if i.location == "json"} >= {"title", "owner.name"}
    assert create.input("json", "title").example == "Dune"
    update = surface.get("PUT", "/api/books/{book_id}")
    assert update is not None and update.input("path", "book_id") is not None
    assert update.input("form", "title") is not None
    covers = surface.get("POST", "/api/covers")
    assert covers is not None and covers.input("multipart", "image") is not None
    assert covers.input("header", "X-Trace") is not None


def test_yaml_swagger_document_is_accepted() -> None:
    text = ("swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths:\n  /ping:\n    get:\n"
            "      parameters: [{name: q, in: query, type: string}]\n      responses: {'200': {description: ok}}\n")
    ep = load_openapi_bytes(text.encode(), name="swagger.yaml").get("GET", "/ping")
    assert ep is not None and ep.input("query", "q") is not None


@pytest.mark.parametrize(("doc", "key"), [
    ({"swagger": "1.2", "paths": {}}, "/swagger"),
    ({"swagger": "2.0", "paths": ["/a"]}, "/paths"),
    ({"swagger": "2.0", "paths": {"/a": "nope"}}, "/paths//a"),
    ({"swagger": "2.0", "paths": {"/a": {"get": 3}}}, "/paths//a/get"),
    ({"swagger": "2.0", "definitions": [1], "paths": {}}, "/definitions"),
])
def test_hostile_swagger_documents_are_clear_errors(doc: dict[str, Any], key: str) -> None:
    with pytest.raises(InputFileError) as err:
        _surface(doc)
    assert err.value.key == key


def test_cyclic_and_dangling_refs_stop_instead_of_recursing() -> None:
    cyclic = {"swagger": "2.0", "definitions": {"Node": {"type": "object", "properties": {
        "next": {"$ref": "#/definitions/Node"}, "name": {"type": "string"}}}},
        "paths": {"/n": {"post": {"parameters": [{"name": "b", "in": "body",
                                                  "schema": {"$ref": "#/definitions/Node"}}]}}}}
    ep = _surface(cyclic).get("POST", "/n")
    assert ep is not None and ep.input("json", "name") is not None
    dangling = {"swagger": "2.0", "paths": {"/d": {"get": {"parameters": [{"$ref": "#/parameters/missing"}]}}}}
    with pytest.raises(InputFileError, match="points to nothing"):
        _surface(dangling)


def test_garbage_fields_are_ignored_not_fatal() -> None:
    doc = {"swagger": "2.0", "basePath": 7, "consumes": "json", "paths": {"/g": {
        "parameters": "x", "get": {"parameters": [3, {"in": "query"}, {"name": "ok", "in": "query"}],
                                   "responses": [1]}}}}
    ep = _surface(doc).get("GET", "/g")
    assert ep is not None and [i.name for i in ep.inputs] == ["ok"]


def test_deep_documents_are_converted_without_recursion() -> None:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(5000):
        node = {"type": "object", "properties": {"x": node}}
    out = convert_swagger2({"swagger": "2.0", "definitions": {"Deep": node}, "paths": {}}, "deep.json")
    assert out["openapi"].startswith("3.0")


def test_url_scan_finds_a_swagger_document_named_by_its_docs_page() -> None:
    """`/ui/` (Swagger UI) points at `swagger.json` next to it: not a well-known path, found through the page."""
    from flask import Flask, jsonify

    from bastion.surface.crawl import crawl_site
    from bastion.target import Target

    app = Flask(__name__)
    spec = {"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {
        "/users/v1/{username}": {"get": {"parameters": [
            {"name": "username", "in": "path", "required": True, "type": "string", "x-example": "name1"}],
            "responses": {"200": {"description": "ok"}}}}}}

    @app.get("/ui/")
    def docs() -> str:
        return '<div id="ui"></div><script>SwaggerUIBundle({url: "swagger.json", dom_id: "#ui"})</script>'

    @app.get("/ui/swagger.json")
    def swagger():  # type: ignore[no-untyped-def]
        return jsonify(spec)

    @app.get("/users/v1/<username>")
    def user(username: str):  # type: ignore[no-untyped-def]
        return jsonify({"username": username})

    surface = asyncio.run(crawl_site(Target.from_app(app), find_openapi=True))
    ep = surface.get("GET", "/users/v1/{username}")
    assert ep is not None and ep.source == "openapi" and ep.input("path", "username").example == "name1"
