"""Response schemas from OpenAPI: inlined per status, bounded on cyclic, deep and huge documents."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from bastion.report.merge import _surface as surface_from_shard
from bastion.surface.model import EntryPoint, Surface
from bastion.surface.openapi import (
    MAX_RESPONSE_DEPTH,
    MAX_RESPONSE_DOCUMENT_NODES,
    MAX_RESPONSE_SCHEMA_NODES,
    load_openapi_bytes,
)


def _doc(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": paths,
                       "components": {"schemas": schemas or {}}}).encode()


def _get(responses: dict[str, Any]) -> dict[str, Any]:
    return {"/users/{id}": {"get": {"responses": responses}}}


def _json(schema: Any) -> dict[str, Any]:
    return {"description": "ok", "content": {"application/json": {"schema": schema}}}


def _only_ep(raw: bytes) -> EntryPoint:
    [ep] = load_openapi_bytes(raw, name="spec.json").entry_points
    return ep


def _nodes(schema: Any) -> int:
    if isinstance(schema, dict):
        return 1 + sum(_nodes(v) for v in schema.values())
    if isinstance(schema, list):
        return sum(_nodes(v) for v in schema)
    return 0


def test_refs_are_inlined_per_status_and_only_json_bodies_kept() -> None:
    user = {"type": "object", "additionalProperties": False, "description": "dropped",
            "properties": {"id": {"type": "integer"},
                           "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}}}}
    tag = {"type": "object", "properties": {"label": {"type": "string", "example": "x"}}}
    raw = _doc(_get({"200": _json({"$ref": "#/components/schemas/User"}), "404": {"description": "none"},
                     "default": {"description": "err", "content": {"application/problem+json": {"schema": {
                         "type": "object", "properties": {"title": {"type": "string"}}}}}},
                     "204": {"description": "csv", "content": {"text/csv": {"schema": {"type": "string"}}}}}),
               {"User": user, "Tag": tag})
    ep = _only_ep(raw)
    assert ep.response_schemas == {
        "200": {"type": "object", "additionalProperties": False, "properties": {
            "id": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"}}}}}},
        "default": {"type": "object", "properties": {"title": {"type": "string"}}}}


def test_cyclic_refs_stop_at_the_cycle() -> None:
    ref = {"$ref": "#/components/schemas/Node"}
    node = {"type": "object", "properties": {"name": {"type": "string"},
                                             "children": {"type": "array", "items": ref}, "parent": ref}}
    ep = _only_ep(_doc(_get({"200": _json({"$ref": "#/components/schemas/Node"})}), {"Node": node}))
    schema = ep.response_schemas["200"]
    assert schema["properties"]["parent"] == {}  # the recursion is cut: an open schema
    assert schema["properties"]["children"]["items"] == {}
    json.dumps(ep.response_schemas)  # plain data, no self-references


def test_a_pure_ref_loop_costs_that_status_its_schema_not_the_document() -> None:
    raw = _doc(_get({"200": _json({"$ref": "#/components/schemas/A"}), "201": _json({"type": "object"})}),
               {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}})
    assert _only_ep(raw).response_schemas == {"201": {"type": "object"}}


def test_deep_schemas_are_cut_at_the_depth_limit() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(25):  # 50 levels of nesting: under the document limit, over the response-depth limit
        schema = {"type": "object", "properties": {"x": schema}}
    inlined = _only_ep(_doc(_get({"200": _json(schema)}))).response_schemas["200"]
    depth = 0
    while inlined.get("properties"):
        inlined, depth = inlined["properties"]["x"], depth + 1
    assert depth == MAX_RESPONSE_DEPTH + 1 and inlined == {}


def test_diamond_refs_stay_within_the_node_budget() -> None:
    # Level i has ten properties all pointing at level i+1: 10**12 nodes if inlined naively.
    schemas = {f"L{i}": {"type": "object", "properties": {f"p{j}": {"$ref": f"#/components/schemas/L{i + 1}"}
                                                          for j in range(10)}} for i in range(12)}
    schemas["L12"] = {"type": "string"}
    paths = {f"/r{k}": {"get": {"responses": {"200": _json({"$ref": "#/components/schemas/L0"})}}} for k in range(60)}
    surface = load_openapi_bytes(_doc(paths, schemas), name="spec.json")
    sizes = [_nodes(ep.response_schemas.get("200", {})) for ep in surface.entry_points]
    assert max(sizes) <= 2 * MAX_RESPONSE_SCHEMA_NODES
    assert sum(sizes) <= 2 * MAX_RESPONSE_DOCUMENT_NODES + 2 * MAX_RESPONSE_SCHEMA_NODES
    assert any(not ep.response_schemas for ep in surface.entry_points)  # the document budget ran out


def test_odd_values_in_response_schemas_are_ignored_not_fatal() -> None:
    raw = _doc(_get({"200": _json({"type": 7, "properties": ["x"], "required": "id", "items": True,
                                   "allOf": {"x": 1}}),
                     "201": {"description": "x", "content": {"application/json": {"schema": True}}},
                     "202": {"description": "x", "content": "nope"}}))
    assert _only_ep(raw).response_schemas == {"200": {}, "201": {}}


def test_schemas_survive_merging_serialising_and_shard_files() -> None:
    ep = _only_ep(_doc(_get({"200": _json({"type": "object", "properties": {"id": {"type": "integer"}}})})))
    merged = Surface(entry_points=[EntryPoint("GET", "/users/{id}", source="flask")])
    merged.add(ep)
    assert merged.entry_points[0].response_schemas == ep.response_schemas
    data = json.loads(json.dumps([dataclasses.asdict(e) for e in merged.entry_points]))
    [back] = surface_from_shard(data).entry_points
    assert back.response_schemas == ep.response_schemas and back.key == ep.key
