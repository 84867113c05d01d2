"""fuzz.* on small third-party-style apps: a vulnerable one and a safe near-miss of each."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from flask import Flask, jsonify, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.surface.discover import discover_surface
from bastion.target.target import Target


def _flask_app(safe: bool) -> Flask:
    app = Flask("shop_stats")

    def connect() -> sqlite3.Connection:
        db = sqlite3.connect(":memory:")  # per request, like most apps (the sensors hook new connections)
        db.execute("CREATE TABLE items (name TEXT)")
        return db

    @app.post("/api/split")
    def split() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or type(body.get("parts")) is not int:
            return jsonify(error="parts must be a whole number"), 400
        parts = body["parts"]
        if safe and parts < 1:
            return jsonify(error="parts must be at least 1"), 400
        return jsonify(share=100 // parts)

    @app.get("/api/find")
    def find() -> Any:
        name = request.args.get("name", "")
        db = connect()
        try:
            if safe:
                rows = db.execute("SELECT name FROM items WHERE name = ?", (name,)).fetchall()
            else:
                rows = db.execute(f"SELECT name FROM items WHERE name = '{name}'").fetchall()
        except sqlite3.Error:
            rows = []  # errors swallowed: nothing in the response shows the injection
        return jsonify(found=len(rows))

    return app


def _fastapi_app(safe: bool) -> FastAPI:
    app = FastAPI()

    @app.post("/items", status_code=201)
    def create_item(name: str = "", qty: int = 1) -> Any:
        if not safe and not name:
            return JSONResponse({"queued": True}, status_code=200)  # an answer the contract does not know
        return JSONResponse({"name": name, "qty": qty}, status_code=201)

    return app


def _scan(app: Any) -> ScanResult:
    target = Target.from_app(app, spec="tests.fuzz:app", base_url="http://testserver")
    surface = discover_surface(target, crawl=False)
    return run_scan(target, surface, ScanOptions(checks=["fuzz"], seed=3, fuzz_budget=16))


def _found(result: ScanResult) -> set[tuple[str, str | None]]:
    assert not [c.errors for c in result.checks if c.errors]
    return {(f.check_id, f.location.path) for f in result.findings}


def test_flask_crash_and_sql_sink_found() -> None:
    found = _found(_scan(_flask_app(safe=False)))
    assert ("fuzz.crash", "/api/split") in found
    assert ("fuzz.sink", "/api/find") in found


def test_same_seed_same_findings_and_requests() -> None:
    """Generation, shrinking and the sweep are seeded: two runs send the same requests, find the same."""
    first, again = _scan(_flask_app(safe=False)), _scan(_flask_app(safe=False))
    assert [f.public_dict() for f in first.findings] == [f.public_dict() for f in again.findings]
    assert first.requests == again.requests


def test_flask_near_miss_is_clean() -> None:
    assert _found(_scan(_flask_app(safe=True))) == set()


@pytest.mark.parametrize("safe", [False, True])
def test_fastapi_contract_from_served_openapi(safe: bool) -> None:
    found = _found(_scan(_fastapi_app(safe)))
    assert (("fuzz.contract", "/items") in found) is not safe
    assert not {c for c, _ in found} - {"fuzz.contract"}
