"""Intra-module taint tracking over the AST: request data → sinks, through locals and small helpers.

The model is deliberately simple and conservative about *propagation* (to avoid false positives):
a value is tainted when it comes from the request (Flask's global `request`, a `request`/`Request`
parameter, FastAPI `Query()/Cookie()/Header()/Form()/Path()` parameters, path parameters of a
decorated route), and taint flows through assignments, f-strings, `%`, `+`, `.format`, `str()`,
`os.path.join`, method calls on a tainted value and container reads. It does *not* flow through
calls to unknown functions (so `int(x)`, `secure_filename(x)`, `shlex.quote(x)`, an allowlist
`MAP.get(x)` all stop it) nor through comparisons. Branches are merged by union (the analysis cannot
know which branch runs). Helpers defined in the same module are summarised (which parameters reach
which sink, and which reach the return value) and applied at call sites, a few calls deep.
Nothing is imported or executed.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Label = tuple[str, str]  # (location, name): ("query", "q"), ("json", "filter.status"), ("param", "x")
Taint = frozenset[Label]
EMPTY: Taint = frozenset()
REQOBJ: Label = ("reqobj", "")
MAX_HELPER_DEPTH = 3

# Request attribute -> label of what it holds ("" name: the whole container).
_REQUEST_ATTRS: dict[str, str] = {
    "args": "query", "values": "query", "form": "form", "files": "multipart", "headers": "header",
    "cookies": "cookie", "query_params": "query", "path_params": "path", "GET": "query", "POST": "form",
    "COOKIES": "cookie", "FILES": "multipart", "META": "header", "json": "json", "data": "body",
    "body": "body", "stream": "body", "path": "url", "full_path": "url", "url": "url",
    "query_string": "url", "user_agent": "header", "referrer": "header",
}
_REQUEST_METHODS: dict[str, str] = {
    "get_json": "json", "json": "json", "body": "body", "form": "form", "get_data": "body",
    "stream": "body", "read": "body",
}
_KEYED_LOCATIONS = {"query", "form", "multipart", "header", "cookie", "path"}
_GET_METHODS = {"get", "getlist", "getone", "get_all", "pop", "setdefault", "getall", "__getitem__"}
# Methods of a tainted value whose result carries no attacker text.
_NON_PROPAGATING = {"startswith", "endswith", "isdigit", "isalpha", "isalnum", "isnumeric", "isdecimal",
                    "isspace", "count", "find", "rfind", "index", "rindex", "fullmatch", "match"}
# Functions whose result carries their arguments' text.
_PROPAGATORS = {
    "str", "repr", "bytes", "bytearray", "format", "ascii", "list", "tuple", "set", "dict", "sorted",
    "reversed", "iter", "next", "os.path.join", "os.path.normpath", "os.path.abspath", "os.path.realpath",
    "os.path.expanduser", "posixpath.join", "pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath",
    "urllib.parse.unquote", "urllib.parse.unquote_plus", "base64.b64decode", "base64.urlsafe_b64decode",
    "json.loads", "textwrap.dedent", "sqlalchemy.text", "sqlalchemy.sql.text", "sqlalchemy.sql.expression.text",
}
_CONST_RECEIVER_METHODS = {"format", "format_map", "join"}
_ROUTE_DECORATORS = {"route", "get", "post", "put", "patch", "delete", "api_route", "websocket", "head",
                     "options"}
# FastAPI/Starlette parameter markers -> input location.
_PARAM_MARKERS = {"Query": "query", "Cookie": "cookie", "Header": "header", "Form": "form", "Path": "path",
                  "Body": "json", "File": "multipart", "UploadFile": "multipart"}
_REQUEST_ANNOTATIONS = {"Request", "HTTPConnection", "HttpRequest", "WSGIRequest", "ASGIRequest"}
_NON_TEXT_TYPES = {"int", "float", "bool", "UUID", "date", "datetime", "Decimal"}


def is_data(label: Label) -> bool:
    return label[0] not in ("reqobj", "param")


def data_labels(taint: Taint) -> Taint:
    return frozenset(lab for lab in taint if is_data(lab))


@dataclass(frozen=True)
class Hit:
    """A rule match: where, what data reached it (empty for configuration rules), and detail."""

    rule: str
    line: int
    taint: Taint = EMPTY
    detail: str = ""
    severity: str | None = None
    confidence: str | None = None
    # Function holding the match, and the chain of callers the taint came through (outermost first).
    function: str | None = None
    chain: tuple[str, ...] = ()


@dataclass
class CallView:
    """What a rule sees of one call: names, arguments, and the taint of any sub-expression."""

    node: ast.Call
    qualname: str  # import-resolved dotted name: "subprocess.run", "?.execute"
    attr: str  # last segment
    taint_of: Callable[[ast.AST], Taint]
    function: str | None
    assigned_to: str | None
    analysis: ModuleAnalysis

    def kw(self, name: str) -> ast.expr | None:
        return next((k.value for k in self.node.keywords if k.arg == name), None)

    def arg(self, index: int, name: str | None = None) -> ast.expr | None:
        if index < len(self.node.args) and not isinstance(self.node.args[index], ast.Starred):
            return self.node.args[index]
        return self.kw(name) if name else None


CallRule = Callable[[CallView], Iterator[Hit]]
StmtRule = Callable[[ast.stmt, "ModuleAnalysis", str | None], Iterator[Hit]]


@dataclass
class Summary:
    """What a helper does with its parameters: sink hits and the taint of its return value."""

    params: list[str]
    hits: list[Hit] = field(default_factory=list)
    returns: Taint = EMPTY


def dotted(node: ast.AST) -> str:
    """`a.b.c` for names and attributes; `?` stands for anything else (`db().execute` → `?.execute`)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return "?"


