"""Starlette/FastAPI route introspection: routes, mounts, FastAPI's declared params, handler reads."""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Iterator
from typing import Any

from bastion.surface.flask import BODY_METHODS, find_flask_apps, flask_surface
from bastion.surface.handler_ast import HandlerReads, body_consumes, display_path, read_view
from bastion.surface.model import EntryPoint, Input, Surface

_IGNORED_METHODS = {"HEAD", "OPTIONS"}
_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_MAX_MODEL_DEPTH = 6
_BODY_LOCATIONS = ("form", "multipart", "json", "body")
_SCALAR_KINDS: dict[type, str] = {
    bool: "boolean", int: "integer", float: "number", str: "string", bytes: "string", dict: "object",
    list: "array", set: "array", tuple: "array",
}


def find_starlette_apps(app: Any) -> list[tuple[str, Any]]:
    """Starlette/FastAPI instances reachable from a (middleware-wrapped) ASGI app."""
    try:
        from starlette.applications import Starlette
        from starlette.routing import Router
    except ImportError:  # Starlette not installed
        return []
    seen: set[int] = set()
    obj = app
    # Middlewares keep the next app as `.app`; stop at the first Starlette (or bare Router).
    while obj is not None and id(obj) not in seen and len(seen) < 32:
        seen.add(id(obj))
        if isinstance(obj, Starlette | Router):
            return [("", obj)]
        obj = getattr(obj, "app", None)
    return []


def _routes(app: Any) -> list[Any]:
    router = getattr(app, "router", app)
    return list(getattr(router, "routes", []) or [])


def _convertor_kind(conv: Any) -> tuple[str, str | None]:
    name = type(conv).__name__
    if name == "IntegerConvertor":
        return "integer", None
    if name == "FloatConvertor":
        return "number", None
    if name == "UUIDConvertor":
        return "string", "00000000-0000-4000-8000-000000000000"
    return "string", None


def _endpoint_methods(route: Any) -> list[str]:
    methods = getattr(route, "methods", None)
    if methods:
        return sorted(set(methods) - _IGNORED_METHODS)
    endpoint = getattr(route, "endpoint", None)
    if inspect.isclass(endpoint):  # HTTPEndpoint: one handler method per verb
        return [m for m in _HTTP_METHODS if callable(getattr(endpoint, m.lower(), None))]
    return ["GET"]


def _handlers(route: Any, method: str) -> list[Any]:
    endpoint = getattr(route, "endpoint", None)
    if inspect.isclass(endpoint):
        handler = getattr(endpoint, method.lower(), None)
        return [handler] if handler is not None else []
    return [endpoint] if endpoint is not None else []


def _source(func: Any) -> tuple[str | None, int | None, str | None]:
    target = inspect.unwrap(func)
    try:
        file = display_path(inspect.getsourcefile(target))
        line = inspect.getsourcelines(target)[1] if file else None
    except (OSError, TypeError):
        return None, None, None
    return file, line, f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', '?')}"


def starlette_surface(app: Any, prefix: str = "", *, _depth: int = 0) -> Surface:
    """Entry points of a Starlette/FastAPI app; Mounts are followed with their prefixes."""
    surface = Surface()
    if _depth > 8:
        return surface
    for route in _routes(app):
        kind = type(route).__name__
        if kind in ("Mount", "Host"):
            _mount(surface, route, prefix, _depth)
        elif hasattr(route, "endpoint") and hasattr(route, "path_format") and kind != "WebSocketRoute":
            for ep in _route_entry_points(route, prefix):
                surface.add(ep)
    return surface


def _mount(surface: Surface, route: Any, prefix: str, depth: int) -> None:
    # Mount.path_format ends in "/{path}" (the catch-all); the prefix itself is `.path` (Host has none).
    mount_prefix = prefix + str(getattr(route, "path", "") or "").rstrip("/")
    sub_routes = getattr(route, "routes", None)
    inner = getattr(route, "app", None)
    if sub_routes:
        for ep in starlette_surface(route, mount_prefix, _depth=depth + 1).entry_points:
            surface.add(ep)
        return
    if type(inner).__name__ == "StaticFiles":
        ep = EntryPoint("GET", mount_prefix + "/{path}", source="starlette")
        ep.add_input(Input("path", "path", required=True, source="declared"))
        surface.add(ep)
        return
    # A WSGI app (Flask) mounted through WSGIMiddleware.
    for flask_prefix, flask_app in find_flask_apps(inner, mount_prefix):
        for ep in flask_surface(flask_app, flask_prefix).entry_points:
            surface.add(ep)


