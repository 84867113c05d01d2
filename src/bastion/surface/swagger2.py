"""Swagger 2.0 → OpenAPI 3.0 conversion of what the surface needs: paths, parameters, bodies, refs.

Many Flask services (flasgger, flask-restx, connexion) still serve Swagger 2.0. The converted document
goes through the same OpenAPI 3 loader (limits, `$ref` checks); only the shapes differ:
`in: body` becomes a JSON request body, `in: formData` a form (or multipart) body, `type`/`format`/...
on a parameter move into its `schema`, `definitions`/`parameters`/`responses` move under `components`,
and `basePath` becomes the server URL. The input is untrusted: anything of the wrong shape is an
InputFileError naming the file and the key; the walk is iterative and bounded by the loader's limits.
"""

from __future__ import annotations

from typing import Any

from bastion.errors import InputFileError

_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch")
# Parameter keywords that describe the value: in OpenAPI 3 they live in the parameter's `schema`.
_SCHEMA_KEYS = ("type", "format", "items", "enum", "default", "minimum", "maximum", "minLength", "maxLength",
                "pattern", "example", "x-example")
_REF_MOVES = (("#/definitions/", "#/components/schemas/"), ("#/parameters/", "#/components/parameters/"),
              ("#/responses/", "#/components/responses/"))
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


def is_swagger2(data: dict[str, Any]) -> bool:
    """Whether a parsed document declares itself as Swagger (any `swagger` key)."""
    return "swagger" in data


def convert_swagger2(data: dict[str, Any], name: str) -> dict[str, Any]:
    """An OpenAPI 3.0 document equivalent (for the surface) to the Swagger 2.0 document `data`."""
    if str(data.get("swagger")) != "2.0":
        raise InputFileError(f"unsupported Swagger version {data.get('swagger')!r}; expected '2.0'", file=name,
                             key="/swagger")
    data = _move_refs(data)
    paths = _mapping(data.get("paths"), name, "/paths")
    shared_params = _mapping(data.get("parameters"), name, "/parameters")
    consumes = _media_list(data.get("consumes"))
    produces = _media_list(data.get("produces"))
    out: dict[str, Any] = {"openapi": "3.0.3", "info": data.get("info") or {"title": name, "version": "0"},
                           "paths": {}}
    base = data.get("basePath")
    if isinstance(base, str) and base.startswith("/") and base.rstrip("/"):
        out["servers"] = [{"url": base.rstrip("/")}]
    components: dict[str, Any] = {"schemas": _mapping(data.get("definitions"), name, "/definitions")}
    components["responses"] = {k: _response(v, produces) for k, v in
                               _mapping(data.get("responses"), name, "/responses").items()}
    components["parameters"] = {k: _parameter(v) for k, v in shared_params.items()
                                if isinstance(v, dict) and v.get("in") not in ("body", "formData")}
    out["components"] = components
    for path, item in paths.items():
        if not isinstance(item, dict):
            raise InputFileError("a path item must be a mapping", file=name, key=f"/paths/{path}")
        out["paths"][path] = _path_item(item, shared_params, consumes, produces, name, f"/paths/{path}")
    return out


def _mapping(node: Any, name: str, key: str) -> dict[str, Any]:
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise InputFileError(f"expected a mapping, got {type(node).__name__}", file=name, key=key)
    return node


def _media_list(node: Any, default: list[str] | None = None) -> list[str]:
    media = [m for m in node if isinstance(m, str)] if isinstance(node, list) else []
    return media or list(default or [])