class ModuleAnalysis:
    """One parsed module: imports, functions, summaries, and the rule hits found in it."""

    def __init__(self, tree: ast.Module, file: str, lines: list[str], call_rules: list[CallRule],
                 stmt_rules: list[StmtRule]) -> None:
        self.tree, self.file, self.lines = tree, file, lines
        self.call_rules, self.stmt_rules = call_rules, stmt_rules
        self.aliases = _import_aliases(tree)
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.top_level: dict[str, str] = {}  # simple name -> qualname, for module-level functions
        self.spans: dict[str, tuple[int, int]] = {}
        self.calls: dict[str, set[str]] = {}  # caller qualname -> local callees
        self._collect_functions(tree.body, "")
        self._summaries: dict[str, Summary] = {}
        self._in_progress: set[str] = set()
        self.hits: list[Hit] = []

    # -- structure ------------------------------------------------------------------------------
    def _collect_functions(self, body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                qual = prefix + node.name
                self.functions[qual] = node
                if not prefix:
                    self.top_level[node.name] = qual
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                self.spans[qual] = (start, node.end_lineno or node.lineno)
                self._collect_functions(node.body, qual + ".<locals>.")
            elif isinstance(node, ast.ClassDef):
                self._collect_functions(node.body, prefix + node.name + ".")

    def resolve(self, node: ast.AST) -> str:
        """Dotted name with its first part resolved through the module's imports."""
        name = dotted(node)
        head, _, rest = name.partition(".")
        full = self.aliases.get(head)
        if full is None:
            return name
        return f"{full}.{rest}" if rest else full

    # -- analysis -------------------------------------------------------------------------------
    def run(self) -> list[Hit]:
        """Analyse module-level statements and every function; return deduplicated hits."""
        module_walker = _Walker(self, None, {}, depth=0)
        for stmt in self.tree.body:
            module_walker.stmt(stmt)  # for a def or class: only the statement rules (decorators)
            if isinstance(stmt, ast.ClassDef):
                module_walker.class_body(stmt)
        self.hits.extend(module_walker.hits)
        for qual in self.functions:
            summary = self.summary(qual)
            self.hits.extend(h for h in summary.hits if data_labels(h.taint) or not h.taint)
        seen: set[tuple[str, int, tuple[str, ...], str | None]] = set()
        out: list[Hit] = []
        for hit in sorted(self.hits, key=lambda h: (h.line, h.rule, h.chain)):
            if hit.taint and not data_labels(hit.taint):
                continue  # reached only by a parameter: reported where a caller passes request data
            key = (hit.rule, hit.line, hit.chain, hit.function)
            if key not in seen:
                seen.add(key)
                out.append(hit)
        return out

    def summary(self, qual: str, depth: int = 0) -> Summary:
        """The function's summary, computed once (a recursive call sees an empty summary)."""
        if qual in self._summaries:
            return self._summaries[qual]
        node = self.functions[qual]
        params = [a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]]
        if qual in self._in_progress or depth > MAX_HELPER_DEPTH:
            return Summary(params)
        self._in_progress.add(qual)
        env = {name: taint for name, taint in self._param_sources(node).items()}
        walker = _Walker(self, qual, env, depth=depth)
        for stmt in node.body:
            walker.stmt(stmt)
        self._in_progress.discard(qual)
        summary = Summary(params, walker.hits, walker.returns)
        self._summaries[qual] = summary
        return summary

    def _param_sources(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, Taint]:
        """Initial taint of each parameter: a request source, or a placeholder for the summary."""
        route_params = _route_params(node)
        is_route = route_params is not None
        env: dict[str, Taint] = {}
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults: dict[str, ast.expr] = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]],
                                                 args.defaults, strict=True))
        defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None})
        for arg in [*positional, *args.kwonlyargs]:
            env[arg.arg] = self._one_param_source(arg, defaults.get(arg.arg), route_params, is_route)
        return env

    def _one_param_source(self, arg: ast.arg, default: ast.expr | None, route_params: set[str] | None,
                          is_route: bool) -> Taint:
        name = arg.arg
        ann = arg.annotation
        if _annotation_name(ann) in _REQUEST_ANNOTATIONS or (ann is None and name in ("request", "req")):
            return frozenset({REQOBJ})
        marker = _marker(ann, default)
        if marker is not None:
            location, alias = marker
            if _non_text_annotation(ann):
                return EMPTY
            if location == "header" and alias is None:
                alias = name.replace("_", "-")
            return frozenset({(location, alias or name)})
        if route_params and name in route_params:
            return EMPTY if _non_text_annotation(ann) else frozenset({("path", name)})
        if is_route and name not in ("self", "cls") and _is_plain_text(ann) and default is None \
                and route_params is not None and ann is not None:
            return frozenset({("query", name)})  # FastAPI: a plain `str` parameter is a query parameter
        return frozenset({("param", name)})


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    head = a.name.split(".")[0]
                    aliases.setdefault(head, head)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _annotation_name(ann: ast.expr | None) -> str:
    if isinstance(ann, ast.Attribute):
        return ann.attr
    if isinstance(ann, ast.Name):
        return ann.id
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        return ann.value.rsplit(".", 1)[-1]
    return ""