def _route_entry_points(route: Any, prefix: str) -> Iterator[EntryPoint]:
    path = prefix + route.path_format
    endpoint = getattr(route, "endpoint", None)
    file, line, handler = _source(endpoint) if endpoint is not None else (None, None, None)
    path_inputs = []
    for name, conv in sorted((getattr(route, "param_convertors", None) or {}).items()):
        kind, example = _convertor_kind(conv)
        path_inputs.append(Input("path", name, kind=kind, required=True, example=example,  # type: ignore[arg-type]
                                 source="declared", file=file, line=line))
    dependant = getattr(route, "dependant", None)
    declared = _declared(dependant, file, line) if dependant is not None else _Declared()
    # FastAPI knows the path params' types even when the route has no convertor (`{oid}` + `oid: int`).
    typed = {i.name: i for i in declared.path_inputs}
    path_inputs = [typed.get(i.name, i) if i.kind == "string" and i.example is None else i
                   for i in path_inputs]
    for method in _endpoint_methods(route):
        reads = HandlerReads()
        for fn in [*_handlers(route, method), *declared.callables]:
            reads.merge(read_view(fn))
        takes_body = method in BODY_METHODS
        ep = EntryPoint(method, path, source="starlette", handler=handler, file=file, line=line)
        for inp in [*path_inputs, *declared.inputs]:
            ep.add_input(inp)
        declares_body = bool(ep.body_locations)
        for inp in reads.resolved_inputs(takes_body):
            if inp.location in _BODY_LOCATIONS and not takes_body and method != "DELETE":
                continue
            if inp.location == "body" and declares_body:
                continue  # `await request.json()` next to a declared model reads the same body
            ep.add_input(inp)
        consumes = list(declared.consumes)
        for media in body_consumes(reads):
            if media not in consumes:
                consumes.append(media)
        ep.consumes = consumes if (takes_body or method == "DELETE") else []
        yield ep


class _Declared:
    """Inputs FastAPI declares for a route (its dependant tree), and the callables to read."""

    def __init__(self) -> None:
        self.inputs: list[Input] = []
        self.path_inputs: list[Input] = []
        self.consumes: list[str] = []
        self.callables: list[Any] = []


def _walk_dependants(dependant: Any, seen: set[int] | None = None) -> Iterator[Any]:
    seen = seen if seen is not None else set()
    if id(dependant) in seen:
        return
    seen.add(id(dependant))
    yield dependant
    for sub in getattr(dependant, "dependencies", None) or []:
        yield from _walk_dependants(sub, seen)


def _declared(dependant: Any, file: str | None, line: int | None) -> _Declared:
    out = _Declared()
    body_fields: list[Any] = []
    for dep in _walk_dependants(dependant):
        call = getattr(dep, "call", None)
        _security_inputs(call, out, file, line)
        if dep is not dependant and inspect.isfunction(inspect.unwrap(call) if call else None):
            out.callables.append(call)
        for fld in getattr(dep, "path_params", None) or []:
            out.path_inputs.extend(_param_inputs(fld, "path", file, line))
        for location, attr in (("query", "query_params"), ("header", "header_params"),
                               ("cookie", "cookie_params")):
            for fld in getattr(dep, attr, None) or []:
                out.inputs.extend(_param_inputs(fld, location, file, line))
        body_fields.extend(getattr(dep, "body_params", None) or [])
    out.inputs.extend(_body_inputs(body_fields, out, file, line))
    return out


def _alias(fld: Any, location: str) -> str:
    alias = getattr(fld, "validation_alias", None) or getattr(fld, "alias", None) or fld.name
    if not isinstance(alias, str):
        alias = fld.name
    info = getattr(fld, "field_info", None)
    # FastAPI turns `x_tenant: str = Header()` into the header `x-tenant` unless told not to.
    if location == "header" and getattr(info, "convert_underscores", True) and alias == fld.name:
        alias = alias.replace("_", "-")
    return alias