def _move_refs(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` with every Swagger `$ref` target rewritten to its OpenAPI 3 place (iterative)."""
    root: dict[str, Any] = {}
    stack: list[tuple[Any, Any]] = [(data, root)]
    while stack:
        src, dst = stack.pop()
        items = src.items() if isinstance(src, dict) else enumerate(src)
        for key, value in items:
            if isinstance(value, dict | list):
                child: Any = {} if isinstance(value, dict) else [None] * len(value)
                stack.append((value, child))
            elif key == "$ref" and isinstance(value, str):
                child = _moved(value)
            else:
                child = value
            dst[key] = child
    return root


def _moved(ref: str) -> str:
    for old, new in _REF_MOVES:
        if ref.startswith(old):
            return new + ref[len(old):]
    return ref


def _deref_parameter(param: Any, shared: dict[str, Any]) -> Any:
    """A parameter `$ref` into the document's `parameters` (body and form ones must be inlined)."""
    if isinstance(param, dict) and isinstance(param.get("$ref"), str):
        ref = param["$ref"]
        prefix = "#/components/parameters/"
        if ref.startswith(prefix) and isinstance(shared.get(ref[len(prefix):]), dict):
            target = shared[ref[len(prefix):]]
            if target.get("in") in ("body", "formData"):
                return _move_refs(target)
    return param


def _parameter(param: dict[str, Any]) -> dict[str, Any]:
    """A query/path/header parameter with its value keywords moved into `schema`."""
    out = {k: v for k, v in param.items() if k not in _SCHEMA_KEYS and k not in ("collectionFormat",
                                                                                 "allowEmptyValue")}
    schema = {k: v for k, v in param.items() if k in _SCHEMA_KEYS and k != "x-example"}
    example = param.get("x-example", param.get("example"))
    if example is not None:
        schema["example"] = example
    if schema or "$ref" not in param:
        out["schema"] = schema or {"type": "string"}
    return out


def _path_item(item: dict[str, Any], shared: dict[str, Any], consumes: list[str], produces: list[str],
               name: str, key: str) -> dict[str, Any]:
    common: list[Any] = item["parameters"] if isinstance(item.get("parameters"), list) else []
    out: dict[str, Any] = {}
    for method in _OPERATIONS:
        operation = item.get(method)
        if operation is None:
            continue
        if not isinstance(operation, dict):
            raise InputFileError(f"operation must be a mapping, got {type(operation).__name__}", file=name,
                                 key=f"{key}/{method}")
        out[method] = _operation(operation, common, shared, consumes, produces)
    return out


def _operation(operation: dict[str, Any], common: list[Any], shared: dict[str, Any], consumes: list[str],
               produces: list[str]) -> dict[str, Any]:
    out = {k: v for k, v in operation.items() if k not in ("parameters", "responses", "consumes", "produces")}
    own: list[Any] = operation["parameters"] if isinstance(operation.get("parameters"), list) else []
    params: dict[tuple[str, str], dict[str, Any]] = {}
    refs: list[dict[str, Any]] = []
    for raw in [*common, *own]:  # an operation's parameter overrides the path item's one
        param = _deref_parameter(raw, shared)
        if not isinstance(param, dict):
            continue
        if "$ref" in param:
            refs.append(param)
        elif isinstance(param.get("name"), str) and isinstance(param.get("in"), str):
            params[(param["in"], param["name"])] = param
    media = _media_list(operation.get("consumes"), consumes)
    body = _request_body([p for (where, _), p in params.items() if where in ("body", "formData")], media)
    if body is not None:
        out["requestBody"] = body
    plain = [_parameter(p) for (where, _), p in params.items() if where not in ("body", "formData")]
    if plain or refs:
        out["parameters"] = plain + refs
    responses = operation.get("responses")
    out_media = _media_list(operation.get("produces"), produces)
    out["responses"] = ({str(code): _response(r, out_media) for code, r in responses.items()}
                        if isinstance(responses, dict) else {"default": {"description": ""}})
    return out


def _request_body(params: list[dict[str, Any]], media: list[str]) -> dict[str, Any] | None:
    """The OpenAPI 3 requestBody for a Swagger `in: body` parameter or a set of `in: formData` ones."""
    body = next((p for p in params if p.get("in") == "body"), None)
    if body is not None:
        body_schema = body["schema"] if isinstance(body.get("schema"), dict) else {}
        json_media = [m for m in media if "json" in m] or ["application/json"]
        return {"required": bool(body.get("required")), "content": {json_media[0]: {"schema": body_schema}}}
    fields = [p for p in params if p.get("in") == "formData"]
    if not fields:
        return None
    has_file = any(p.get("type") == "file" for p in fields)
    kind = _MULTIPART if has_file or _MULTIPART in media else _FORM
    properties: dict[str, Any] = {}
    for p in fields:
        prop = {k: v for k, v in p.items() if k in _SCHEMA_KEYS and k != "x-example"}
        if p.get("type") == "file":
            prop = {"type": "string", "format": "binary"}
        properties[str(p["name"])] = prop or {"type": "string"}
    required = [str(p["name"]) for p in fields if p.get("required") is True]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": bool(required), "content": {kind: {"schema": schema}}}


def _response(response: Any, media: list[str]) -> Any:
    """A Swagger response (`schema` beside `description`) as an OpenAPI 3 one (`content`)."""
    if not isinstance(response, dict) or "$ref" in response:
        return response
    out = {k: v for k, v in response.items() if k not in ("schema", "examples")}
    out.setdefault("description", "")
    if isinstance(response.get("schema"), dict):
        out["content"] = {(media or ["application/json"])[0]: {"schema": response["schema"]}}
    return out
