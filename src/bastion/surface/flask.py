"""Flask route introspection: url_map rules → entry points, view source → the inputs it reads."""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterator
from typing import Any

from bastion.surface.handler_ast import HandlerReads, body_consumes, display_path, read_view
from bastion.surface.model import EntryPoint, Input, Surface

_RULE_VAR = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<args>.*?)\))?:)?(?P<var>[a-zA-Z_]\w*)>")
_IGNORED_METHODS = {"HEAD", "OPTIONS"}
BODY_METHODS = {"POST", "PUT", "PATCH"}
# Attributes middlewares commonly keep the wrapped app under.
_WRAPPED_ATTRS = ("app", "wsgi_app", "application", "_app", "wrapped", "__wrapped__")


def find_flask_apps(app: Any, prefix: str = "", *, _depth: int = 0) -> list[tuple[str, Any]]:
    """Flask instances reachable from a (possibly wrapped) WSGI app, with their mount prefixes."""
    try:
        from flask import Flask
    except ImportError:  # no Flask installed: nothing to find
        return []
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def walk(obj: Any, pfx: str, depth: int) -> None:
        if obj is None or id(obj) in seen or depth > 12:
            return
        seen.add(id(obj))
        if isinstance(obj, Flask):
            found.append((pfx, obj))
            return
        owner = getattr(obj, "__self__", None)  # a bound `wsgi_app` method of a Flask app
        if owner is not None and not isinstance(owner, type):
            walk(owner, pfx, depth + 1)
        for attr in _WRAPPED_ATTRS:
            try:
                inner = inspect.getattr_static(obj, attr)
            except AttributeError:
                continue
            if callable(inner) and not inspect.isfunction(inner) or isinstance(inner, Flask):
                walk(inner, pfx, depth + 1)
        for cell in getattr(obj, "__closure__", None) or ():  # function middlewares closing over the app
            try:
                walk(cell.cell_contents, pfx, depth + 1)
            except ValueError:  # empty cell
                continue
        mounts = getattr(obj, "mounts", None)  # werkzeug DispatcherMiddleware
        if isinstance(mounts, dict):
            for mount_prefix, sub in sorted(mounts.items()):
                walk(sub, pfx + str(mount_prefix).rstrip("/"), depth + 1)

    walk(app, prefix, _depth)
    return found


def _converter_kind(app: Any, conv: str | None) -> tuple[str, str | None]:
    """Input kind (and an example) for a werkzeug converter name, custom converters included."""
    from werkzeug.routing import FloatConverter, IntegerConverter, UUIDConverter

    cls = app.url_map.converters.get(conv or "default")
    if isinstance(cls, type) and issubclass(cls, IntegerConverter):
        return "integer", None
    if isinstance(cls, type) and issubclass(cls, FloatConverter):
        return "number", None
    if isinstance(cls, type) and issubclass(cls, UUIDConverter):
        return "string", "00000000-0000-4000-8000-000000000000"
    return "string", None


def _template(app: Any, rule: str, file: str | None, line: int | None) -> tuple[str, list[Input]]:
    params: list[Input] = []

    def sub(m: re.Match[str]) -> str:
        kind, example = _converter_kind(app, m.group("conv"))
        if m.group("conv") == "any" and m.group("args"):
            example = m.group("args").split(",")[0].strip().strip("'\"") or None
        params.append(Input("path", m.group("var"), kind=kind, required=True, example=example,  # type: ignore[arg-type]
                            source="declared", file=file, line=line))
        return "{" + m.group("var") + "}"

    return _RULE_VAR.sub(sub, rule), params


def _view_functions(view: Any, methods: list[str]) -> Iterator[Any]:
    """The functions behind a view: the view itself, or a class-based view's handler methods."""
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        yield view
        return
    for method in methods:
        handler = getattr(view_class, method.lower(), None)
        if handler is None and method == "GET":
            handler = getattr(view_class, "dispatch_request", None)
        if handler is not None:
            yield handler


def _source_of(func: Any) -> tuple[str | None, int | None, str | None]:
    target = inspect.unwrap(func)
    try:
        file = display_path(inspect.getsourcefile(target))
        line = inspect.getsourcelines(target)[1] if file else None
    except (OSError, TypeError):
        file, line = None, None
    name = f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', '?')}"
    return file, line, name


def flask_surface(app: Any, prefix: str = "") -> Surface:
    """Entry points of one Flask app: every rule × method, with declared path params and AST reads."""
    surface = Surface()
    hook_inputs_seen: set[tuple[str, str, str | None, int | None]] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        is_static = rule.endpoint == "static" or rule.endpoint.endswith(".static")
        if is_static and not _serves_static(app, rule.endpoint):
            continue
        methods = sorted(set(rule.methods or {"GET"}) - _IGNORED_METHODS)
        view = app.view_functions.get(rule.endpoint)
        file, line, handler = _source_of(view) if view is not None and not is_static else (None, None, None)
        path, params = _template(app, rule.rule, file, line)
        reads = HandlerReads()
        hook_reads = HandlerReads()
        if view is not None and not is_static:
            for func in _view_functions(view, methods):
                reads.merge(read_view(func))
            for func in _before_request_hooks(app, rule.endpoint):
                hook_reads.merge(read_view(func))
        for method in methods:
            ep = EntryPoint(method=method, path=prefix + path, source="flask", handler=handler,
                            file=file, line=line)
            for p in params:
                ep.add_input(p)
            takes_body = method in BODY_METHODS
            # Inputs read by before_request hooks run for every route: attacking them through the
            # first route that runs the hook proves the same flaw without one probe set per route.
            hook_inputs = [i for i in [*hook_reads.resolved_inputs(takes_body), *_session_cookie(app, hook_reads)]
                           if (i.location, i.name, i.file, i.line) not in hook_inputs_seen]
            hook_inputs_seen.update((i.location, i.name, i.file, i.line) for i in hook_inputs)
            for inp in [*reads.resolved_inputs(takes_body), *_session_cookie(app, reads), *hook_inputs]:
                if inp.location in ("form", "multipart", "json", "body") and not takes_body \
                        and method != "DELETE":
                    continue
                ep.add_input(inp)
            if takes_body or method == "DELETE":
                ep.consumes = body_consumes(reads)
            surface.add(ep)
    return surface


def _before_request_hooks(app: Any, endpoint: str) -> list[Any]:
    """`before_request` functions that run before this endpoint: app-wide, then its blueprints'."""
    parts = endpoint.split(".")[:-1]
    scopes: list[str | None] = [None, *(".".join(parts[:i]) for i in range(1, len(parts) + 1))]
    hooks: list[Any] = []
    for scope in scopes:
        hooks.extend(getattr(app, "before_request_funcs", {}).get(scope, []))
    return hooks


def _session_cookie(app: Any, reads: HandlerReads) -> list[Input]:
    """Flask's signed `session` lives in a cookie: a view that uses it reads that cookie."""
    if reads.session_ref is None:
        return []
    name = str(app.config.get("SESSION_COOKIE_NAME") or "session")
    file, line = reads.session_ref
    return [Input("cookie", name, source="ast", file=file, line=line)]


def _serves_static(app: Any, endpoint: str) -> bool:
    owner = app if endpoint == "static" else app.blueprints.get(endpoint.rsplit(".", 1)[0])
    folder = getattr(owner, "static_folder", None)
    if not folder:
        return False
    return os.path.isdir(folder)