def _marker(ann: ast.expr | None, default: ast.expr | None) -> tuple[str, str | None] | None:
    """FastAPI marker (`Annotated[str, Query(alias="x")]` or `= Query(...)`) → (location, alias)."""
    calls: list[ast.expr] = []
    if isinstance(ann, ast.Subscript) and _annotation_name(ann.value) == "Annotated" \
            and isinstance(ann.slice, ast.Tuple):
        calls.extend(ann.slice.elts[1:])
    if default is not None:
        calls.append(default)
    for call in calls:
        if isinstance(call, ast.Call) and _annotation_name(call.func) in _PARAM_MARKERS:
            alias = next((k.value.value for k in call.keywords if k.arg == "alias"
                          and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)), None)
            return _PARAM_MARKERS[_annotation_name(call.func)], alias
    if _annotation_name(ann) == "UploadFile":
        return "multipart", None
    return None


def _non_text_annotation(ann: ast.expr | None) -> bool:
    """An annotation that makes the framework convert the value to a non-string (int, UUID, ...)."""
    if isinstance(ann, ast.Subscript) and _annotation_name(ann.value) == "Annotated" \
            and isinstance(ann.slice, ast.Tuple):
        return _non_text_annotation(ann.slice.elts[0])
    if isinstance(ann, ast.BinOp):  # int | None
        return _non_text_annotation(ann.left) and _non_text_annotation(ann.right) \
            or (_non_text_annotation(ann.left) and _is_none(ann.right))
    return _annotation_name(ann) in _NON_TEXT_TYPES


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_plain_text(ann: ast.expr | None) -> bool:
    if isinstance(ann, ast.BinOp):
        return _is_plain_text(ann.left) or _is_plain_text(ann.right)
    return _annotation_name(ann) == "str"


