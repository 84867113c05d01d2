"""Stateful fuzzing (fuzz.stateful, fuzz.state-*): demo flaw, hardened twin, third-party CRUD apps, links."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from flask import Flask, jsonify, request
from pydantic import BaseModel

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.fuzz.stateful import Resource, evaluate, linked_resources, observed_id, observed_resources
from bastion.identity.session import RoleSession
from bastion.surface.discover import discover_surface
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.surface.openapi import parse_openapi_document
from bastion.target.exchange import Exchange
from bastion.target.target import Target

STATE_CHECKS = ["fuzz.stateful", "fuzz.state-delete", "fuzz.state-update", "fuzz.state-access"]


def _chain(finding: Any) -> str:
    return next(e.content for e in finding.evidence if e.summary.startswith("minimal sequence"))


def _no_errors(result: ScanResult) -> None:
    assert not [c.errors for c in result.checks if c.errors]


# --- the demo ------------------------------------------------------------------------------------


def test_each_state_flaw_fires_with_a_minimal_chain(scan_demo) -> None:
    result = scan_demo(flaws="fuzz_state_update_lost,fuzz_state_crash_after_update,fuzz_state_foreign_read",
                       checks=STATE_CHECKS)
    _no_errors(result)
    found = {f.check_id: (f.location.method, f.location.path, _chain(f)) for f in result.findings}
    assert found == {
        "fuzz.state-update": ("PUT", "/api/labels/{label_id}",
                              "create as alice (201) → update as alice (200) → read as alice (200)"),
        "fuzz.stateful": ("GET", "/api/drafts/{draft_id}",
                          "create as alice (201) → update as alice (200) → read as alice (500)"),
        "fuzz.state-access": ("GET", "/api/memos/{memo_id}", "create as alice (201) → read as bob (200)"),
    }


def test_delete_ineffective_fires_on_the_demo_flaw(scan_demo) -> None:
    result = scan_demo(flaws="fuzz_state_delete_ineffective", checks=STATE_CHECKS)
    _no_errors(result)
    [found] = result.findings
    assert found.check_id == "fuzz.state-delete" and found.confidence.value == "confirmed"
    assert (found.location.method, found.location.path) == ("DELETE", "/api/bookmarks/{bookmark_id}")
    # Shrunk to the three steps that matter.
    assert _chain(found) == "create as alice (201) → delete as alice (204) → read as alice (200)"
    curl = found.reproduction.curl
    assert curl.count("curl ") == 3 and "ID=$(" in curl and "/api/bookmarks/$ID" in curl
    test_source = found.reproduction.pytest
    assert "def test_" in test_source and "_created_id(r, '$response.body#/id')" in test_source
    compile(test_source, "repro.py", "exec")


def test_state_checks_are_silent_on_the_hardened_demo(scan_demo) -> None:
    result = scan_demo(flaws="none", checks=STATE_CHECKS)
    _no_errors(result)
    assert [(f.check_id, f.title) for f in result.findings] == []


# --- third-party apps ----------------------------------------------------------------------------


class NewItem(BaseModel):
    name: str


def _fastapi_crud(delete_works: bool) -> FastAPI:
    """A small FastAPI CRUD service (no auth); the flawed variant's DELETE only flags the row."""
    app = FastAPI()
    rows: dict[int, dict[str, Any]] = {}

    @app.post("/items", status_code=201)
    def create(item: NewItem) -> Any:
        ident = len(rows) + 1
        rows[ident] = {"id": ident, "name": item.name, "gone": False}
        return {"id": ident, "name": rows[ident]["name"]}

    @app.get("/items/{item_id}")
    def read(item_id: int) -> Any:
        row = rows.get(item_id)
        if row is None or (row["gone"] and delete_works):
            return JSONResponse({"detail": "not found"}, status_code=404)
        return {"id": row["id"], "name": row["name"]}

    @app.delete("/items/{item_id}", status_code=204)
    def delete(item_id: int) -> Response:
        if item_id not in rows:
            return JSONResponse({"detail": "not found"}, status_code=404)
        rows[item_id]["gone"] = True
        return Response(status_code=204)

    return app


def _scan(app: Any, **options: Any) -> ScanResult:
    target = Target.from_app(app, spec="tests.fuzz:app", base_url="http://testserver")
    surface = discover_surface(target, crawl=False)
    opts = {"checks": STATE_CHECKS, "seed": 5, "fuzz_budget": 24, **options}
    return run_scan(target, surface, ScanOptions(**opts))


