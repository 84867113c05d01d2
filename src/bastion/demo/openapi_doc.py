"""The demo's published OpenAPI document, and the account summary (`undeclared_password_hash_field`).

GET /openapi.json describes every JSON API route of the app: the route list comes from the app's
url_map (so a new `/api/...` view is never missing from it), the per-route details (request bodies,
parameters, response schemas) from the hand-written `openapi.json` next to this module. A route the
file does not describe gets its path parameters and a JSON response without a schema.

`undeclared_password_hash_field`: GET /api/account/summary declares {id, name, email} as its response;
the flawed view serialises the whole user row minus a few columns, so `password_hash` leaves the
service too. The hardened twin builds the declared object field by field.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, Flask, g, jsonify

from bastion.demo.flask_app import login_required, planted

openapi_bp = Blueprint("demo_openapi", __name__)

SUMMARY_PATH = "/api/account/summary"
# The account summary as documented: what API clients are told the endpoint returns.
SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["id", "name", "email"],
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                   "email": {"type": "string", "format": "email"}}}
SUMMARY_OPERATION: dict[str, Any] = {
    "summary": "The signed-in account in short",
    "responses": {"200": {"description": "the account", "content": {"application/json": {"schema": SUMMARY_SCHEMA}}},
                  "401": {"description": "not signed in"}}}
_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_PARAM_TYPES = {"int": "integer", "float": "number"}


@openapi_bp.get(SUMMARY_PATH)
@login_required
def account_summary() -> Any:
    user = g.user
    if planted("undeclared_password_hash_field"):
        # "Return the row, the client picks what it needs": every column but the obviously internal ones.
        row = {key: user[key] for key in user.keys() if key not in ("bio", "city")}
        return jsonify(id=row.pop("id"), name=row.pop("display_name"), **row)
    return jsonify(id=user["id"], name=user["display_name"], email=user["email"])


@cache
def _described_paths() -> dict[str, Any]:
    """The hand-written document (per-route details), read once."""
    raw = resources.files("bastion.demo").joinpath("openapi.json").read_text("utf-8")
    return dict(json.loads(raw))


def _template(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """An OpenAPI path template for a Flask rule, and its path parameters."""
    params: list[dict[str, Any]] = []

    def sub(match: re.Match[str]) -> str:
        kind = _PARAM_TYPES.get(match.group(1) or "", "string")
        example = 1 if kind == "integer" else "1"
        params.append({"name": match.group(2), "in": "path", "required": True,
                       "schema": {"type": kind, "example": example}})
        return "{" + match.group(2) + "}"

    return _CONVERTER.sub(sub, rule), params


def _generated_operation(params: list[dict[str, Any]]) -> dict[str, Any]:
    # `default`, not `200`: the document does not claim which statuses the route answers with.
    operation: dict[str, Any] = {"responses": {"default": {"description": "JSON response",
                                                           "content": {"application/json": {}}}}}
    if params:
        operation["parameters"] = params
    return operation


def openapi_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document for `app`: every `/api/` route, with the hand-written details where they exist."""
    base = _described_paths()
    described: dict[str, Any] = {**base["paths"], SUMMARY_PATH: {"get": SUMMARY_OPERATION}}
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/"):
            continue
        path, params = _template(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            known = described.get(path, {}).get(method.lower())
            paths.setdefault(path, {})[method.lower()] = known or _generated_operation(params)
    return {**base, "paths": paths}
