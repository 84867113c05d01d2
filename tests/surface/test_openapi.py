"""OpenAPI 3.0/3.1 import: entry points, inputs, `$ref` handling and hostile documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion import safeyaml
from bastion.errors import ConfigError, InputFileError
from bastion.surface.model import EntryPoint
from bastion.surface.openapi import (
    MAX_BODY_DEPTH,
    MAX_INPUTS_PER_OPERATION,
    load_openapi,
    load_openapi_bytes,
    load_openapi_document,
    pointer_of,
    response_schema,
)
from bastion.surface.requests import build_request

DATA = Path(__file__).parent.parent / "data" / "openapi"


def inputs(ep: EntryPoint) -> dict[tuple[str, str], tuple[str, bool, str | None]]:
    return {(i.location, i.name): (i.kind, i.required, i.example) for i in ep.inputs}


def write_spec(tmp_path: Path, spec: dict[str, Any] | str, name: str = "spec.json") -> Path:
    path = tmp_path / name
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return path


def minimal(paths: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths or {}, **extra}


@pytest.fixture(scope="module")
def shop() -> dict[str, EntryPoint]:
    return {ep.key: ep for ep in load_openapi(DATA / "shop-3.0.yaml").entry_points}


def test_operations_become_entry_points_under_the_server_prefix(shop: dict[str, EntryPoint]) -> None:
    assert sorted(shop) == sorted([
        "GET /api/v1/items/{item_id}", "DELETE /api/v1/items/{item_id}", "POST /api/v1/orders",
        "POST /api/v1/upload", "PUT /api/v1/import", "POST /api/v1/trees", "GET /api/v1/paths~1odd"])
    assert all(ep.source == "openapi" for ep in shop.values())
    assert shop["GET /api/v1/items/{item_id}"].line == 12


def test_parameters_merge_path_and_operation_level(shop: dict[str, EntryPoint]) -> None:
    got = inputs(shop["GET /api/v1/items/{item_id}"])
    assert got == {
        ("path", "item_id"): ("integer", True, "7"),  # from a $ref'd component parameter
        ("header", "X-Trace"): ("string", True, "abc"),  # operation level overrides path level
        ("query", "verbose"): ("boolean", False, "false"),  # example from the default
        ("cookie", "session"): ("string", False, None),
    }  # `Accept` is ignored, as OpenAPI says
    assert inputs(shop["DELETE /api/v1/items/{item_id}"])[("header", "X-Trace")] == ("string", False, None)


def test_json_body_is_flattened_with_nested_names(shop: dict[str, EntryPoint]) -> None:
    ep = shop["POST /api/v1/orders"]
    got = {k: v for k, v in inputs(ep).items() if k[0] == "json"}
    assert got == {
        ("json", "customer"): ("string", True, None),  # required via allOf, body required
        ("json", "address.city"): ("string", False, "Paris"),
        ("json", "address.zip"): ("string", False, None),
        ("json", "items[].sku"): ("string", False, None),
        ("json", "items[].qty"): ("integer", False, "1"),
        ("json", "tags[]"): ("string", False, None),
        ("json", "paid"): ("boolean", False, None),
        ("json", "total"): ("number", False, None),
        ("json", "weird/name"): ("string", False, None),
    }  # readOnly `id` is not an input
    assert ep.consumes == ["application/json", "application/x-www-form-urlencoded"]
    assert ep.produces == ["application/json"]


def test_form_multipart_and_raw_bodies(shop: dict[str, EntryPoint]) -> None:
    form = {k: v for k, v in inputs(shop["POST /api/v1/orders"]).items() if k[0] == "form"}
    assert form == {("form", "note"): ("string", True, None), ("form", "count"): ("integer", False, "3"),
                    ("form", "meta"): ("object", False, None)}
    assert inputs(shop["POST /api/v1/upload"]) == {
        ("multipart", "title"): ("string", False, None),
        ("multipart", "file"): ("file", False, None),
        ("multipart", "attachments"): ("file", False, None),
    }
    ep = shop["PUT /api/v1/import"]
    assert inputs(ep) == {("body", "body"): ("string", False, "<a/>")}
    assert ep.consumes == ["application/xml", "text/plain"]


def test_self_referencing_schema_stops_at_the_cycle(shop: dict[str, EntryPoint]) -> None:
    assert inputs(shop["POST /api/v1/trees"]) == {
        ("json", "label"): ("string", False, None),
        ("json", "children"): ("array", False, None),
        ("json", "parent"): ("object", False, None),
    }


def test_produces_follows_response_refs(shop: dict[str, EntryPoint]) -> None:
    assert shop["GET /api/v1/items/{item_id}"].produces == ["application/json", "application/problem+json"]


def test_openapi_31_json(tmp_path: Path) -> None:
    [ep] = load_openapi(DATA / "notes-3.1.json").entry_points
    assert ep.key == "PATCH /notes/{id}"
    assert inputs(ep) == {
        ("path", "id"): ("integer", True, None),  # type: [integer, null]
        ("query", "q"): ("object", False, None),  # schema under `content`
        ("query", "lang"): ("string", False, "fr"),  # from `examples`
        ("json", "title"): ("string", False, "hello"),  # JSON Schema `examples` list
        ("json", "body"): ("string", False, None),
        ("json", "archived"): ("boolean", False, None),
    }
    assert ep.consumes == ["application/merge-patch+json"]


def test_imported_entry_points_build_requests(shop: dict[str, EntryPoint]) -> None:
    ep = shop["POST /api/v1/orders"]
    spec = build_request(ep, ep.input("json", "items[].sku"), "X")
    assert spec.json["items"][0]["sku"] == "X"
    assert spec.json["address"] == {"city": "Paris", "zip": "bastion"}
    assert spec.json["tags"] == ["bastion"]


def test_raw_document_and_ref_resolution() -> None:
    doc = load_openapi_document(DATA / "shop-3.0.yaml")
    assert doc.version == "3.0.3"
    node, path = doc.resolve("#/components/schemas/Address")
    assert node["required"] == ["city"] and path == ("components", "schemas", "Address")
    node, _ = doc.resolve("#/paths/~1items~1%7Bitem_id%7D/get")
    assert node["operationId"] == "getItem"
    node, _ = doc.resolve("#/paths/~1paths~01odd")
    assert "get" in node
    schema = response_schema(doc, "GET", "/items/{item_id}", 200)
    assert schema is not None and schema["properties"]["name"] == {"type": "string"}  # $ref followed
    assert response_schema(doc, "GET", "/items/{item_id}", 404) == {"type": "object"}
    assert response_schema(doc, "POST", "/trees", 500) is None  # `default` has no content
    assert response_schema(doc, "GET", "/missing", 200) is None
    assert pointer_of(("paths", "/a~b", 0)) == "/paths/~1a~0b/0"


def test_body_expansion_is_bounded(tmp_path: Path) -> None:
    deep: dict[str, Any] = {"type": "string"}
    for level in range(20):
        deep = {"type": "object", "properties": {f"l{level}": deep}}
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(5000)}}
    spec = minimal({
        "/deep": {"post": {"requestBody": {"content": {"application/json": {"schema": deep}}}}},
        "/wide": {"post": {"requestBody": {"content": {"application/json": {"schema": wide}}}}},
    })
    surface = load_openapi(write_spec(tmp_path, spec))
    [deep_input] = surface.get("POST", "/deep").inputs
    assert deep_input.name.count(".") == MAX_BODY_DEPTH - 1 and deep_input.kind == "object"
    assert len(surface.get("POST", "/wide").inputs) == MAX_INPUTS_PER_OPERATION


def test_exponential_ref_fanout_is_bounded(tmp_path: Path) -> None:
    # Each level refers to the next twice: 2**30 paths if expanded blindly.
    schemas = {f"S{i}": {"type": "object", "properties": {"a": {"$ref": f"#/components/schemas/S{i + 1}"},
                                                          "b": {"$ref": f"#/components/schemas/S{i + 1}"}}}
               for i in range(30)}
    schemas["S30"] = {"type": "string"}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S0"}}}}
    spec = minimal({"/x": {"post": {"requestBody": body}}}, components={"schemas": schemas})
    ep = load_openapi(write_spec(tmp_path, spec)).get("POST", "/x")
    assert 0 < len(ep.inputs) <= MAX_INPUTS_PER_OPERATION


def test_wide_deep_schemas_without_inputs_are_bounded(tmp_path: Path) -> None:
    # 60 properties per level, 6 levels, every leaf readOnly: 60**6 walks if unbounded, no input at all.
    schemas: dict[str, Any] = {"S6": {"type": "string", "readOnly": True}}
    for i in range(5, -1, -1):
        child = {"$ref": f"#/components/schemas/S{i + 1}"}
        schemas[f"S{i}"] = {"type": "object", "properties": {f"p{j}": child for j in range(60)}}
    fan = {"allOf": [{"$ref": "#/components/schemas/S0"}] * 40}
    body = {"content": {"application/json": {"schema": fan}}}
    spec = minimal({"/x": {"post": {"requestBody": body}}}, components={"schemas": schemas})
    ep = load_openapi(write_spec(tmp_path, spec)).get("POST", "/x")
    assert ep.inputs == [] and ep.consumes == ["application/json"]


def test_undeclared_path_parameters_are_still_inputs(tmp_path: Path) -> None:
    spec = minimal({"/u/{name}/files/{fid}": {"get": {"responses": {"200": {"description": "ok"}}}}})
    ep = load_openapi(write_spec(tmp_path, spec)).entry_points[0]
    assert inputs(ep) == {("path", "name"): ("string", True, None), ("path", "fid"): ("string", True, None)}


def test_unknown_keys_and_extensions_are_ignored(tmp_path: Path) -> None:
    spec = minimal({"/a": {"x-internal": True, "summary": "s", "get": {"x-rate": 5, "responses": {}}}},
                   **{"x-logo": {"url": "x"}, "webhooks": {}})
    assert [ep.key for ep in load_openapi(write_spec(tmp_path, spec)).entry_points] == ["GET /a"]


# --- hostile documents ---------------------------------------------------------------------------

def error_for(path: Path) -> InputFileError:
    with pytest.raises(InputFileError) as info:
        load_openapi(path)
    assert info.value.file == str(path)
    assert isinstance(info.value, ConfigError)
    return info.value


@pytest.mark.parametrize("spec, key, message", [
    (minimal({"/a": {"get": {"parameters": [{"$ref": "#/components/parameters/P"}]}}},
             components={"parameters": {"P": {"$ref": "#/components/parameters/P"}}}),
     "/components/parameters/P/$ref", "cyclic $ref chain"),
    (minimal({"/a": {"get": {"parameters": [{"$ref": "#/components/parameters/A"}]}}},
             components={"parameters": {"A": {"$ref": "#/components/parameters/B"},
                                         "B": {"$ref": "#/components/parameters/A"}}}),
     "/components/parameters/B/$ref", "cyclic $ref chain"),
    (minimal({"/a": {"get": {"parameters": [{"$ref": "common.yaml#/P"}]}}}),
     "/paths/~1a/get/parameters/0/$ref", "external $ref 'common.yaml#/P'"),
    (minimal({"/a": {"get": {"parameters": [{"$ref": "https://evil.example/p.json"}]}}}),
     "/paths/~1a/get/parameters/0/$ref", "external $ref"),
    (minimal({"/a": {"get": {"parameters": [{"$ref": "#/components/parameters/Nope"}]}}}),
     "/paths/~1a/get/parameters/0/$ref", "points to nothing"),
    (minimal({"/a": {"get": {"parameters": {"name": "x"}}}}), "/paths/~1a/get/parameters", "must be a list"),
    (minimal({"/a": {"get": {"parameters": [{"in": "query"}]}}}), "/paths/~1a/get/parameters/0", "'name'"),
    (minimal({"/a": {"get": {"parameters": [{"name": "x", "in": "body"}]}}}), "/paths/~1a/get/parameters/0",
     "'in' must be"),
    (minimal({"/a": {"get": "nope"}}), "/paths/~1a/get", "operation must be a mapping"),
    (minimal({"/a": {"post": {"requestBody": {"content": ["application/json"]}}}}),
     "/paths/~1a/post/requestBody/content", "mapping of media types"),
    (minimal({"/a": {"post": {"requestBody": {"content": {"application/json": {"schema": "object"}}}}}}),
     "/paths/~1a/post/requestBody/content/application~1json/schema", "schema must be a mapping"),
    (minimal({"/a": {"get": {"responses": [200]}}}), "/paths/~1a/get/responses", "mapping of status codes"),
    (minimal({"a": {}}), "/paths/a", "must start with '/'"),
    ({**minimal(), "paths": ["/a"]}, "/paths", "'paths' must be a mapping"),
    ({"swagger": "1.2", "paths": {}}, "/swagger", "Swagger version"),  # 2.0 is converted (surface/swagger2.py)
    ({"openapi": 3.0, "paths": {}}, "/openapi", "openapi: 3.0.x"),
])
def test_invalid_documents_name_the_pointer(tmp_path: Path, spec: dict[str, Any], key: str,
                                            message: str) -> None:
    err = error_for(write_spec(tmp_path, spec))
    assert err.key == key, str(err)
    assert message in err.reason, str(err)


def test_yaml_errors_carry_line_numbers(tmp_path: Path) -> None:
    text = "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      parameters:\n" \
           "        - {name: q, in: query}\n        - {in: query}\n"
    err = error_for(write_spec(tmp_path, text, "spec.yaml"))
    assert (err.line, err.key) == (8, "/paths/~1a/get/parameters/1")


def test_huge_document_is_refused_by_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)

    def refuse_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("opened a file that is over the size limit")

    monkeypatch.setattr(Path, "open", refuse_open)
    assert "larger than the limit of 10485760" in error_for(big).reason
    monkeypatch.undo()
    small = write_spec(tmp_path, minimal())
    with pytest.raises(InputFileError, match="larger than the limit of 10"):
        load_openapi(small, max_bytes=10)


def test_yaml_alias_bomb_is_refused_before_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object, node: object) -> None:
        raise AssertionError("constructed before the limit was checked")

    monkeypatch.setattr(safeyaml._CheckedConstructor, "construct_document", refuse)
    lines = ["openapi: 3.0.0", "info: {title: t, version: '1'}", "paths: {}", "x-bomb:",
             "  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    prev = "a"
    for name in "bcdefghijk":
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
        prev = name
    err = error_for(write_spec(tmp_path, "\n".join(lines) + "\n", "bomb.yaml"))
    assert "aliases" in err.reason and err.line is not None


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    deep_json = '{"openapi": "3.0.0", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert "nesting deeper" in error_for(write_spec(tmp_path, deep_json, "deep.json")).reason
    deep_ok_for_parser = '{"openapi": "3.0.0", "x": ' + "[" * 100 + "]" * 100 + "}"
    err = error_for(write_spec(tmp_path, deep_ok_for_parser, "deep2.json"))
    assert "nesting deeper than 64" in err.reason
    deep_yaml = "openapi: 3.0.0\nx: " + "[" * 100 + "]" * 100 + "\n"
    err = error_for(write_spec(tmp_path, deep_yaml, "deep.yaml"))
    assert "nesting deeper" in err.reason and err.line == 2


@pytest.mark.parametrize("content, message", [
    (b"", "file is empty"),
    (b"  \n\n", "file is empty"),
    (b"- openapi\n- paths\n", "got list"),
    (b"[1, 2]", "got list"),
    (b'{"openapi": "3.0.0", "paths": {}, "paths": {}}', "duplicate key 'paths'"),
    (b"openapi: 3.0.0\npaths: {}\npaths: {}\n", "duplicate key 'paths'"),
    (b'{"openapi": "3.0.0", "paths": {', "invalid JSON"),
    (b"openapi: 3.0.0\npaths: [\n", "invalid YAML"),
    (b"openapi: 3.0.0\ninfo: {title: caf\xe9}\n", "not valid UTF-8"),
    ("openapi: 3.0.0\n".encode("utf-16"), "UTF-16"),
    (b"openapi: 3.0.0\nx: !!python/object/apply:os.system [id]\n", "could not determine a constructor"),
])
def test_malformed_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "spec.txt"
    path.write_bytes(content)
    err = error_for(path)
    assert message in err.reason, str(err)


def test_missing_file(tmp_path: Path) -> None:
    assert "file not found" in error_for(tmp_path / "none.yaml").reason


def test_real_world_shaped_yaml_roundtrip(tmp_path: Path) -> None:
    # The same document as YAML and as JSON gives the same surface.
    data = yaml.safe_load((DATA / "shop-3.0.yaml").read_text())
    as_json = load_openapi(write_spec(tmp_path, data))
    as_yaml = load_openapi(DATA / "shop-3.0.yaml")
    assert [(e.key, e.inputs, e.consumes, e.produces) for e in as_json.entry_points] == \
           [(e.key, e.inputs, e.consumes, e.produces) for e in as_yaml.entry_points]


def test_documents_in_memory() -> None:
    raw = (DATA / "notes-3.1.json").read_bytes()
    [ep] = load_openapi_bytes(raw, name="http://127.0.0.1:8000/openapi.json").entry_points
    assert ep.key == "PATCH /notes/{id}"
    with pytest.raises(InputFileError, match="larger than the limit") as info:
        load_openapi_bytes(raw, name="served.json", max_bytes=100)
    assert info.value.file == "served.json"
    with pytest.raises(InputFileError, match="cyclic") as info:
        load_openapi_bytes(b'{"openapi": "3.1.0", "paths": {"/a": {"$ref": "#/paths/~1a"}}}',
                           name="served.json")
    assert info.value.key == "/paths/~1a/$ref"
