"""Read a view function's source (AST) to find the request inputs it actually reads.

Works for Flask (the global `request` proxy) and Starlette/FastAPI (a `request: Request` parameter).
Helpers defined in the app's own package are followed a few calls deep, so a view that calls
`get_tenant()` which reads `request.headers["X-Tenant"]` gets that header as an input. Nothing is
executed: only source text is parsed.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import os
import sys
import textwrap
import types
from dataclasses import dataclass, field, replace
from typing import Any

from bastion.surface.model import Input

MAX_HELPER_DEPTH = 3

# Request attribute → (container location) for the containers a handler subscripts or `.get`s.
_CONTAINERS = {
    "args": "query", "query_params": "query", "values": "values", "form": "form", "files": "multipart",
    "headers": "header", "cookies": "cookie",
    # Django's HttpRequest (DRF's Request proxies these too).
    "GET": "query", "POST": "form", "FILES": "multipart", "COOKIES": "cookie",
}
# Request attributes that read one header each.
_HEADER_ATTRS = {
    "user_agent": "User-Agent", "referrer": "Referer", "access_route": "X-Forwarded-For",
    "authorization": "Authorization", "origin": "Origin", "accept_languages": "Accept-Language",
    "if_none_match": "If-None-Match", "if_match": "If-Match",
}
_RAW_BODY_ATTRS = {"data", "stream", "input_stream"}
_RAW_BODY_METHODS = {"get_data", "body", "stream"}
_JSON_ATTRS = {"json"}
_JSON_METHODS = {"get_json", "json"}
_CONTAINER_GET = {"get", "getlist", "getall", "getone", "pop", "setdefault", "get_all"}
_CONTAINER_SAME = {"to_dict", "copy", "items"}
_XML_MODULES = ("xml.", "lxml", "defusedxml", "xmltodict")
_XML_FUNCS = {"fromstring", "XML", "parseString", "fromstringlist", "XMLID", "parse", "iterparse"}
_CAST_KINDS = {"int": "integer", "float": "number", "bool": "boolean"}
_FRAMEWORK_PACKAGES = {"flask", "werkzeug", "starlette", "fastapi", "pydantic", "jinja2"}


@dataclass(frozen=True)
class _Req:
    """The request object."""


@dataclass(frozen=True)
class _Container:
    location: str


@dataclass(frozen=True)
class _Json:
    prefix: str


@dataclass(frozen=True)
class _Leaf:
    key: tuple[str, str]


@dataclass(frozen=True)
class _Str:
    """A string constant passed down to a helper (`int_arg("page")` → `request.args.get(name)`)."""

    value: str


_Value = _Req | _Container | _Json | _Leaf | _Str | None
_REQ = _Req()


@dataclass
class HandlerReads:
    """What a handler (and the helpers it calls) reads from the request."""

    inputs: dict[tuple[str, str], Input] = field(default_factory=dict)
    json_body: bool = False
    raw_body: bool = False
    xml: bool = False
    # Where the handler uses Flask's signed `session` (read from the app's session cookie).
    session_ref: tuple[str | None, int] | None = None
    body_file: str | None = None
    body_line: int | None = None

    def note_body(self, file: str | None, line: int) -> None:
        if self.body_file is None:
            self.body_file, self.body_line = file, line

    def merge(self, other: HandlerReads) -> None:
        for key, inp in other.inputs.items():
            self.inputs.setdefault(key, inp)
        self.json_body |= other.json_body
        self.raw_body |= other.raw_body
        self.xml |= other.xml
        self.session_ref = self.session_ref or other.session_ref
        if other.body_file is not None:
            self.note_body(other.body_file, other.body_line or 0)

    @property
    def reads_form(self) -> bool:
        return any(loc == "form" for loc, _ in self.inputs)

    @property
    def reads_files(self) -> bool:
        return any(loc == "multipart" for loc, _ in self.inputs)

    def resolved_inputs(self, body_methods: bool) -> list[Input]:
        """Inputs with `request.values` split into query (and form when the route takes a body).

        JSON names that are only prefixes of deeper reads (`filter` when `filter.status` is read)
        are dropped: they are containers, not values.
        """
        json_names = {name for loc, name in self.inputs if loc == "json"}
        out: list[Input] = []
        for (loc, name), inp in self.inputs.items():
            if loc == "json" and any(o.startswith(name + ".") or o.startswith(name + "[]")
                                     for o in json_names if o != name):
                continue
            if loc == "values":
                out.append(replace(inp, location="query"))
                if body_methods:
                    out.append(replace(inp, location="form"))
                continue
            out.append(inp)
        # A body read as a whole (raw bytes, or JSON with no field named) is one "body" input.
        if self.raw_body or (self.json_body and not json_names):
            out.append(Input("body", "body", source="ast", file=self.body_file, line=self.body_line))
        return out


def display_path(filename: str | None) -> str | None:
    """A stable, machine-independent path: relative to cwd, else to the sys.path entry holding it."""
    if not filename or filename.startswith("<"):  # "<string>", "<stdin>": code without a file
        return None
    path = os.path.abspath(filename)
    cwd = os.getcwd()
    if path.startswith(cwd + os.sep):
        return os.path.relpath(path, cwd)
    roots = sorted((os.path.abspath(p) for p in sys.path if p), key=len, reverse=True)
    for root in roots:
        if path.startswith(root + os.sep):
            return os.path.relpath(path, root)
    return path


@dataclass
class _Parsed:
    node: ast.FunctionDef | ast.AsyncFunctionDef
    file: str | None
    line_offset: int


_PARSE_CACHE: dict[Any, _Parsed | None] = {}


def _parse_function(func: Any) -> _Parsed | None:
    """Parse a function's source once; None when it has no readable source (builtins, REPL lambdas)."""
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    if code in _PARSE_CACHE:
        return _PARSE_CACHE[code]
    parsed: _Parsed | None = None
    try:
        # The code object, not the function: inspect would unwrap a decorator's wrapper to the view.
        lines, start = inspect.getsourcelines(code)
        tree = ast.parse(textwrap.dedent("".join(lines)))
        node = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
        if node is not None:
            parsed = _Parsed(node, display_path(inspect.getsourcefile(code)), max(start, 1) - 1)
    except (OSError, TypeError, SyntaxError, ValueError, RecursionError, MemoryError):
        parsed = None  # no source, or source too hostile to parse: the view is listed without reads
    _PARSE_CACHE[code] = parsed
    return parsed