def test_fastapi_ineffective_delete_found_and_correct_crud_silent() -> None:
    flawed = _scan(_fastapi_crud(delete_works=False))
    _no_errors(flawed)
    assert [(f.check_id, f.location.method, f.location.path) for f in flawed.findings] == [
        ("fuzz.state-delete", "DELETE", "/items/{item_id}")]
    assert _chain(flawed.findings[0]).count("→") == 2
    safe = _scan(_fastapi_crud(delete_works=True))
    _no_errors(safe)
    assert safe.findings == []


def _flask_notes(*, lose_updates: bool, check_owner: bool) -> Flask:
    """Notes with a header-token login; flaws: updates not saved, reads not scoped to the owner."""
    app = Flask("notes_service")
    notes: dict[str, dict[str, Any]] = {}

    def user() -> str | None:
        return {"t-alice": "alice", "t-bob": "bob"}.get(request.headers.get("X-Token", ""))

    def own(nid: str) -> Any:
        note = notes.get(nid)
        if note is None or (check_owner and note["owner"] != user()):
            return None
        return note

    @app.post("/api/notes")
    def create() -> Any:
        if user() is None:
            return jsonify(error="login"), 401
        body = request.get_json(silent=True) or {}
        text = body.get("text")
        if not isinstance(text, str):
            return jsonify(error="text"), 400
        nid = f"n{len(notes) + 1}"
        notes[nid] = {"owner": user(), "text": text}
        return jsonify(note={"note_id": nid, "text": text}), 201, {"Location": f"/api/notes/{nid}"}

    @app.get("/api/notes/<nid>")
    def read(nid: str) -> Any:
        note = own(nid) if user() else None
        return (jsonify(text=note["text"]), 200) if note else (jsonify(error="not found"), 404)

    @app.put("/api/notes/<nid>")
    def update(nid: str) -> Any:
        note = own(nid) if user() else None
        if note is None:
            return jsonify(error="not found"), 404
        text = (request.get_json(silent=True) or {}).get("text")
        if not isinstance(text, str):
            return jsonify(error="text"), 400
        if not lose_updates:
            note["text"] = text
        return jsonify(ok=True)

    return app


_ROLES = {"alice": RoleSession("alice", headers={"X-Token": "t-alice"}),
          "bob": RoleSession("bob", headers={"X-Token": "t-bob"})}
_POLICY = {"GET /api/notes/{nid}": ["owner"], "PUT /api/notes/{nid}": ["owner"]}


def test_flask_lost_update_found_with_a_minimal_chain() -> None:
    result = _scan(_flask_notes(lose_updates=True, check_owner=True), roles=dict(_ROLES), access=dict(_POLICY))
    _no_errors(result)
    [found] = result.findings
    assert (found.check_id, found.location.method) == ("fuzz.state-update", "PUT")
    assert _chain(found) == "create as alice (201) → update as alice (200) → read as alice (200)"
    assert "text" in found.title and found.severity.value == "low"
    # Hypothesis shrank the bodies too: the canary and the one-letter tag of each body, nothing else.
    bodies = json.loads(next(e.content for e in found.evidence if e.summary.startswith("generated bodies")))
    created, updated = bodies["create as alice"]["json:text"], bodies["update as alice"]["json:text"]
    assert created[:-1] == updated[:-1] and (created[-1], updated[-1]) == ("c", "u")


def test_flask_foreign_read_found_only_where_the_policy_covers_the_route() -> None:
    app = _flask_notes(lose_updates=False, check_owner=False)
    result = _scan(app, roles=dict(_ROLES), access=dict(_POLICY))
    _no_errors(result)
    access = [f for f in result.findings if f.check_id == "fuzz.state-access"]
    assert len(access) == 1 and "bob" in access[0].title and access[0].severity.value == "high"
    # Without a policy for the item route the ownership oracle stays out (the authz checks own that).
    silent = _scan(_flask_notes(lose_updates=False, check_owner=False), roles=dict(_ROLES))
    assert silent.findings == []
    correct = _scan(_flask_notes(lose_updates=False, check_owner=True), roles=dict(_ROLES), access=dict(_POLICY))
    _no_errors(correct)
    assert correct.findings == []