def _required(info: Any) -> bool:
    is_required = getattr(info, "is_required", None)
    return bool(is_required()) if callable(is_required) else False


def _param_inputs(fld: Any, location: str, file: str | None, line: int | None) -> list[Input]:
    info = getattr(fld, "field_info", None)
    annotation = getattr(info, "annotation", None)
    model = _model_type(annotation)
    if model is not None:  # a Pydantic model of query/header/cookie params
        return [Input(location, _alias_of_model_field(name, finfo, location), kind=kind, required=req,  # type: ignore[arg-type]
                      example=ex, source="declared", file=file, line=line)
                for name, finfo, kind, req, ex in _model_fields(model)]
    kind, example = _kind_and_example(annotation, getattr(info, "default", None))
    return [Input(location, _alias(fld, location), kind=kind, required=_required(info),  # type: ignore[arg-type]
                  example=example, source="declared", file=file, line=line)]


def _alias_of_model_field(name: str, finfo: Any, location: str) -> str:
    alias = getattr(finfo, "validation_alias", None) or getattr(finfo, "alias", None) or name
    alias = alias if isinstance(alias, str) else name
    if location == "header" and alias == name:
        alias = alias.replace("_", "-")
    return alias


def _body_inputs(fields: list[Any], out: _Declared, file: str | None, line: int | None) -> list[Input]:
    """FastAPI body params: JSON (models flattened to dotted names), Form or File."""
    try:
        from fastapi import params
    except ImportError:
        return []
    names = {f.name for f in fields}
    inputs: list[Input] = []
    unique = list({f.name: f for f in fields}.values())
    embed = len(names) > 1 or any(getattr(f.field_info, "embed", False) for f in unique)
    for fld in unique:
        info = fld.field_info
        annotation = getattr(info, "annotation", None)
        model = _model_type(annotation)
        if isinstance(info, params.File):
            location = "multipart"
        elif isinstance(info, params.Form):
            location = "form"
        else:
            location = "json"
        name = _alias(fld, location)
        if location in ("form", "multipart"):
            media = "multipart/form-data" if location == "multipart" else "application/x-www-form-urlencoded"
            if model is not None:
                for fname, finfo, kind, req, ex in _model_fields(model):
                    inputs.append(Input(location, _alias_of_model_field(fname, finfo, ""), kind=kind,  # type: ignore[arg-type]
                                        required=req, example=ex, source="declared", file=file, line=line))
            else:
                kind, example = _kind_and_example(annotation, info.default)
                if location == "multipart" and kind in ("string", "array"):
                    kind = "file"
                inputs.append(Input(location, name, kind=kind, required=_required(info),  # type: ignore[arg-type]
                                    example=example, source="declared", file=file, line=line))
            _prefer(out, media)
            continue
        _prefer(out, "application/json")
        prefix = name if (embed or model is None) else ""
        if model is None:
            kind, example = _kind_and_example(annotation, info.default)
            inputs.append(Input("json", _array_name(name, annotation), kind=kind,  # type: ignore[arg-type]
                                required=_required(info), example=example, source="declared",
                                file=file, line=line))
            continue
        for fname, kind, req, example in _json_names(model, prefix, 0, ()):
            inputs.append(Input("json", fname, kind=kind, required=req, example=example,  # type: ignore[arg-type]
                                source="declared", file=file, line=line))
    # Multipart beats urlencoded: a form with a file must be sent as multipart.
    if "multipart/form-data" in out.consumes:
        out.consumes = [m for m in out.consumes if m != "application/x-www-form-urlencoded"]
        inputs = [Input("multipart", i.name, i.kind, i.required, i.example, i.source, i.file, i.line)
                  if i.location == "form" else i for i in inputs]
    return inputs


def _prefer(out: _Declared, media: str) -> None:
    if media == "multipart/form-data" and media not in out.consumes:
        out.consumes.insert(0, media)
    elif media not in out.consumes:
        out.consumes.append(media)


