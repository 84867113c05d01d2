"""Build a concrete request for an entry point, with one input (or none) set to a chosen value."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from bastion.surface.model import EntryPoint, Input

_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

_DEFAULTS = {"integer": "1", "number": "1.5", "boolean": "true", "string": "bastion"}
# Headers that carry credentials: a made-up default would replace the role's real token or key.
_CREDENTIAL_HEADER = re.compile(r"authorization|auth|token|api[-_]?key|session|cookie", re.IGNORECASE)


@dataclass
class RequestSpec:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] | None = None
    json: Any = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    content: bytes | None = None

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"params": self.params or None, "headers": self.headers or None,
                               "cookies": self.cookies or None}
        if self.files is not None:
            out["files"] = self.files
            out["data"] = self.form or None
        elif self.form is not None:
            out["data"] = self.form
        if self.json is not None:
            out["json"] = self.json
        if self.content is not None:
            out["content"] = self.content
        return out


def default_value(inp: Input) -> str:
    if inp.example is not None:
        return str(inp.example)
    return _DEFAULTS.get(inp.kind, "bastion")


def _json_value(inp: Input, raw: str, injected: bool) -> Any:
    if injected:
        return raw
    if inp.kind == "integer":
        return int(raw) if raw.lstrip("-").isdigit() else 1
    if inp.kind == "number":
        try:
            return float(raw)
        except ValueError:
            return 1.5
    if inp.kind == "boolean":
        return raw.lower() == "true"
    return raw


def _set_json_path(doc: dict[str, Any], name: str, value: Any) -> None:
    """Set `a.b`, `items[].sku` or `tags[]` inside a JSON document, creating containers as needed."""
    parts = name.split(".")
    node: Any = doc
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        is_array = part.endswith("[]")
        key = part[:-2] if is_array else part
        if is_array:
            arr = node.setdefault(key, []) if isinstance(node, dict) else []
            if last:
                arr.append(value)
                return
            if not arr or not isinstance(arr[0], dict):
                arr.insert(0, {})
            node = arr[0]
        elif last:
            node[key] = value
        else:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child


def fill_path(template: str, values: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        return quote(values.get(m.group(1), "1"), safe="")

    return _PATH_PARAM.sub(sub, template)


def build_request(ep: EntryPoint, inject: Input | None = None, value: str | None = None,
                  *, body_location: str | None = None) -> RequestSpec:
    """Request for `ep` with every input at a benign default and `inject` (if given) set to `value`.

    The body is sent as the location of the injected input, else the first body location the entry
    point reads (json > form > multipart > raw body), or `body_location` when given.
    """
    def val(inp: Input) -> str:
        return value if (inject is not None and inp.key == inject.key and value is not None) else default_value(inp)

    locations = ep.body_locations
    body_loc: str | None
    if inject is not None and inject.location in ("json", "form", "multipart", "body"):
        body_loc = inject.location
    else:
        preferred = (loc for loc in ("json", "form", "multipart", "body") if loc in locations)
        body_loc = body_location or next(preferred, None)

    spec = RequestSpec(method=ep.method, path="")
    path_values: dict[str, str] = {}
    json_doc: dict[str, Any] = {}
    for inp in ep.inputs:
        v = val(inp)
        injected = inject is not None and inp.key == inject.key
        match inp.location:
            case "path":
                path_values[inp.name] = v
            case "query":
                spec.params[inp.name] = v
            case "header" if injected or inp.example is not None or not _CREDENTIAL_HEADER.search(inp.name):
                spec.headers[inp.name] = v
            case "cookie" if injected or inp.example is not None:
                # A made-up value for a cookie the server sets (Flask's `session`, a hand-rolled `sid`)
                # would replace the role's real session cookie: benign requests leave such cookies alone.
                spec.cookies[inp.name] = v
            case "json" if body_loc == "json":
                _set_json_path(json_doc, inp.name, _json_value(inp, v, injected))
            case "form" if body_loc in ("form", "multipart"):
                spec.form = spec.form or {}
                spec.form[inp.name] = v
            case "multipart" if body_loc in ("multipart", "form"):
                if inp.kind == "file":
                    spec.files = spec.files or {}
                    filename = v if injected else "bastion.txt"
                    content = v.encode() if injected else b"bastion"
                    spec.files[inp.name] = (filename, content, "text/plain")
                else:
                    spec.form = spec.form or {}
                    spec.form[inp.name] = v
            case "body" if body_loc == "body":
                spec.content = v.encode("utf-8")
                ctype = ep.consumes[0] if ep.consumes else "application/octet-stream"
                spec.headers.setdefault("content-type", ctype)
    if body_loc == "json":
        spec.json = json_doc
    # A field read from query *and* body (Flask's request.values, Django's REQUEST) is sent once, in the
    # body: a second, default copy in the query string would win the lookup and hide the body's value.
    body_names = set(spec.form or ()) | set(json_doc)
    for name in list(spec.params):
        if name in body_names and not (inject is not None and inject.location == "query" and inject.name == name):
            del spec.params[name]
    spec.path = fill_path(ep.path, path_values)
    return spec