def _route_params(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str] | None:
    """Path parameter names when the function is decorated as a route, else None."""
    import re

    for dec in node.decorator_list:
        if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) \
                and dec.func.attr in _ROUTE_DECORATORS and dec.args \
                and isinstance(dec.args[0], ast.Constant) and isinstance(dec.args[0].value, str):
            path = dec.args[0].value
            return set(re.findall(r"<(?:[^:<>]+:)?(\w+)>", path)) | set(re.findall(r"\{(\w+)(?::[^}]*)?\}", path))
    return None


def _key_label(label: Label, key: str | None) -> Label:
    loc, name = label
    if key is None:
        return label
    if loc == "json":
        return (loc, f"{name}.{key}" if name else key)
    if loc in _KEYED_LOCATIONS and not name:
        return (loc, key)
    return label


def _const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


class _Walker:
    """Abstract interpretation of one function body (or module level) over taint sets."""

    def __init__(self, analysis: ModuleAnalysis, function: str | None, env: dict[str, Taint],
                 depth: int) -> None:
        self.a = analysis
        self.function = function
        self.env = env
        self.depth = depth
        self.hits: list[Hit] = []
        self.returns: Taint = EMPTY
        self._assigned_to: str | None = None
        self._cache: dict[int, Taint] = {}

    # -- statements -----------------------------------------------------------------------------
    def stmt(self, node: ast.stmt) -> None:
        for rule in self.a.stmt_rules:
            self.hits.extend(self._own(rule(node, self.a, self.function)))
        if isinstance(node, ast.Assign):
            self._assigned_to = dotted(node.targets[0]) if len(node.targets) == 1 else None
            value = self.expr(node.value)
            self._assigned_to = None
            for target in node.targets:
                self.bind(target, value, node.value)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self._assigned_to = dotted(node.target)
                self.bind(node.target, self.expr(node.value), node.value)
                self._assigned_to = None
        elif isinstance(node, ast.AugAssign):
            value = self.expr(node.value)
            if isinstance(node.target, ast.Name) and isinstance(node.op, ast.Add | ast.Mod):
                self.env[node.target.id] = self.env.get(node.target.id, EMPTY) | value
        elif isinstance(node, ast.If | ast.While):
            self.expr(node.test)
            self._branches([node.body, node.orelse])
        elif isinstance(node, ast.For | ast.AsyncFor):
            self.bind(node.target, self.expr(node.iter), None)
            self._branches([node.body, node.orelse])
        elif isinstance(node, ast.Try | ast.TryStar):
            self._branches([node.body + node.orelse, *[h.body for h in node.handlers]])
            self.block(node.finalbody)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                value = self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, value, None)
            self.block(node.body)
        elif isinstance(node, ast.Match):
            self.expr(node.subject)
            self._branches([c.body for c in node.cases])
        elif isinstance(node, ast.Return):
            if node.value is not None:
                self.returns |= self.expr(node.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Import
                        | ast.ImportFrom):
            return  # nested functions are analysed on their own; classes via class_body
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def class_body(self, node: ast.ClassDef) -> None:
        """Module-level class bodies hold configuration (Django/Flask config classes)."""
        for stmt in node.body:
            self.stmt(stmt)
            if isinstance(stmt, ast.ClassDef):
                self.class_body(stmt)

    def block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.stmt(stmt)

    def _branches(self, bodies: list[list[ast.stmt]]) -> None:
        """Run each branch from the same state, then join by union (either may have run)."""
        start = dict(self.env)
        merged: dict[str, Taint] = dict(start)
        for body in bodies:
            self.env = dict(start)
            self.block(body)
            for name, taint in self.env.items():
                merged[name] = merged.get(name, EMPTY) | taint
        self.env = merged

    def bind(self, target: ast.expr, value: Taint, value_node: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            elts = value_node.elts if isinstance(value_node, ast.Tuple | ast.List) else None
            for i, elt in enumerate(target.elts):
                if elts is not None and len(elts) == len(target.elts):
                    self.bind(elt, self.expr(elts[i]), elts[i])
                else:
                    self.bind(elt, value, None)
        elif isinstance(target, ast.Starred):
            self.bind(target.value, value, None)
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            name = target.value.id  # d[k] = tainted: the container now holds request data
            self.env[name] = self.env.get(name, EMPTY) | value

    # -- expressions ----------------------------------------------------------------------------
    def expr(self, node: ast.AST | None) -> Taint:
        if node is None:
            return EMPTY
        key = id(node)
        if key in self._cache:
            return self._cache[key]
        taint = self._expr(node)
        self._cache[key] = taint
        return taint

    def _expr(self, node: ast.AST) -> Taint:  # noqa: C901 -- one branch per node type reads best
        if isinstance(node, ast.Name):
            if node.id in self.env:
                return self.env[node.id]
            if self.a.aliases.get(node.id) in ("flask.request", "quart.request"):
                return frozenset({REQOBJ})
            return EMPTY
        if isinstance(node, ast.Attribute):
            base = self.expr(node.value)
            if self.a.resolve(node) in ("flask.request", "quart.request"):
                return frozenset({REQOBJ})
            out = set(data_labels(base))
            if REQOBJ in base and node.attr in _REQUEST_ATTRS:
                out.add((_REQUEST_ATTRS[node.attr], ""))
            if ("param", "") in base or any(lab[0] == "param" for lab in base):
                out |= {lab for lab in base if lab[0] == "param"}
            return frozenset(out)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.JoinedStr):
            return _union(self.expr(v) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            return self.expr(node.value)
        if isinstance(node, ast.BinOp):
            left, right = self.expr(node.left), self.expr(node.right)
            return left | right if isinstance(node.op, ast.Add | ast.Mod) else EMPTY
        if isinstance(node, ast.BoolOp):
            return _union(self.expr(v) for v in node.values)
        if isinstance(node, ast.IfExp):
            self.expr(node.test)
            return self.expr(node.body) | self.expr(node.orelse)
        if isinstance(node, ast.Subscript):
            base = self.expr(node.value)
            self.expr(node.slice)
            key = _const_str(node.slice)
            return frozenset(_key_label(lab, key) for lab in base if lab != REQOBJ)
        if isinstance(node, ast.Await | ast.Starred):
            return self.expr(node.value)
        if isinstance(node, ast.NamedExpr):
            value = self.expr(node.value)
            self.bind(node.target, value, node.value)
            return value
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return _union(self.expr(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return _union([*(self.expr(k) for k in node.keys if k is not None), *(self.expr(v) for v in node.values)])
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            return self._comprehension(node)
        for child in ast.iter_child_nodes(node):  # Compare, UnaryOp, Lambda...: evaluated for sinks only
            if isinstance(child, ast.expr):
                self.expr(child)
        return EMPTY

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> Taint:
        saved = dict(self.env)
        for gen in node.generators:
            self.bind(gen.target, self.expr(gen.iter), None)
            for cond in gen.ifs:
                self.expr(cond)
        if isinstance(node, ast.DictComp):
            out = self.expr(node.key) | self.expr(node.value)
        else:
            out = self.expr(node.elt)
        self.env = saved
        return out

    def _call(self, node: ast.Call) -> Taint:
        func = node.func
        receiver = self.expr(func.value) if isinstance(func, ast.Attribute) else EMPTY
        args = [self.expr(a) for a in node.args]
        kwargs = {k.arg: self.expr(k.value) for k in node.keywords}
        qualname = self.a.resolve(func)
        attr = func.attr if isinstance(func, ast.Attribute) else qualname.rsplit(".", 1)[-1]
        view = CallView(node, qualname, attr, self.expr, self.function, self._assigned_to, self.a)
        for rule in self.a.call_rules:
            self.hits.extend(self._own(rule(view)))
        all_args = _union([*args, *kwargs.values()])
        local = self._local_function(func)
        if local is not None:
            return self._apply_summary(local, node, args, kwargs)
        if isinstance(func, ast.Attribute):
            if REQOBJ in receiver and attr in _REQUEST_METHODS:
                return frozenset({(_REQUEST_METHODS[attr], "")})
            data = frozenset(lab for lab in receiver if lab != REQOBJ)
            if data:
                if attr in _NON_PROPAGATING:
                    return EMPTY
                if attr in _GET_METHODS:
                    key = _const_str(node.args[0]) if node.args else None
                    keyed = frozenset(_key_label(lab, key) for lab in data)
                    return keyed | (args[1] if len(args) > 1 else EMPTY)
                return data
            if attr in _CONST_RECEIVER_METHODS:
                return all_args
        if qualname in _PROPAGATORS:
            return all_args
        return EMPTY

    def _local_function(self, func: ast.expr) -> str | None:
        if isinstance(func, ast.Name) and func.id not in self.env:
            return self.a.top_level.get(func.id)
        return None

    def _apply_summary(self, callee: str, node: ast.Call, args: list[Taint], kwargs: dict[str | None, Taint]) -> Taint:
        """Map a helper's parameter-tainted sinks and return value onto this call's arguments."""
        if self.function is not None:
            self.a.calls.setdefault(self.function, set()).add(callee)
        if self.depth >= MAX_HELPER_DEPTH:
            return EMPTY
        summary = self.a.summary(callee, self.depth + 1)
        binding: dict[str, Taint] = {}
        for param, taint in zip(summary.params, args, strict=False):
            binding[param] = taint
        for keyword, taint in kwargs.items():
            if keyword is not None:
                binding[keyword] = taint

        def substitute(taint: Taint) -> Taint:
            out: set[Label] = set()
            for lab in taint:
                if lab[0] == "param":
                    out |= binding.get(lab[1], EMPTY) - {REQOBJ}
                elif lab != REQOBJ:
                    out.add(lab)
            return frozenset(out)

        for hit in summary.hits:
            params = {lab for lab in hit.taint if lab[0] == "param"}
            if not params:
                continue
            mapped = substitute(frozenset(params))
            if mapped:
                self.hits.append(Hit(hit.rule, hit.line, mapped, hit.detail, hit.severity, hit.confidence,
                                     hit.function, (self.function or "<module>", *hit.chain)))
        return substitute(summary.returns)

    def _own(self, hits: Iterator[Hit]) -> Iterator[Hit]:
        for hit in hits:
            yield Hit(hit.rule, hit.line, hit.taint, hit.detail, hit.severity, hit.confidence,
                      self.function, hit.chain)


def _union(taints: list[Taint] | Iterator[Taint]) -> Taint:
    out: set[Label] = set()
    for t in taints:
        out |= t
    return frozenset(out)