def _security_inputs(call: Any, out: _Declared, file: str | None, line: int | None) -> None:
    """FastAPI security schemes used as dependencies declare where the credential travels."""
    try:
        from fastapi.security.base import SecurityBase
    except ImportError:
        return
    if not isinstance(call, SecurityBase):
        return
    model = getattr(call, "model", None)
    where = getattr(getattr(model, "in_", None), "value", None)
    name = getattr(model, "name", None)
    if where in ("query", "header", "cookie") and isinstance(name, str):
        out.inputs.append(Input(where, name, source="declared", file=file, line=line))  # type: ignore[arg-type]
    else:  # HTTP bearer/basic, OAuth2, OpenID Connect: the Authorization header
        out.inputs.append(Input("header", "Authorization", source="declared", file=file, line=line))


# -- types ---------------------------------------------------------------------------------------
def _strip(annotation: Any) -> Any:
    """Remove Annotated/Optional wrappers: `Annotated[int | None, ...]` → int."""
    for _ in range(10):
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation
    return annotation


def _model_type(annotation: Any) -> Any:
    try:
        from pydantic import BaseModel
    except ImportError:
        return None
    annotation = _strip(annotation)
    return annotation if inspect.isclass(annotation) and issubclass(annotation, BaseModel) else None


def _list_item(annotation: Any) -> Any:
    annotation = _strip(annotation)
    origin = typing.get_origin(annotation)
    if origin in (list, set, tuple, frozenset) or annotation in (list, set, tuple):
        args = typing.get_args(annotation)
        return _strip(args[0]) if args else str
    return None


def _array_name(name: str, annotation: Any) -> str:
    return f"{name}[]" if _list_item(annotation) is not None else name


def _kind_and_example(annotation: Any, default: Any) -> tuple[str, str | None]:
    annotation = _strip(annotation)
    item = _list_item(annotation)
    if item is not None:
        return _kind_and_example(item, None)
    kind = "string"
    example: str | None = None
    if inspect.isclass(annotation):
        if issubclass(annotation, enum.Enum):
            members = list(annotation)
            example = str(members[0].value) if members else None
        else:
            kind = next((k for t, k in _SCALAR_KINDS.items() if issubclass(annotation, t)), "string")
            if getattr(annotation, "__name__", "") in ("UploadFile",):
                kind = "file"
    elif typing.get_origin(annotation) is typing.Literal:
        values = typing.get_args(annotation)
        example = str(values[0]) if values else None
    if kind == "array":
        kind = "string"
    if example is None and isinstance(default, bool):
        example = str(default).lower()
    elif example is None and isinstance(default, str | int | float) and default != "":
        example = str(default)
    elif isinstance(default, enum.Enum):
        example = str(default.value)
    return kind, example


def _model_fields(model: Any) -> Iterator[tuple[str, Any, str, bool, str | None]]:
    for name, finfo in sorted(getattr(model, "model_fields", {}).items()):
        default = getattr(finfo, "default", None)
        kind, example = _kind_and_example(finfo.annotation, default)
        yield name, finfo, kind, _required(finfo), example


def _json_names(model: Any, prefix: str, depth: int,
                stack: tuple[Any, ...]) -> Iterator[tuple[str, str, bool, str | None]]:
    """Dotted JSON names of a Pydantic model's leaves (`address.city`, `items[].sku`)."""
    # A self-referential model is expanded once (`children[].label`), then stops.
    if depth > _MAX_MODEL_DEPTH or stack.count(model) >= 2:
        if prefix:
            yield prefix, "object", False, None
        return
    for name, finfo, kind, required, example in _model_fields(model):
        alias = getattr(finfo, "validation_alias", None) or getattr(finfo, "alias", None) or name
        alias = alias if isinstance(alias, str) else name
        full = f"{prefix}.{alias}" if prefix else alias
        item = _list_item(finfo.annotation)
        sub_model = _model_type(item if item is not None else finfo.annotation)
        if item is not None:
            full += "[]"
        if sub_model is not None:
            yield from _json_names(sub_model, full, depth + 1, (*stack, model))
            continue
        if _strip(finfo.annotation) is dict or typing.get_origin(_strip(finfo.annotation)) is dict:
            kind = "object"
        yield full, kind, required, example