def _top_package(module_name: str | None) -> str:
    return (module_name or "").split(".")[0]


def _flask_proxies() -> tuple[Any, Any]:
    """Flask's global `request` and `session` proxies (None, None without Flask)."""
    try:
        from flask import request, session
    except ImportError:  # Flask not installed: no global proxy to look for
        return None, None
    return request, session


def _is_xml_parser(obj: Any, dotted: str) -> bool:
    module = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
    if isinstance(module, str) and module:
        return module.startswith(_XML_MODULES) or module in ("xml", "xmltodict")
    # Unresolvable (local import): judge by the dotted name.
    parts = dotted.split(".")
    return parts[-1] in _XML_FUNCS and any(p.lower() in ("et", "etree", "elementtree", "minidom", "xmltodict",
                                                          "lxml", "xml", "defusedxml") for p in parts[:-1])


class _FunctionReader:
    """Evaluates one function body abstractly, tracking values that come from the request."""

    def __init__(self, func: Any, parsed: _Parsed, package: str, depth: int,
                 bindings: dict[str, _Value], stack: tuple[Any, ...]) -> None:
        self.func = func
        self.parsed = parsed
        self.package = package
        self.depth = depth
        self.stack = stack
        self.globals: dict[str, Any] = getattr(func, "__globals__", {}) or {}
        self.reads = HandlerReads()
        self.env: dict[str, _Value] = dict(bindings)
        proxy, session = _flask_proxies()
        self.request_globals = {k for k, v in self.globals.items() if proxy is not None and v is proxy}
        self.session_globals = {k for k, v in self.globals.items() if session is not None and v is session}

    def _key(self, node: ast.expr) -> str | None:
        """The string a subscript or `.get()` uses: a literal, a str passed in, or a module constant."""
        value = self._eval(node)
        if isinstance(value, _Str):
            return value.value
        if isinstance(node, ast.Name) and node.id not in self.env:
            constant = self.globals.get(node.id)
            return constant if isinstance(constant, str) else None
        if isinstance(node, ast.Attribute):  # `config.SESSION_COOKIE`, `Headers.TENANT`
            constant = self._resolve_global(node)
            return constant if isinstance(constant, str) else None
        return None

    # -- recording -------------------------------------------------------------------------------
    def _line(self, node: ast.AST) -> int:
        return getattr(node, "lineno", 1) + self.parsed.line_offset

    def _record(self, location: str, name: str, node: ast.AST, kind: str = "string",
                example: str | None = None) -> tuple[str, str]:
        key = (location, name)
        if key not in self.reads.inputs:
            self.reads.inputs[key] = Input(location, name, kind=kind, example=example, source="ast",  # type: ignore[arg-type]
                                           file=self.parsed.file, line=self._line(node))
        return key

    def _set_kind(self, key: tuple[str, str], kind: str) -> None:
        inp = self.reads.inputs.get(key)
        if inp is not None and inp.kind == "string":
            self.reads.inputs[key] = replace(inp, kind=kind)  # type: ignore[arg-type]

    # -- name resolution -------------------------------------------------------------------------
    def _resolve_global(self, node: ast.expr) -> Any:
        """Resolve `name` or `mod.attr.attr` through the function's globals (no local shadowing)."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.insert(0, node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id in self.env:
            return None
        obj = self.globals.get(node.id, getattr(builtins, node.id, None))
        for part in parts:
            if obj is None:
                return None
            try:
                obj = inspect.getattr_static(obj, part)
            except AttributeError:
                return None
            if isinstance(obj, staticmethod | classmethod):
                obj = obj.__func__
        return obj

    @staticmethod
    def _dotted(node: ast.expr) -> str:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.insert(0, node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            parts.insert(0, node.id)
        return ".".join(parts)

    # -- statements ------------------------------------------------------------------------------
    def run(self) -> HandlerReads:
        for arg in self._all_args(self.parsed.node.args):
            if arg.arg in self.env:
                continue
            # Starlette endpoints take `request` untyped; FastAPI ones annotate it `Request`.
            untyped_request = arg.annotation is None and arg.arg in ("request", "req") \
                and arg.arg not in self.request_globals
            if self._is_request_annotation(arg.annotation) or untyped_request:
                self.env[arg.arg] = _REQ
        for stmt in self.parsed.node.body:
            self._stmt(stmt)
        return self.reads

    @staticmethod
    def _defaults(args: ast.arguments) -> dict[str, _Value]:
        """String defaults of a helper's parameters, used when the call does not pass them."""
        positional = [*args.posonlyargs, *args.args]
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
        return {a.arg: _Str(d.value) for a, d in pairs
                if isinstance(d, ast.Constant) and isinstance(d.value, str)}

    @staticmethod
    def _all_args(args: ast.arguments) -> list[ast.arg]:
        return [*args.posonlyargs, *args.args, *args.kwonlyargs]

    @staticmethod
    def _is_request_annotation(ann: ast.expr | None) -> bool:
        if ann is None:
            return False
        name = ann.attr if isinstance(ann, ast.Attribute) else ann.id if isinstance(ann, ast.Name) else ""
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            name = ann.value.rsplit(".", 1)[-1]
        # Django's views annotate `request: HttpRequest` (or the handler-specific subclasses).
        return name in ("Request", "HTTPConnection", "HttpRequest", "WSGIRequest", "ASGIRequest")

    def _bind(self, target: ast.expr, value: _Value) -> None:
        if isinstance(target, ast.Name):
            # Binding None on purpose: a local name shadows a global request proxy of the same name.
            self.env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            for elt in target.elts:
                self._bind(elt, None)

    def _stmt(self, node: ast.AST) -> None:
        if isinstance(node, ast.Assign):
            value = self._eval(node.value)
            for target in node.targets:
                self._bind(target, value)
        elif isinstance(node, ast.AnnAssign):
            value = self._eval(node.value) if node.value is not None else None
            self._bind(node.target, value)
        elif isinstance(node, ast.For | ast.AsyncFor):
            it = self._eval(node.iter)
            self._bind(node.target, _Json(_item(it.prefix)) if isinstance(it, _Json) else None)
            for stmt in [*node.body, *node.orelse]:
                self._stmt(stmt)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                value = self._eval(item.context_expr)
                if item.optional_vars is not None:
                    self._bind(item.optional_vars, value)
            for stmt in node.body:
                self._stmt(stmt)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                local = alias.asname or alias.name
                if node.module == "flask" and alias.name == "request":
                    self.env[local] = _REQ
                elif local in self.env:
                    self.env[local] = None
        elif isinstance(node, ast.ClassDef | ast.Lambda):
            return
        else:
            self._children(node)

    def _children(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self._eval(child)
            elif isinstance(child, ast.stmt):
                self._stmt(child)
            else:
                self._children(child)

    # -- expressions -----------------------------------------------------------------------------
    def _eval(self, node: ast.expr | None) -> _Value:
        if node is None:
            return None
        match node:
            case ast.Name(id=name):
                if name in self.env:
                    return self.env[name]
                if name in self.session_globals and self.reads.session_ref is None:
                    self.reads.session_ref = (self.parsed.file, self._line(node))
                return _REQ if name in self.request_globals else None
            case ast.Constant(value=str() as text):
                return _Str(text)
            case ast.Await(value=inner):
                return self._eval(inner)
            case ast.Attribute():
                return self._attribute(node)
            case ast.Subscript():
                return self._subscript(node)
            case ast.Call():
                return self._call(node)
            case ast.NamedExpr(target=target, value=value):
                result = self._eval(value)
                self._bind(target, result)
                return result
            case ast.BoolOp(values=values):
                results = [self._eval(v) for v in values]
                return next((r for r in results if isinstance(r, _Json | _Container)), None)
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                key = self._key(left)
                for op, comp in zip(ops, comparators, strict=False):
                    container = self._eval(comp)
                    if isinstance(op, ast.In | ast.NotIn) and key is not None:
                        self._read_key(container, key, node)
                return None
            case ast.ListComp() | ast.SetComp() | ast.GeneratorExp() | ast.DictComp():
                for gen in node.generators:
                    it = self._eval(gen.iter)
                    self._bind(gen.target, _Json(_item(it.prefix)) if isinstance(it, _Json) else None)
                    for cond in gen.ifs:
                        self._eval(cond)
                for part in ("elt", "key", "value"):
                    self._eval(getattr(node, part, None))
                return None
            case ast.IfExp(test=test, body=body, orelse=orelse):
                # `data = data if isinstance(data, dict) else {}`: the request value survives the guard.
                self._eval(test)
                results = [self._eval(body), self._eval(orelse)]
                return next((r for r in results if isinstance(r, _Json | _Container)), None)
            case ast.Lambda():
                return None
            case _:
                self._children(node)
                return None

    def _attribute(self, node: ast.Attribute) -> _Value:
        base = self._eval(node.value)
        if base is None and node.attr in ("request", "session") and isinstance(node.value, ast.Name):
            # `flask.request.args`, `flask.session[...]`: module attributes are the same proxies.
            proxy, session = _flask_proxies()
            resolved = self._resolve_global(node)
            if proxy is not None and resolved is proxy:
                return _REQ
            if session is not None and resolved is session and self.reads.session_ref is None:
                self.reads.session_ref = (self.parsed.file, self._line(node))
        if not isinstance(base, _Req):
            return None
        attr = node.attr
        if attr in _CONTAINERS:
            return _Container(_CONTAINERS[attr])
        if attr in _JSON_ATTRS:
            self.reads.json_body = True
            self.reads.note_body(self.parsed.file, self._line(node))
            return _Json("")
        if attr in _RAW_BODY_ATTRS:
            self.reads.raw_body = True
            self.reads.note_body(self.parsed.file, self._line(node))
            return None
        if attr in _HEADER_ATTRS:
            self._record("header", _HEADER_ATTRS[attr], node)
            return None
        return None

    def _subscript(self, node: ast.Subscript) -> _Value:
        base = self._eval(node.value)
        key = self._key(node.slice)
        index = node.slice.operand if isinstance(node.slice, ast.UnaryOp) else node.slice
        if isinstance(base, _Json) and isinstance(index, ast.Constant) and isinstance(index.value, int):
            return _Json(_item(base.prefix))  # data["items"][0]
        if isinstance(key, str):
            return self._read_key(base, key, node)
        return None

    def _read_key(self, base: _Value, key: str, node: ast.AST, kind: str = "string",
                  example: str | None = None) -> _Value:
        if isinstance(base, _Container):
            location = base.location
            if location == "multipart":
                kind = "file"
            return _Leaf(self._record(location, key, node, kind, example))
        if isinstance(base, _Json):
            name = f"{base.prefix}.{key}" if base.prefix else key
            self._record("json", name, node, kind, example)
            return _Json(name)
        return None

    def _call(self, node: ast.Call) -> _Value:
        func = node.func
        if isinstance(func, ast.Attribute):
            result = self._method_call(node, func)
            if result is not NotImplemented:
                return result
        arg_values = [self._eval(a) for a in node.args]
        kw_values = {kw.arg: self._eval(kw.value) for kw in node.keywords}
        if isinstance(func, ast.Name) and func.id in ("int", "float", "bool") and func.id not in self.env \
                and len(arg_values) == 1 and isinstance(arg_values[0], _Leaf):
            self._set_kind(arg_values[0].key, _CAST_KINDS[func.id])
            return None
        if isinstance(func, ast.Name) and func.id in ("dict",) and arg_values \
                and isinstance(arg_values[0], _Container | _Json):
            return arg_values[0]
        target = self._resolve_global(func)
        if target is not None and _is_xml_parser(target, self._dotted(func)) and \
                self._dotted(func).split(".")[-1] in _XML_FUNCS:
            self.reads.xml = True
        elif target is None and not isinstance(func, ast.Name) and \
                _is_xml_parser(None, self._dotted(func)):
            self.reads.xml = True
        self._follow(target, node, arg_values, kw_values)
        return None

    def _method_call(self, node: ast.Call, func: ast.Attribute) -> _Value:
        """Calls on request-derived values; NotImplemented when the callee is something else."""
        base = self._eval(func.value)
        method = func.attr
        if isinstance(base, _Req):
            for a in [*node.args, *(k.value for k in node.keywords)]:
                self._eval(a)
            if method in _JSON_METHODS:
                self.reads.json_body = True
                self.reads.note_body(self.parsed.file, self._line(node))
                return _Json("")
            if method in _RAW_BODY_METHODS:
                self.reads.raw_body = True
                self.reads.note_body(self.parsed.file, self._line(node))
                return None
            if method == "form":  # Starlette: `await request.form()`
                return _Container("form")
            return None
        if isinstance(base, _Container | _Json):
            for a in [*node.args[1:], *(k.value for k in node.keywords)]:
                self._eval(a)
            if method in _CONTAINER_SAME:
                return base
            key = self._key(node.args[0]) if node.args else None
            if method in _CONTAINER_GET and key is not None:
                kind, example = self._get_hints(node, base)
                return self._read_key(base, key, node, kind, example)
            return None
        return NotImplemented

    @staticmethod
    def _literal(node: ast.expr | None) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        return None

    def _get_hints(self, node: ast.Call, base: _Container | _Json) -> tuple[str, str | None]:
        """Kind (from `type=int`) and example (from a scalar default) of a `.get(name, default)` read."""
        type_node = next((k.value for k in node.keywords if k.arg == "type"), None)
        if type_node is None and isinstance(base, _Container) and len(node.args) >= 3:
            type_node = node.args[2]
        kind = "string"
        if isinstance(type_node, ast.Name) and type_node.id not in self.env:
            kind = _CAST_KINDS.get(type_node.id, "string")
        default = node.args[1] if len(node.args) >= 2 else next(
            (k.value for k in node.keywords if k.arg == "default"), None)
        value = self._literal(default)
        example = None
        if isinstance(value, bool):
            example = str(value).lower()
        elif isinstance(value, str | int | float) and value != "":
            example = str(value)
            if kind == "string" and isinstance(value, int):
                kind = "integer"
        return kind, example

    # -- helpers -------------------------------------------------------------------------------
    def _follow(self, target: Any, node: ast.Call, args: list[_Value],
                kwargs: dict[str | None, _Value]) -> None:
        """Read a helper of the app's own package, passing request-derived arguments through."""
        if self.depth >= MAX_HELPER_DEPTH or not inspect.isfunction(target):
            return
        helper = inspect.unwrap(target)
        if _top_package(getattr(helper, "__module__", None)) != self.package:
            return
        parsed = _parse_function(helper)
        if parsed is None:
            return
        params = [a.arg for a in self._all_args(parsed.node.args)]
        bindings: dict[str, _Value] = {}
        starred = any(isinstance(a, ast.Starred) for a in node.args)
        if not starred:
            for name, value in zip(params, args, strict=False):
                if value is not None and not isinstance(value, _Leaf):
                    bindings[name] = value
        for kw, value in kwargs.items():
            if kw is not None and kw in params and value is not None and not isinstance(value, _Leaf):
                bindings[kw] = value
        passed = set(params[:len(node.args)]) | {k for k in kwargs if k}
        for name, default in self._defaults(parsed.node.args).items():
            if name not in passed and not starred:
                bindings[name] = default
        self.reads.merge(read_function(helper, package=self.package, depth=self.depth + 1,
                                       bindings=bindings, stack=self.stack))


def _item(prefix: str) -> str:
    return f"{prefix}[]"


_RESULT_CACHE: dict[tuple[Any, str, int, tuple[tuple[str, str], ...]], HandlerReads] = {}


def read_function(func: Any, *, package: str | None = None, depth: int = 0,
                  bindings: dict[str, _Value] | None = None, stack: tuple[Any, ...] = ()) -> HandlerReads:
    """Inputs read by `func` and by the app helpers it calls (up to MAX_HELPER_DEPTH calls deep)."""
    func = inspect.unwrap(func) if callable(func) else func
    code = getattr(func, "__code__", None)
    if code is None or code in stack:
        return HandlerReads()
    module = getattr(func, "__module__", None)
    package = package or _top_package(module)
    if _top_package(module) in _FRAMEWORK_PACKAGES and package in _FRAMEWORK_PACKAGES:
        return HandlerReads()
    bindings = bindings or {}
    cache_key = (code, package, depth, tuple(sorted((k, repr(v)) for k, v in bindings.items())))
    if cache_key in _RESULT_CACHE:
        return _RESULT_CACHE[cache_key]
    parsed = _parse_function(func)
    if parsed is None:
        return HandlerReads()
    reads = _run_reader(_FunctionReader(func, parsed, package, depth, bindings, (*stack, code)))
    _RESULT_CACHE[cache_key] = reads
    return reads


def _run_reader(reader: _FunctionReader) -> HandlerReads:
    try:
        return reader.run()
    except RecursionError:  # absurdly nested source: keep what was found
        return reader.reads


def read_view(view: Any) -> HandlerReads:
    """Inputs read by a view, including decorators of the app's package wrapped around it."""
    reads = HandlerReads()
    package = _top_package(getattr(inspect.unwrap(view), "__module__", None)) if callable(view) else ""
    seen: set[int] = set()
    current = view
    # Walk the `__wrapped__` chain: an app decorator (`@require_api_key`) reads inputs too.
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if inspect.isfunction(current) and _top_package(current.__module__) == package:
            fn_reads = read_function(current, package=package) if not hasattr(current, "__wrapped__") \
                else _read_single(current, package)
            reads.merge(fn_reads)
        current = getattr(current, "__wrapped__", None)
    return reads


def _read_single(func: Any, package: str) -> HandlerReads:
    """Read one function in a decorator chain without unwrapping it to the innermost view."""
    code = func.__code__
    parsed = _parse_function(func)
    if parsed is None:
        return HandlerReads()
    key = (code, package, 0, ())
    if key not in _RESULT_CACHE:
        _RESULT_CACHE[key] = _run_reader(_FunctionReader(func, parsed, package, 0, {}, (code,)))
    return _RESULT_CACHE[key]


def body_consumes(reads: HandlerReads) -> list[str]:
    """Media types implied by what a handler reads from the body, most preferred first."""
    out: list[str] = []
    if reads.reads_files:
        out.append("multipart/form-data")
    elif reads.reads_form:
        out.append("application/x-www-form-urlencoded")
    if reads.json_body:
        out.append("application/json")
    if reads.raw_body and reads.xml:
        out.append("application/xml")
    return out
