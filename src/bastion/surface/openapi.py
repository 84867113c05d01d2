"""OpenAPI 3.0/3.1 import: operations, parameters and request bodies become entry points and inputs.

Documents are untrusted: they are read within size, depth and node limits (YAML through
bastion.safeyaml, JSON through the standard parser plus the same limits), only local `$ref`s are
followed, reference cycles stop expansion instead of recursing, and nested bodies are expanded to a
bounded depth and input count. Every problem is an InputFileError naming the file and JSON pointer.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bastion.errors import InputFileError
from bastion.safeyaml import YamlDocument, YamlLimits, decode_utf8, load_yaml_text, read_limited
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.surface.swagger2 import convert_swagger2, is_swagger2

MAX_OPENAPI_BYTES = 10 * 1024 * 1024
MAX_DOCUMENT_DEPTH = 64
MAX_DOCUMENT_NODES = 2_000_000
MAX_DOCUMENT_ALIASES = 1_000
MAX_BODY_DEPTH = 8  # nesting levels of a request body expanded into inputs
MAX_INPUTS_PER_OPERATION = 200
MAX_REF_CHAIN = 32  # `$ref` pointing at a `$ref` pointing at ...
# Schema nodes visited per request body: wide, deep schemas whose leaves yield no input (readOnly,
# cycles) would otherwise cost width ** depth steps.
MAX_SCHEMA_VISITS = 20_000
# Response schemas are inlined (`$ref`s replaced by copies): a budget of kept nodes per response and per
# document stops diamond-shaped references from multiplying; what is over budget, deeper than the depth
# limit or a reference cycle becomes `{}` (an open schema: it declares nothing, so nothing is undeclared).
MAX_RESPONSE_DEPTH = 16
MAX_RESPONSE_SCHEMA_NODES = 5_000
MAX_RESPONSE_DOCUMENT_NODES = 200_000
# Keywords kept in an inlined response schema: the ones saying which fields a body may carry.
_RESPONSE_SCHEMA_FLAGS = ("nullable", "readOnly", "writeOnly")
_RESPONSE_COMBINATORS = ("allOf", "oneOf", "anyOf")

OPERATION_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# OpenAPI says these header parameters are ignored (they are described elsewhere in the document).
_IGNORED_HEADERS = {"accept", "content-type", "authorization"}
_PATH_PARAM = re.compile(r"\{([^}/]+)\}")
_SCALAR_KINDS = {"string", "integer", "number", "boolean"}

Where = tuple[Any, ...]  # a location in the document: keys and list indexes from the root
Schema = dict[str, Any]


def pointer_of(path: Where) -> str:
    """JSON pointer for a path of keys and indexes (`~` and `/` escaped)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _pointer_parts(pointer: str) -> list[str]:
    return [unquote(p).replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


@dataclass
class OpenAPIDocument:
    """A parsed OpenAPI document with local `$ref` resolution and error helpers."""

    data: dict[str, Any]
    file: str
    yaml: YamlDocument | None = field(default=None, repr=False)  # for line numbers; None for JSON

    @property
    def version(self) -> str:
        return str(self.data.get("openapi", ""))

    def error(self, message: str, path: Where = ()) -> InputFileError:
        """An InputFileError at `path` (line number when the document was YAML)."""
        return InputFileError(message, file=self.file, line=self.line_of(path), key=pointer_of(path) or "/")

    def line_of(self, path: Where) -> int | None:
        """Line of the node at `path` (or its nearest ancestor) in a YAML document; None for JSON."""
        return self.yaml.line_of(path) if self.yaml is not None else None

    def resolve(self, ref: str, at: Where = ()) -> tuple[Any, Where]:
        """The node a local `$ref` points to, and its path; external or dangling refs are errors."""
        if not isinstance(ref, str):
            raise self.error("$ref must be a string", (*at, "$ref"))
        if not ref.startswith("#"):
            raise self.error(f"external $ref {ref!r} is not supported; bundle the document into one file "
                             "first", (*at, "$ref"))
        node: Any = self.data
        path: Where = ()
        for part in _pointer_parts(ref[1:]) if ref != "#" else []:
            if isinstance(node, dict) and part in node:
                node, path = node[part], (*path, part)
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node, path = node[int(part)], (*path, int(part))
            else:
                raise self.error(f"$ref {ref!r} points to nothing", (*at, "$ref"))
        return node, path

    def deref(self, node: Any, at: Where) -> tuple[Any, Where]:
        """Follow a chain of `$ref`s to a real node; a chain that loops back on itself is an error."""
        seen: list[str] = []
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen or len(seen) >= MAX_REF_CHAIN:
                chain = " -> ".join([*seen, str(ref)])
                raise self.error(f"cyclic $ref chain: {chain}", (*at, "$ref"))
            seen.append(ref)
            node, at = self.resolve(ref, at)
        return node, at


def load_openapi_document(source: str | Path, *, max_bytes: int = MAX_OPENAPI_BYTES) -> OpenAPIDocument:
    """Read an OpenAPI 3.x document (JSON or YAML) within limits and check its top-level shape."""
    raw = read_limited(source, max_bytes=max_bytes, error=InputFileError)
    return parse_openapi_document(raw, name=str(source), max_bytes=max_bytes)


def parse_openapi_document(raw: bytes, *, name: str, max_bytes: int = MAX_OPENAPI_BYTES) -> OpenAPIDocument:
    """Parse OpenAPI bytes already in memory (e.g. served at /openapi.json); `name` is used in errors."""
    if len(raw) > max_bytes:
        raise InputFileError(f"document is larger than the limit of {max_bytes} bytes", file=name)
    text = decode_utf8(raw, name=name, error=InputFileError)
    if not text.strip():
        raise InputFileError("file is empty; expected an OpenAPI 3.x document", file=name, line=1)
    yaml_doc = None
    if text.lstrip().startswith(("{", "[")):
        data = _load_json(text, name)
    else:
        limits = YamlLimits(max_bytes=max_bytes, max_depth=MAX_DOCUMENT_DEPTH,
                            max_aliases=MAX_DOCUMENT_ALIASES, max_nodes=MAX_DOCUMENT_NODES)
        yaml_doc = load_yaml_text(text, name=name, limits=limits, error=InputFileError)
        data = yaml_doc.data
    if not isinstance(data, dict):
        raise InputFileError(f"expected an OpenAPI document (a mapping), got {type(data).__name__}",
                             file=name, line=1 if yaml_doc else None, key="/")
    if is_swagger2(data):  # converted; line numbers of the original YAML no longer apply
        data, yaml_doc = convert_swagger2(data, name), None
    document = OpenAPIDocument(data=data, file=name, yaml=yaml_doc)
    _check_version(document)
    return document


def _load_json(text: str, name: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise InputFileError(f"duplicate key {key!r}", file=name)
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"invalid JSON: {exc.msg}", file=name, line=exc.lineno) from None
    except RecursionError:
        raise InputFileError(f"nesting deeper than {MAX_DOCUMENT_DEPTH} levels", file=name) from None
    _check_json_shape(data, name)
    return data


def _check_json_shape(data: Any, name: str) -> None:
    """Apply the YAML limits (depth, node count) to a JSON document too."""
    nodes = 0
    stack: list[tuple[Any, Where]] = [(data, ())]
    while stack:
        node, path = stack.pop()
        nodes += 1
        if nodes > MAX_DOCUMENT_NODES:
            raise InputFileError(f"more than {MAX_DOCUMENT_NODES} JSON nodes", file=name)
        if len(path) > MAX_DOCUMENT_DEPTH:
            raise InputFileError(f"nesting deeper than {MAX_DOCUMENT_DEPTH} levels", file=name,
                                 key=pointer_of(path[:8]) + "/...")
        if isinstance(node, dict):
            stack.extend((v, (*path, k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(node))


def _check_version(doc: OpenAPIDocument) -> None:
    if "swagger" in doc.data:
        raise doc.error("Swagger 2.0 is not supported; convert the document to OpenAPI 3", ("swagger",))
    version = doc.data.get("openapi")
    if not isinstance(version, str) or not re.match(r"^3\.[01](\.\d+)?", version):
        raise doc.error("expected 'openapi: 3.0.x' or 'openapi: 3.1.x'", ("openapi",))
    paths = doc.data.get("paths", {})
    if paths is not None and not isinstance(paths, dict):
        raise doc.error(f"'paths' must be a mapping, got {type(paths).__name__}", ("paths",))


def load_openapi(source: str | Path, *, max_bytes: int = MAX_OPENAPI_BYTES) -> Surface:
    """Entry points and inputs declared by an OpenAPI 3.0/3.1 document."""
    return surface_from_document(load_openapi_document(source, max_bytes=max_bytes))


def load_openapi_bytes(raw: bytes, *, name: str, max_bytes: int = MAX_OPENAPI_BYTES) -> Surface:
    """Entry points declared by an OpenAPI document held in memory."""
    return surface_from_document(parse_openapi_document(raw, name=name, max_bytes=max_bytes))


def surface_from_document(doc: OpenAPIDocument) -> Surface:
    """Build the Surface for an already-loaded document."""
    entry_points: list[EntryPoint] = []  # (method, path) is unique within one document
    prefix = _server_prefix(doc)
    responses = _ResponseSchemas(doc)
    for path, item_path in _path_items(doc):
        item, at = doc.deref(doc.data["paths"][path], item_path)
        if not isinstance(item, dict):
            raise doc.error("a path item must be a mapping", at)
        shared = _parameters(doc, item.get("parameters"), (*at, "parameters"))
        for method in OPERATION_METHODS:
            if method not in item:
                continue
            operation = item[method]
            if not isinstance(operation, dict):
                raise doc.error(f"operation must be a mapping, got {type(operation).__name__}", (*at, method))
            ep = _entry_point(doc, prefix + path, method, operation, (*at, method), shared)
            ep.response_schemas = responses.of_operation(operation.get("responses"), (*at, method, "responses"))
            entry_points.append(ep)
    return Surface(entry_points=entry_points)


def _path_items(doc: OpenAPIDocument) -> Iterator[tuple[str, Where]]:
    for path in doc.data.get("paths") or {}:
        if not isinstance(path, str) or not path.startswith("/"):
            raise doc.error(f"path {path!r} must start with '/'", ("paths", str(path)))
        yield path, ("paths", path)


def _server_prefix(doc: OpenAPIDocument) -> str:
    """Path part of the first server URL (`/api/v1`), with server variables at their defaults."""
    servers = doc.data.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return ""
    url = servers[0].get("url")
    if not isinstance(url, str):
        return ""
    raw_variables = servers[0].get("variables")
    variables = raw_variables if isinstance(raw_variables, dict) else {}

    def default(match: re.Match[str]) -> str:
        var = variables.get(match.group(1))
        return str(var.get("default", "")) if isinstance(var, dict) else ""

    url = _PATH_PARAM.sub(default, url)
    path = urlsplit(url).path if "://" in url or url.startswith("//") else url.split("?")[0]
    return path.rstrip("/") if path.startswith("/") else ""


def _entry_point(doc: OpenAPIDocument, path: str, method: str, operation: dict[str, Any], at: Where,
                 shared: dict[tuple[str, str], Input]) -> EntryPoint:
    params = dict(shared)
    params.update(_parameters(doc, operation.get("parameters"), (*at, "parameters")))
    ep = EntryPoint(method=method.upper(), path=path, source="openapi", file=doc.file,
                    line=doc.line_of(at))
    for inp in params.values():
        ep.add_input(inp)
    for name in _PATH_PARAM.findall(path):
        ep.add_input(Input(location="path", name=name, required=True, source="openapi"))
    if "requestBody" in operation:
        _request_body(doc, ep, operation["requestBody"], (*at, "requestBody"))
    ep.produces = _produces(doc, operation.get("responses"), (*at, "responses"))
    return ep


def _parameters(doc: OpenAPIDocument, raw: Any, at: Where) -> dict[tuple[str, str], Input]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise doc.error(f"'parameters' must be a list, got {type(raw).__name__}", at)
    out: dict[tuple[str, str], Input] = {}
    for index, entry in enumerate(raw):
        param, where = doc.deref(entry, (*at, index))
        if not isinstance(param, dict):
            raise doc.error("a parameter must be a mapping", where)
        name, location = param.get("name"), param.get("in")
        if not isinstance(name, str) or not name:
            raise doc.error("parameter needs a 'name' (a string)", where)
        if location not in ("path", "query", "header", "cookie"):
            raise doc.error(f"parameter 'in' must be path, query, header or cookie, got {location!r}", where)
        if location == "header" and name.lower() in _IGNORED_HEADERS:
            continue
        schema, _ = _parameter_schema(doc, param, where)
        example = _first_example(doc, param, where)
        if example is None:
            example = _schema_example(schema)
        out[(location, name)] = Input(location=location, name=name, kind=_kind(schema),
                                      required=bool(param.get("required")) or location == "path",
                                      example=example, source="openapi")
    return out


def _parameter_schema(doc: OpenAPIDocument, param: dict[str, Any], at: Where) -> tuple[Schema, Where]:
    if "schema" in param:
        return _as_schema(doc, param["schema"], (*at, "schema"))
    content = param.get("content")
    if isinstance(content, dict):
        for media, media_obj in content.items():
            if isinstance(media_obj, dict) and "schema" in media_obj:
                return _as_schema(doc, media_obj["schema"], (*at, "content", media, "schema"))
    return {}, at


def _as_schema(doc: OpenAPIDocument, node: Any, at: Where) -> tuple[Schema, Where]:
    schema, where = doc.deref(node, at)
    if isinstance(schema, bool):  # 3.1: `true` accepts anything, `false` nothing
        return {}, where
    if not isinstance(schema, dict):
        raise doc.error(f"a schema must be a mapping, got {type(schema).__name__}", where)
    return schema, where


def _first_example(doc: OpenAPIDocument, holder: dict[str, Any], at: Where) -> str | None:
    if holder.get("example") is not None:
        return _stringify(holder["example"])
    examples = holder.get("examples")
    if isinstance(examples, dict):
        for key, entry in examples.items():
            value, _ = doc.deref(entry, (*at, "examples", key))
            if isinstance(value, dict) and value.get("value") is not None:
                return _stringify(value["value"])
    return None


def _schema_example(schema: dict[str, Any]) -> str | None:
    for key in ("example", "default"):
        if schema.get(key) is not None:
            return _stringify(schema[key])
    examples = schema.get("examples")  # 3.1 (JSON Schema): a list
    if isinstance(examples, list) and examples and examples[0] is not None:
        return _stringify(examples[0])
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and enum[0] is not None:
        return _stringify(enum[0])
    return None


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.date | datetime.datetime):  # YAML turns bare dates into objects
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _schema_type(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):  # 3.1: ["string", "null"]
        kind = next((k for k in kind if k != "null"), None)
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return {bool: "boolean", int: "integer", float: "number"}.get(type(enum[0]), "string")
    return None


def _kind(schema: dict[str, Any]) -> Any:
    kind = _schema_type(schema)
    return kind if kind in _SCALAR_KINDS | {"object", "array"} else "string"


def _is_file(schema: dict[str, Any]) -> bool:
    return (schema.get("format") in ("binary", "base64") or "contentMediaType" in schema
            or "contentEncoding" in schema)


def _media_location(media: str) -> str | None:
    base = media.split(";")[0].strip().lower()
    if base == "application/json" or base.endswith("+json"):
        return "json"
    if base == "application/x-www-form-urlencoded":
        return "form"
    if base.startswith("multipart/"):
        return "multipart"
    if base.startswith("text/") or base.endswith(("/xml", "+xml")):
        return "body"
    if base in ("application/octet-stream", "*/*"):
        return "body"
    return None


def _request_body(doc: OpenAPIDocument, ep: EntryPoint, raw: Any, at: Where) -> None:
    body, where = doc.deref(raw, at)
    if not isinstance(body, dict):
        raise doc.error("requestBody must be a mapping", where)
    content = body.get("content")
    if content is None:
        return
    if not isinstance(content, dict):
        raise doc.error("requestBody 'content' must be a mapping of media types", (*where, "content"))
    required = bool(body.get("required"))
    for media, media_obj in content.items():
        if media not in ep.consumes:
            ep.consumes.append(media)
        location = _media_location(str(media))
        if location is None:
            continue
        media_at = (*where, "content", media)
        if media_obj is not None and not isinstance(media_obj, dict):
            raise doc.error("a media type entry must be a mapping", media_at)
        media_obj = media_obj or {}
        schema_node = media_obj.get("schema", {})
        expander = _BodyExpander(doc, location)
        if location == "body":
            schema, _ = _as_schema(doc, schema_node, (*media_at, "schema"))
            example = _first_example(doc, media_obj, media_at) or _schema_example(schema)
            expander.emit("body", "string", required, example)
        else:
            expander.expand(schema_node, (*media_at, "schema"), "", required, 0, frozenset())
            if location == "json" and not expander.inputs:
                # A JSON body that is not an object (a bare string or number): inject into it raw.
                schema, _ = _as_schema(doc, schema_node, (*media_at, "schema"))
                if _schema_type(schema) in _SCALAR_KINDS:
                    expander.emit("body", _kind(schema), required, _schema_example(schema), location="body")
        for inp in expander.inputs:
            if len(ep.inputs) >= MAX_INPUTS_PER_OPERATION:
                return
            ep.add_input(inp)


@dataclass
class _ObjectShape:
    properties: dict[str, tuple[Any, Where]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)


class _BodyExpander:
    """Expands one request-body schema into inputs, bounded in depth and count, stopping at ref cycles."""

    def __init__(self, doc: OpenAPIDocument, location: str) -> None:
        self.doc, self.location = doc, location
        self.inputs: list[Input] = []
        self.visits = 0

    def full(self) -> bool:
        return len(self.inputs) >= MAX_INPUTS_PER_OPERATION or self.visits >= MAX_SCHEMA_VISITS

    def emit(self, name: str, kind: str, required: bool, example: str | None,
             location: str | None = None) -> None:
        if not self.full():
            self.inputs.append(Input(location=location or self.location, name=name, kind=kind,  # type: ignore[arg-type]
                                     required=required, example=example, source="openapi"))

    def _enter(self, node: Any, at: Where, seen: frozenset[str]) -> tuple[dict[str, Any] | None,
                                                                                   Where, frozenset[str]]:
        """Resolve a schema node; None when it is a reference already being expanded (a cycle)."""
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            if node["$ref"] in seen:
                return None, at, seen
            seen = seen | {node["$ref"]}
        schema, where = _as_schema(self.doc, node, at)
        return schema, where, seen

    def expand(self, node: Any, at: Where, prefix: str, required: bool, depth: int,
               seen: frozenset[str]) -> None:
        if self.full():
            return
        self.visits += 1
        schema, where, seen = self._enter(node, at, seen)
        if schema is None:  # recursive schema: the field exists, its insides were already described
            if prefix:
                self.emit(prefix, "object", required, None)
            return
        if schema.get("readOnly") is True:
            return  # sent by the server only; not an input of this request
        shape = self._object_shape(schema, where, seen, depth)
        kind = _kind(schema) if _schema_type(schema) else ("object" if shape.properties else "string")
        if shape.properties and depth < MAX_BODY_DEPTH and (self.location == "json" or not prefix):
            for name, (child, child_at) in shape.properties.items():
                child_name = f"{prefix}.{name}" if prefix else name
                self.expand(child, child_at, child_name, required and name in shape.required, depth + 1, seen)
            return
        if not prefix:
            return  # a top-level body that is not an object has no named fields
        if kind == "array":
            self._expand_array(schema, where, prefix, required, depth, seen)
            return
        if self.location == "multipart" and _is_file(schema):
            kind = "file"
        self.emit(prefix, kind, required, _schema_example(schema))

    def _expand_array(self, schema: dict[str, Any], at: Where, prefix: str, required: bool, depth: int,
                      seen: frozenset[str]) -> None:
        items = schema.get("items")
        if not isinstance(items, dict):
            self.emit(prefix, "array", required, _schema_example(schema))
            return
        item, item_at, item_seen = self._enter(items, (*at, "items"), seen)
        if self.location == "multipart" and item is not None and _is_file(item):
            self.emit(prefix, "file", required, None)
        elif self.location != "json" or item is None or depth >= MAX_BODY_DEPTH:
            self.emit(prefix, "array", required, _schema_example(schema))
        elif self._object_shape(item, item_at, item_seen, depth).properties:
            self.expand(items, (*at, "items"), f"{prefix}[]", required, depth + 1, seen)
        else:
            example = _schema_example(item)
            self.emit(f"{prefix}[]", _kind(item) if _schema_type(item) else "string", required, example)

    def _object_shape(self, schema: dict[str, Any], at: Where, seen: frozenset[str],
                      depth: int) -> _ObjectShape:
        """Properties of an object schema, merging allOf (required kept) and oneOf/anyOf (as optional)."""
        shape = _ObjectShape()
        self.visits += 1
        if self.visits >= MAX_SCHEMA_VISITS:
            return shape
        properties = schema.get("properties")
        if properties is not None and not isinstance(properties, dict):
            raise self.doc.error("'properties' must be a mapping", (*at, "properties"))
        for name, child in (properties or {}).items():
            if len(shape.properties) >= MAX_INPUTS_PER_OPERATION:
                break
            shape.properties.setdefault(str(name), (child, (*at, "properties", name)))
        required = schema.get("required")
        if isinstance(required, list):
            shape.required.update(str(r) for r in required)
        if depth >= MAX_BODY_DEPTH:
            return shape
        for keyword in ("allOf", "oneOf", "anyOf"):
            members = schema.get(keyword)
            if members is None:
                continue
            if not isinstance(members, list):
                raise self.doc.error(f"'{keyword}' must be a list", (*at, keyword))
            for index, member in enumerate(members):
                sub, sub_at, sub_seen = self._enter(member, (*at, keyword, index), seen)
                if sub is None:
                    continue
                part = self._object_shape(sub, sub_at, sub_seen, depth + 1)
                for name, child in part.properties.items():
                    shape.properties.setdefault(name, child)
                if keyword == "allOf":
                    shape.required |= part.required
        return shape


def _produces(doc: OpenAPIDocument, raw: Any, at: Where) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise doc.error("'responses' must be a mapping of status codes", at)
    media_types: list[str] = []
    for code, entry in raw.items():
        response, where = doc.deref(entry, (*at, str(code)))
        if not isinstance(response, dict):
            raise doc.error("a response must be a mapping", where)
        content = response.get("content")
        if isinstance(content, dict):
            for media in content:
                if media not in media_types:
                    media_types.append(str(media))
    return media_types


def _json_media(content: dict[str, Any]) -> Any:
    """The media object of `application/json` (or another JSON media type) in a `content` map."""
    if "application/json" in content:
        return content["application/json"]
    for media, media_obj in content.items():
        base = str(media).split(";")[0].strip().lower()
        if base == "application/json" or base.endswith("+json"):
            return media_obj
    return None


class _ResponseSchemas:
    """Inlines the JSON response schemas of a document's operations, within node, depth and cycle limits."""

    def __init__(self, doc: OpenAPIDocument) -> None:
        self.doc = doc
        self.document_nodes = 0
        self.nodes = 0

    def of_operation(self, raw: Any, at: Where) -> dict[str, dict[str, Any]]:
        """Status ("200", "2XX", "default") -> inlined schema of its JSON body; unreadable ones are left out."""
        out: dict[str, dict[str, Any]] = {}
        if not isinstance(raw, dict):
            return out
        for code, entry in raw.items():
            if self.document_nodes >= MAX_RESPONSE_DOCUMENT_NODES:
                break
            # Response schemas were ignored before they fed the exposure check: a broken one costs its
            # status a schema, never the import of the whole document.
            try:
                schema = self._response(entry, (*at, str(code)))
            except InputFileError:
                continue
            if schema is not None:
                out[str(code)] = schema
        return out

    def _response(self, entry: Any, at: Where) -> dict[str, Any] | None:
        response, where = self.doc.deref(entry, at)
        content = response.get("content") if isinstance(response, dict) else None
        media = _json_media(content) if isinstance(content, dict) else None
        if not isinstance(media, dict) or "schema" not in media:
            return None
        self.nodes = 0
        schema = self.inline(media["schema"], (*where, "content", "schema"), frozenset(), 0)
        self.document_nodes += self.nodes
        return schema

    def inline(self, node: Any, at: Where, seen: frozenset[str], depth: int) -> dict[str, Any]:
        """A copy of the schema at `node` with references replaced by what they point to."""
        self.nodes += 1
        if depth > MAX_RESPONSE_DEPTH or self.nodes > MAX_RESPONSE_SCHEMA_NODES:
            return {}
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            if node["$ref"] in seen:
                return {}  # a recursive type: its inside is described where the cycle started
            seen = seen | {node["$ref"]}
        schema, where = _as_schema(self.doc, node, at)
        out: dict[str, Any] = {}
        kind = schema.get("type")
        if isinstance(kind, str) or (isinstance(kind, list) and all(isinstance(k, str) for k in kind)):
            out["type"] = kind if isinstance(kind, str) else list(kind)
        properties = schema.get("properties")
        if isinstance(properties, dict):
            out["properties"] = {
                str(name): self.inline(child, (*where, "properties", name), seen, depth + 1)
                for name, child in list(properties.items())[:MAX_INPUTS_PER_OPERATION]}
        extra = schema.get("additionalProperties")
        if isinstance(extra, bool):
            out["additionalProperties"] = extra
        elif isinstance(extra, dict):
            out["additionalProperties"] = self.inline(extra, (*where, "additionalProperties"), seen, depth + 1)
        if isinstance(schema.get("items"), dict):
            out["items"] = self.inline(schema["items"], (*where, "items"), seen, depth + 1)
        for keyword in _RESPONSE_COMBINATORS:
            members = schema.get(keyword)
            if isinstance(members, list):
                out[keyword] = [self.inline(m, (*where, keyword, i), seen, depth + 1)
                                for i, m in enumerate(members[:MAX_INPUTS_PER_OPERATION])]
        required = schema.get("required")
        if isinstance(required, list):
            out["required"] = [r for r in required if isinstance(r, str)]
        out.update({flag: schema[flag] for flag in _RESPONSE_SCHEMA_FLAGS if isinstance(schema.get(flag), bool)})
        return out


def response_schema(doc: OpenAPIDocument, method: str, path: str, status: int | str,
                    media_type: str = "application/json") -> dict[str, Any] | None:
    """The declared response schema for an operation and status (falling back to `NXX` and `default`)."""
    item = (doc.data.get("paths") or {}).get(path)
    if item is None:
        return None
    item, at = doc.deref(item, ("paths", path))
    operation = item.get(method.lower()) if isinstance(item, dict) else None
    responses = operation.get("responses") if isinstance(operation, dict) else None
    if not isinstance(responses, dict):
        return None
    code = str(status)
    for candidate in (code, f"{code[:1]}XX", f"{code[:1]}xx", "default"):
        if candidate in responses:
            response, where = doc.deref(responses[candidate], (*at, method.lower(), "responses", candidate))
            content = response.get("content") if isinstance(response, dict) else None
            if not isinstance(content, dict):
                return None
            media = content.get(media_type) or next(iter(content.values()), None)
            if isinstance(media, dict) and "schema" in media:
                schema, _ = _as_schema(doc, media["schema"], (*where, "content", media_type, "schema"))
                return schema
            return None
    return None
