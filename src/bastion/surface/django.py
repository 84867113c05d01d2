"""Django URLconf introspection: `get_resolver().url_patterns` → entry points, views → the inputs they read.

Walks includes and namespaces recursively; `path()` converters become typed path parameters and
`re_path()` named groups path parameters (a regex that is not a plain template is skipped: no URL can
be built from it). Methods: a class-based view's handlers (`http_method_names` it implements), a DRF
ViewSet's action map, `@require_http_methods` lists, else GET (and POST when the view reads a body).
Inputs come from the handler source (`request.GET.get("q")`, `request.POST["x"]`, see handler_ast)
and from the Django `Form` classes a view uses. The admin site is listed with `source="django-admin"`
and without inputs, so it is visible in the surface but never a target for guessing.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bastion.surface.flask import BODY_METHODS, _source_of
from bastion.surface.handler_ast import HandlerReads, _parse_function, body_consumes, read_function, read_view
from bastion.surface.model import EntryPoint, Input, Surface

ADMIN_SOURCE = "django-admin"
_ROUTE_PARAM = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")
# A named group with no nested group inside: `(?P<slug>[-\w]+)`.
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>(?:[^()\\]|\\.)*)\)")
# Regex syntax left once named groups are cut out (a bare `.` matches itself too: `robots.txt`).
_REGEX_META = re.compile(r"(?<!\\)[\[\]()*+?{}|^$]|\\[A-Za-z0-9]")
_INT_REGEX = re.compile(r"(?:\\d|\[0-9\])(?:[+*]|\{\d+(?:,\d*)?\})?")
_IGNORED_METHODS = {"HEAD", "OPTIONS", "TRACE"}
_MAX_DEPTH = 20
UUID_EXAMPLE = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class _Route:
    path: str
    params: tuple[Input, ...]
    admin: bool


def django_surface(handler: Any = None, prefix: str = "") -> Surface:
    """Entry points of the configured Django project (the handler only proves Django is set up)."""
    from django.urls import get_resolver

    surface = Surface()
    for route, callback in _walk(get_resolver().url_patterns, "/", (), False, 0):
        for ep in _entry_points(route, callback, prefix):
            surface.add(ep)
    return surface


def _walk(patterns: Any, base: str, params: tuple[Input, ...], admin: bool,
          depth: int) -> Iterator[tuple[_Route, Any]]:
    """(route, view) for every URLPattern under `patterns`, includes flattened."""
    from django.urls import URLPattern, URLResolver

    if depth > _MAX_DEPTH:
        return
    try:
        entries = list(patterns)
    except Exception:  # noqa: BLE001 - a broken URLconf module: the rest of the project is still listed
        return
    for entry in entries:
        piece = _pattern_template(entry.pattern)
        if piece is None:
            continue
        text, new_params = piece
        path, all_params = base + text, (*params, *new_params)
        if isinstance(entry, URLResolver):
            is_admin = admin or getattr(entry, "app_name", None) == "admin"
            yield from _walk(entry.url_patterns, path, all_params, is_admin, depth + 1)
        elif isinstance(entry, URLPattern):
            yield _Route(path, all_params, admin or _is_admin_view(entry.callback)), entry.callback


def _is_admin_view(callback: Any) -> bool:
    return str(getattr(inspect.unwrap(callback), "__module__", "")).startswith("django.contrib.admin")


def _pattern_template(pattern: Any) -> tuple[str, list[Input]] | None:
    """`{name}` template and path params of one pattern piece; None for an unbuildable regex."""
    from django.urls.resolvers import RoutePattern

    if isinstance(pattern, RoutePattern):
        return _route_template(str(pattern._route), pattern.converters)
    regex = getattr(pattern, "_regex", None)
    if isinstance(regex, str):
        return _regex_template(regex)
    return str(pattern), []  # LocalePrefixPattern and friends: a literal prefix


def _route_template(route: str, converters: dict[str, Any]) -> tuple[str, list[Input]]:
    params: list[Input] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        kind, example = _converter_kind(converters.get(name))
        params.append(Input("path", name, kind=kind, required=True, example=example,  # type: ignore[arg-type]
                            source="declared"))
        return "{" + name + "}"

    return _ROUTE_PARAM.sub(sub, route), params


def _converter_kind(converter: Any) -> tuple[str, str | None]:
    from django.urls.converters import IntConverter, SlugConverter, UUIDConverter

    if isinstance(converter, IntConverter):
        return "integer", None
    if isinstance(converter, UUIDConverter):
        return "string", UUID_EXAMPLE
    if isinstance(converter, SlugConverter):
        return "string", "example"
    return "string", None


def _regex_template(regex: str) -> tuple[str, list[Input]] | None:
    params: list[Input] = []

    def sub(m: re.Match[str]) -> str:
        body = m.group("body")
        kind = "integer" if _INT_REGEX.fullmatch(body) else "string"
        params.append(Input("path", m.group("name"), kind=kind, required=True, source="declared"))  # type: ignore[arg-type]
        return "{" + m.group("name") + "}"

    text = regex.removeprefix("^").removeprefix(r"\A")
    text = text.removesuffix("$").removesuffix(r"\Z")
    if _REGEX_META.search(_REGEX_GROUP.sub("", text)):
        return None  # alternations, optional parts, unnamed groups: not one URL template
    return re.sub(r"\\(.)", r"\1", _REGEX_GROUP.sub(sub, text)), params


def _methods_and_handlers(callback: Any) -> tuple[list[str] | None, list[Any]]:
    """HTTP methods a view answers (None: not declared) and the functions that handle them."""
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    actions = getattr(callback, "actions", None)
    if isinstance(view_class, type) and isinstance(actions, dict) and actions:  # DRF ViewSet
        pairs = [(m.upper(), getattr(view_class, a, None)) for m, a in actions.items()]
        return _allowed([m for m, h in pairs if h is not None]), [h for _, h in pairs if h is not None]
    if isinstance(view_class, type):
        names = [m for m in getattr(view_class, "http_method_names", ()) if m != "options"]
        handlers = {m.upper(): getattr(view_class, m) for m in names if callable(getattr(view_class, m, None))}
        return _allowed(list(handlers)), list(handlers.values())
    return _declared_methods(callback), [callback]


def _allowed(methods: list[str]) -> list[str]:
    return sorted({m for m in methods if m not in _IGNORED_METHODS})


def _declared_methods(view: Any) -> list[str] | None:
    """The list a `@require_http_methods` (require_GET/POST/safe) decorator closes over, if any."""
    current, seen = view, set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for cell in getattr(current, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if isinstance(value, list | tuple) and value and all(isinstance(v, str) and v.isupper() for v in value):
                return _allowed(list(value))
        current = getattr(current, "__wrapped__", None)
    return None


def _entry_points(route: _Route, callback: Any, prefix: str) -> list[EntryPoint]:
    file, line, handler = _source_of(callback)
    declared, handlers = _methods_and_handlers(callback)
    if route.admin:
        methods = declared or ["GET"]
        return [_entry(m, route, prefix, ADMIN_SOURCE, handler, file, line) for m in methods]
    reads = HandlerReads()
    form_inputs: list[Input] = []
    for func in handlers:
        if _is_framework_code(func):
            continue  # generic views' own handlers (TemplateView.get, APIView.options): not the app's reads
        reads.merge(read_view(func) if func is callback else read_function(func))
        form_inputs.extend(_form_inputs(func))
    form_inputs.extend(_form_class_inputs(getattr(callback, "view_class", None)))
    methods = declared or ["GET", *(["POST"] if _reads_body(reads, form_inputs) else [])]
    eps: list[EntryPoint] = []
    for method in methods:
        ep = _entry(method, route, prefix, "django", handler, file, line)
        takes_body = method in BODY_METHODS
        for inp in [*reads.resolved_inputs(takes_body), *form_inputs]:
            if inp.location in ("form", "multipart", "json", "body") and not takes_body and method != "DELETE":
                continue
            ep.add_input(inp)
        if takes_body or method == "DELETE":
            ep.consumes = body_consumes(reads) or (["application/x-www-form-urlencoded"]
                                                   if any(i.location == "form" for i in form_inputs) else [])
        eps.append(ep)
    return eps


def _is_framework_code(func: Any) -> bool:
    module = str(getattr(inspect.unwrap(func), "__module__", ""))
    return module.split(".")[0] in ("django", "rest_framework")


def _entry(method: str, route: _Route, prefix: str, source: str, handler: str | None, file: str | None,
           line: int | None) -> EntryPoint:
    ep = EntryPoint(method=method, path=prefix + route.path, source=source, handler=handler, file=file, line=line)
    for p in route.params:
        ep.add_input(Input(p.location, p.name, kind=p.kind, required=True, example=p.example, source="declared",
                           file=file, line=line))
    return ep


def _reads_body(reads: HandlerReads, form_inputs: list[Input]) -> bool:
    body = {"form", "multipart", "json", "body"}
    return reads.json_body or reads.raw_body or any(loc in body for loc, _ in reads.inputs) \
        or any(i.location in body for i in form_inputs)


def _form_fields(form_class: Any, location: str, file: str | None, line: int | None) -> list[Input]:
    from django import forms

    fields = getattr(form_class, "base_fields", {}) or {}
    out: list[Input] = []
    for name, field in fields.items():
        kind = "integer" if isinstance(field, forms.IntegerField) else \
            "file" if isinstance(field, forms.FileField) else "string"
        out.append(Input("multipart" if kind == "file" else location, name, kind=kind,  # type: ignore[arg-type]
                         required=bool(field.required), source="ast", file=file, line=line))
    return out


def _is_form_class(obj: Any) -> bool:
    try:
        from django.forms import BaseForm
    except ImportError:
        return False
    return isinstance(obj, type) and issubclass(obj, BaseForm)


def _form_class_inputs(view_class: Any) -> list[Input]:
    """A generic editing view's `form_class` (FormView, CreateView...): its fields are POSTed."""
    form_class = getattr(view_class, "form_class", None) if isinstance(view_class, type) else None
    if not _is_form_class(form_class):
        return []
    file, line, _ = _source_of(view_class)
    return _form_fields(form_class, "form", file, line)


def _form_inputs(func: Any) -> list[Input]:
    """Fields of the Form classes a view instantiates: `Form(request.GET)` → query, otherwise form."""
    func = inspect.unwrap(func)
    parsed = _parse_function(func)
    if parsed is None:
        return []
    env = getattr(func, "__globals__", {}) or {}
    out: list[Input] = []
    for node in ast.walk(parsed.node):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        form_class = env.get(node.func.id)
        if not _is_form_class(form_class):
            continue
        first = node.args[0] if node.args else None
        location = "query" if isinstance(first, ast.Attribute) and first.attr == "GET" else "form"
        out.extend(_form_fields(form_class, location, parsed.file, node.lineno + parsed.line_offset))
    return out