def test_same_seed_same_findings_and_budget_respected() -> None:
    def run(seed: int, budget: int = 24) -> ScanResult:
        return _scan(_flask_notes(lose_updates=True, check_owner=True), roles=dict(_ROLES), access=dict(_POLICY),
                     seed=seed, fuzz_budget=budget)

    def dump(result: ScanResult) -> str:
        return json.dumps([f.model_dump(mode="json") for f in result.findings], sort_keys=True)

    assert dump(run(11)) == dump(run(11))
    # A correct service: the search spends exactly its budget (every step of every chain counts).
    safe = _scan(_flask_notes(lose_updates=False, check_owner=True), roles=dict(_ROLES), fuzz_budget=7)
    assert safe.findings == [] and sum(c.requests for c in safe.checks) == 7


def test_budget_zero_disables_stateful_fuzzing() -> None:
    result = _scan(_fastapi_crud(delete_works=False), fuzz_budget=0)
    assert result.findings == [] and result.requests == 0


# --- discovery and runtime expressions -----------------------------------------------------------


def _ep(method: str, path: str) -> EntryPoint:
    params = [Input(location="path", name=p.strip("{}"), kind="string") for p in path.split("/") if p.startswith("{")]
    return EntryPoint(method=method, path=path, inputs=params, source="flask")


def test_observed_resources_pair_a_collection_with_its_item_routes() -> None:
    surface = Surface(entry_points=[_ep("POST", "/api/things"), _ep("GET", "/api/things/{tid}"),
                                    _ep("PATCH", "/api/things/{tid}"), _ep("GET", "/api/things/{tid}/parts/{pid}"),
                                    _ep("POST", "/api/other"), _ep("DELETE", "/api/other/{oid}")])
    [res] = observed_resources(surface)
    assert res.create.path == "/api/things" and res.param == "tid"
    assert {k: v.method for k, v in res.items.items()} == {"read": "GET", "update": "PATCH"}


_LINKED_DOC = {
    "openapi": "3.0.3", "info": {"title": "t", "version": "1"},
    "paths": {
        "/orders": {"post": {"operationId": "createOrder", "responses": {"201": {
            "description": "created",
            "links": {"GetOrder": {"operationId": "getOrder", "parameters": {"orderRef": "$response.body#/data/ref"}},
                      "DropOrder": {"operationId": "dropOrder",
                                    "parameters": {"path.orderRef": "$response.body#/data/ref"}}}}}}},
        "/orders/{orderRef}": {
            "get": {"operationId": "getOrder", "responses": {"200": {"description": "ok"}}},
            "delete": {"operationId": "dropOrder", "responses": {"204": {"description": "gone"}}}},
    },
}


def test_openapi_links_give_the_id_expression_and_item_operations() -> None:
    doc = parse_openapi_document(json.dumps(_LINKED_DOC).encode(), name="openapi.json")
    surface = Surface(entry_points=[_ep("POST", "/orders"), _ep("GET", "/orders/{ref}"),
                                    _ep("DELETE", "/orders/{ref}")])
    [res] = linked_resources([doc], surface)
    assert res.origin == "openapi links" and res.param == "ref" and res.expressions == ("$response.body#/data/ref",)
    assert set(res.items) == {"read", "delete"}
    ex = _exchange(201, {"data": {"ref": "ord-7", "total": 3}})
    assert observed_id(ex, res) == ("ord-7", "$response.body#/data/ref")


def _exchange(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Exchange:
    import httpx

    ex = Exchange(httpx.Request("POST", "http://testserver/x"))
    ex.status, ex.body = status, json.dumps(body).encode()
    ex.headers = [("content-type", "application/json"), *(headers or [])]
    return ex


def test_runtime_expressions_and_observed_ids() -> None:
    ex = _exchange(201, {"item": {"item_id": 9}, "list": [{"id": "a"}]}, [("Location", "/api/items/42/")])
    assert evaluate("$response.body#/item/item_id", ex) == "9"
    assert evaluate("$response.body#/list/0/id", ex) == "a"
    assert evaluate("$response.body#/missing", ex) is None
    assert evaluate("$response.header.Location", ex) == "42"
    item = _ep("GET", "/api/items/{item_id}")
    res = Resource(_ep("POST", "/api/items"), {"read": item}, "item_id", (), "observed ids")
    assert observed_id(ex, res) == ("42", "$response.header.Location")  # the Location header first
    nested = _exchange(201, {"item": {"item_id": 9, "name": "x"}})
    assert observed_id(nested, res) == ("9", "$response.body#/item/item_id")


def test_one_resource_with_two_flaws_reports_both() -> None:
    result = _scan(_flask_notes(lose_updates=True, check_owner=False), roles=dict(_ROLES), access=dict(_POLICY))
    _no_errors(result)
    assert sorted(f.check_id for f in result.findings) == ["fuzz.state-access", "fuzz.state-update"]
