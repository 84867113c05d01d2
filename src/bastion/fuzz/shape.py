"""What a request is made of: a tree of fields built from surface inputs or an OpenAPI request schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bastion.surface.model import EntryPoint, Input

MAX_SCHEMA_DEPTH = 6
MAX_PROPERTIES = 40
TEXT_LOCATIONS = ("path", "query", "header", "cookie", "form", "multipart")


@dataclass
class Node:
    """One value: a scalar (`string`, `integer`, `number`, `boolean`, `file`, `any`), object or array.

    `typed` is False when the type is a guess (introspection saw a name, not a type): such fields
    also get values of every JSON type.
    """

    kind: str
    typed: bool = True
    children: dict[str, Node] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    item: Node | None = None
    enum: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    nullable: bool = False
    example: Any = None


@dataclass
class Field:
    """A top-level input: a path/query/header/cookie/form value, or a JSON body property."""

    location: str
    name: str
    node: Node
    required: bool = False

    @property
    def key(self) -> str:
        return f"{self.location}:{self.name}"


@dataclass
class RequestShape:
    """Every field of an entry point's request and how its body is sent."""

    fields: list[Field]
    body: str | None = None  # json | form | multipart | body | None
    content_type: str | None = None
    # Put in generated text so sensor events can be traced back to the fuzzed request.
    canary: str = ""

    @property
    def json_body(self) -> bool:
        return self.body == "json"


_KIND_OF_TYPE = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
                 "object": "object", "array": "array"}


def _guessed(inp: Input) -> bool:
    """Introspection that saw only a name reports `string`: the real type is unknown."""
    return inp.kind == "string" and inp.source not in ("openapi", "config") and inp.example is None


def _leaf(inp: Input) -> Node:
    return Node(kind=inp.kind, typed=not _guessed(inp), example=inp.example)


def _insert_json(root: Node, inp: Input) -> None:
    """Place `a.b` / `items[].sku` / `tags[]` into the object tree rooted at `root`."""
    node = root
    parts = inp.name.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        is_array = part.endswith("[]")
        key = part[:-2] if is_array else part
        child = node.children.get(key)
        if is_array:
            if child is None or child.kind != "array":
                child = node.children[key] = Node(kind="array", item=Node(kind="object"))
            if last:
                child.item = _leaf(inp)
                return
            if child.item is None or child.item.kind != "object":
                child.item = Node(kind="object")
            node = child.item
        elif last:
            node.children[key] = _leaf(inp)
            if inp.required:
                node.required.add(key)
        else:
            if child is None or child.kind != "object":
                child = node.children[key] = Node(kind="object")
            node = child


def shape_from_inputs(ep: EntryPoint) -> RequestShape:
    """The request shape the surface describes (names and kinds; JSON nesting from dotted names)."""
    body = next((loc for loc in ("json", "form", "multipart", "body") if loc in ep.body_locations), None)
    fields: list[Field] = []
    root = Node(kind="object")
    for inp in sorted(ep.inputs, key=lambda i: (i.location, i.name)):
        if inp.location == "json":
            if body == "json":
                _insert_json(root, inp)
                if inp.required:
                    root.required.add(inp.name.split(".")[0].removesuffix("[]"))
            continue
        if inp.location in ("form", "multipart", "body") and inp.location != body:
            if not (body == "multipart" and inp.location == "form"):
                continue
        fields.append(Field(inp.location, inp.name, _leaf(inp), inp.required or inp.location == "path"))
    for name, node in root.children.items():
        fields.append(Field("json", name, node, name in root.required))
    ctype = {"json": "application/json", "form": "application/x-www-form-urlencoded"}.get(body or "")
    if body == "body":
        ctype = ep.consumes[0] if ep.consumes else "application/octet-stream"
    return RequestShape(fields=fields, body=body, content_type=ctype)


def node_from_schema(schema: Any, resolve: Any, depth: int = 0) -> Node:
    """A node for a JSON Schema (OpenAPI 3.0/3.1 subset); `resolve` follows a `$ref` dict to its target."""
    schema = resolve(schema)
    if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
        return Node(kind="any", typed=False)
    for keyword in ("allOf", "oneOf", "anyOf"):
        members = schema.get(keyword)
        if isinstance(members, list) and members:
            merged = dict(schema)
            merged.pop(keyword)
            first = resolve(members[0])
            if keyword == "allOf":
                for m in members:
                    m = resolve(m)
                    if isinstance(m, dict):
                        merged.setdefault("properties", {}).update(m.get("properties") or {})
                        merged["required"] = [*merged.get("required", []), *(m.get("required") or [])]
                        merged.setdefault("type", m.get("type"))
            elif isinstance(first, dict):
                merged = {**first, **merged}
            schema = merged
    raw_type = schema.get("type")
    nullable = bool(schema.get("nullable"))
    if isinstance(raw_type, list):  # 3.1: ["string", "null"]
        nullable = nullable or "null" in raw_type
        raw_type = next((t for t in raw_type if t != "null"), None)
    if raw_type is None:
        raw_type = "object" if "properties" in schema else ("array" if "items" in schema else None)
    kind = _KIND_OF_TYPE.get(str(raw_type), "any")
    node = Node(kind=kind, typed=kind != "any", nullable=nullable,
                enum=list(schema["enum"]) if isinstance(schema.get("enum"), list) and schema["enum"] else None,
                minimum=_number(schema.get("minimum")), maximum=_number(schema.get("maximum")),
                min_length=_count(schema.get("minLength", schema.get("minItems"))),
                max_length=_count(schema.get("maxLength", schema.get("maxItems"))),
                example=schema.get("example", schema.get("default")))
    if kind == "object":
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        for name, child in list(props.items())[:MAX_PROPERTIES]:
            node.children[str(name)] = node_from_schema(child, resolve, depth + 1)
        node.required = {str(r) for r in schema.get("required") or [] if str(r) in node.children}
    elif kind == "array":
        node.item = node_from_schema(schema.get("items", {}), resolve, depth + 1)
    return node


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def with_json_schema(shape: RequestShape, body: Node) -> RequestShape:
    """The shape with its JSON fields replaced by the ones an OpenAPI request schema declares."""
    if body.kind != "object" or not body.children:
        return shape
    others = [f for f in shape.fields if f.location != "json"]
    fields = [Field("json", name, node, name in body.required) for name, node in body.children.items()]
    return RequestShape(fields=others + fields, body="json", content_type="application/json", canary=shape.canary)
