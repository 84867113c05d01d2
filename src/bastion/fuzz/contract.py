"""The API contract from OpenAPI: request-body schemas for generation, declared responses as an oracle.

The document comes from the surface (entry points imported from an OpenAPI file) or from a document the
target serves at a well-known path. 4xx statuses the document does not list are not violations: few
APIs document every validation error, and answering bad input with a 4xx is the behaviour we want.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.errors import BastionError
from bastion.fuzz.shape import Node, node_from_schema
from bastion.surface.model import EntryPoint, Surface
from bastion.surface.openapi import (
    OpenAPIDocument,
    _server_prefix,
    load_openapi_document,
    parse_openapi_document,
    response_schema,
)
from bastion.target.exchange import Exchange

# Paths where services publish their OpenAPI document (the crawler's list plus common YAML names).
DOCUMENT_PATHS = ("/openapi.json", "/api/openapi.json", "/v3/api-docs", "/swagger.json", "/openapi.yaml")
_PARAM = re.compile(r"\{[^}]*\}")
MAX_NULLABLE_DEPTH = 32


def document_candidates(surface: Surface) -> tuple[list[str], list[str]]:
    """(local files, served paths) that may hold the target's OpenAPI document."""
    files = sorted({ep.file for ep in surface.entry_points if ep.source == "openapi" and ep.file})
    served = [ep.path for ep in surface.sorted() if ep.method == "GET" and ep.path in DOCUMENT_PATHS]
    return [f for f in files if Path(f).is_file()], served


def load_local(path: str) -> OpenAPIDocument | None:
    try:
        return load_openapi_document(path)
    except BastionError:
        return None


def parse_served(ex: Exchange) -> OpenAPIDocument | None:
    if ex.status != 200 or not ex.body:
        return None
    try:
        return parse_openapi_document(ex.body, name=ex.request.url)
    except BastionError:
        return None


@dataclass
class Operation:
    """One documented operation: where it sits in the document and its path template there."""

    doc: OpenAPIDocument
    path: str
    method: str
    spec: dict[str, Any]

    def request_body(self) -> Node | None:
        """The JSON request-body schema as a node, if the operation declares one."""
        body, at = self.doc.deref(self.spec.get("requestBody"), ("paths", self.path, self.method, "requestBody"))
        content = body.get("content") if isinstance(body, dict) else None
        media = content.get("application/json") if isinstance(content, dict) else None
        if not isinstance(media, dict) or "schema" not in media:
            return None
        return node_from_schema(media["schema"], self._resolve)

    def _resolve(self, node: Any) -> Any:
        try:
            resolved, _ = self.doc.deref(node, ())
        except BastionError:
            return {}
        return True if resolved is True else resolved

    def declared_statuses(self) -> list[str]:
        responses = self.spec.get("responses")
        return [str(k) for k in responses] if isinstance(responses, dict) else []

    def violation(self, ex: Exchange) -> str | None:
        """What in the response breaks the documented contract, or None."""
        declared = self.declared_statuses()
        code = str(ex.status)
        if not declared or ex.status >= 400:
            return None
        if not any(d in (code, f"{code[0]}XX", f"{code[0]}xx", "default") for d in declared):
            return f"status {ex.status} is not documented (documented: {', '.join(declared)})"
        ctype = (ex.header("content-type") or "").split(";")[0].strip().lower()
        if not ctype.endswith("json"):
            return None
        try:
            schema = response_schema(self.doc, self.method, self.path, ex.status)
        except BastionError:
            return None
        if not schema:
            return None
        try:
            body = json.loads(ex.text)
        except ValueError:
            return f"status {ex.status} declares a JSON body, the response is not valid JSON"
        root = {**_nullable_as_type(schema), "components": self.doc.data.get("components") or {}}
        # Imported here: jsonschema's format checkers take seconds to import, and most scans never get here.
        import jsonschema
        from referencing.exceptions import Unresolvable

        try:
            error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(root).iter_errors(body))
        except (jsonschema.SchemaError, Unresolvable, RecursionError):
            return None
        if error is None:
            return None
        where = "/" + "/".join(str(p) for p in error.absolute_path)
        return f"response body at {where} does not match the documented schema: {error.message[:200]}"


def _nullable_as_type(schema: Any, depth: int = 0) -> Any:
    """OpenAPI 3.0 `nullable: true` as JSON Schema's `type: [T, "null"]`."""
    if depth > MAX_NULLABLE_DEPTH:
        return schema
    if isinstance(schema, list):
        return [_nullable_as_type(s, depth + 1) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _nullable_as_type(v, depth + 1) for k, v in schema.items()}
    if out.pop("nullable", False) is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def find_operation(docs: list[OpenAPIDocument], ep: EntryPoint) -> Operation | None:
    """The documented operation for an entry point (path templates compared without parameter names)."""
    want = _PARAM.sub("{}", ep.path)
    for doc in docs:
        prefix = _server_prefix(doc)
        for path, item in (doc.data.get("paths") or {}).items():
            if not isinstance(path, str) or _PARAM.sub("{}", prefix + path) != want:
                continue
            try:
                item, _ = doc.deref(item, ("paths", path))
            except BastionError:
                continue
            op = item.get(ep.method.lower()) if isinstance(item, dict) else None
            if isinstance(op, dict):
                return Operation(doc, path, ep.method.lower(), op)
    return None


