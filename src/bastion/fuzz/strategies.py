"""Values for a request shape: hypothesis strategies (valid first, so shrinking heads for valid values),
an explicit edge-case sweep, and the RequestSpec an example becomes."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import strategies as st

from bastion.fuzz import edges
from bastion.fuzz.shape import Field, Node, RequestShape
from bastion.surface.model import EntryPoint
from bastion.surface.requests import RequestSpec, _set_json_path, fill_path

MODE = "~mode"  # example key holding how the body is sent
Example = dict[str, Any]
MAX_TEXT = 40
# Malformed bodies join the sweep after this many rounds of field edge cases (the fields' first
# edge values, wrong types and empties, are the likelier crashes).
MODES_FROM_ROUND = 5
MAX_ITEMS = 3
# Header and cookie values: printable ASCII (anything else is rejected by the client, not the app).
_HEADER_ALPHABET = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=";,\"\\")


class _Omit:
    """The field is left out of the request."""

    def __repr__(self) -> str:
        return "<omitted>"


OMIT = _Omit()

BODY_MODES: dict[str | None, tuple[str, ...]] = {
    "json": ("normal", "invalid_json", "wrong_content_type", "array_body", "empty_body", "extra_property",
             "deep_nesting"),
    "form": ("normal", "empty_body", "wrong_content_type"),
    "multipart": ("normal", "empty_body"),
    "body": ("normal", "empty_body"),
    None: ("normal",),
}


def default_value(node: Node, canary: str = "") -> Any:
    """A benign valid value: the example, the first enum member, or a plain value of the kind."""
    if node.example is not None and node.kind not in ("object", "array"):
        return node.example
    if node.enum:
        return node.enum[0]
    match node.kind:
        case "integer":
            return int(max(node.minimum or 1, 1)) if node.maximum is None or node.maximum >= 1 else int(node.maximum)
        case "number":
            return 1.5 if (node.minimum is None or node.minimum <= 1.5) else node.minimum
        case "boolean":
            return True
        case "file":
            return b"bastion"
        case "object":
            return {k: default_value(c, canary) for k, c in node.children.items()}
        case "array":
            return [default_value(node.item, canary)] if node.item is not None else []
    return canary or "bastion"


def _valid_text(node: Node, location: str, canary: str) -> st.SearchStrategy[Any]:
    low = node.min_length or 0
    high = min(node.max_length if node.max_length is not None else MAX_TEXT, MAX_TEXT)
    high = max(high, low)
    alphabet = _HEADER_ALPHABET if location in ("header", "cookie") else st.characters()
    if canary and (node.max_length is None or node.max_length >= len(canary) + high):
        # The canary leads every generated string: a sensor event carrying it names this request.
        return st.text(alphabet, min_size=low, max_size=high).map(lambda s: canary + s)
    return st.text(alphabet, min_size=low, max_size=high)


def valid_strategy(node: Node, location: str, depth: int = 0, canary: str = "") -> st.SearchStrategy[Any]:
    """Values the declared (or guessed) type accepts."""
    if node.enum:
        return st.sampled_from(node.enum)
    match node.kind:
        case "integer":
            low = int(node.minimum) if node.minimum is not None else -1000
            high = int(node.maximum) if node.maximum is not None else 1000
            return st.integers(min_value=min(low, high), max_value=max(low, high))
        case "number":
            return st.floats(min_value=node.minimum, max_value=node.maximum, allow_nan=False, allow_infinity=False)
        case "boolean":
            return st.booleans()
        case "file":
            return st.binary(max_size=64)
        case "object" if depth < 4:
            required = {k: valid_strategy(c, location, depth + 1, canary) for k, c in node.children.items()
                        if k in node.required}
            optional = {k: valid_strategy(c, location, depth + 1, canary) for k, c in node.children.items()
                        if k not in node.required}
            return st.fixed_dictionaries(required, optional=optional)
        case "array" if depth < 4:
            item = valid_strategy(node.item, location, depth + 1, canary) if node.item is not None else st.none()
            return st.lists(item, min_size=node.min_length or 0,
                            max_size=max(min(node.max_length or MAX_ITEMS, MAX_ITEMS), node.min_length or 0))
    if location == "json" and not node.typed:
        # The type is a guess: any JSON value is plausible; small integers and empty lists shrink first.
        scalars = st.one_of(st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
        return st.one_of(_valid_text(node, location, canary), scalars, st.lists(scalars, max_size=MAX_ITEMS))
    return _valid_text(node, location, canary)


def edge_values(node: Node, location: str, required: bool = False) -> list[Any]:
    """Boundary, wrong-type, huge and unicode values for a field, in sweep order."""
    json_loc = location == "json"
    out: list[Any] = []
    if json_loc and not node.typed:
        out += edges.JSON_WRONG_TYPES
    match node.kind:
        case "integer" | "number":
            out += list(edges.INTEGER_BOUNDARIES)
            if node.minimum is not None:
                out.append(int(node.minimum) - 1 if node.kind == "integer" else node.minimum - 0.5)
            if node.maximum is not None:
                out.append(int(node.maximum) + 1 if node.kind == "integer" else node.maximum + 0.5)
            if node.kind == "number":
                out += list(edges.NUMBER_BOUNDARIES) + list(edges.NUMBER_SPECIALS)
            out += list(edges.JSON_WRONG_TYPES) if json_loc else list(edges.TEXT_WRONG_TYPES)
        case "boolean":
            out += [None, 0, 2, "yes", ""] if json_loc else ["", "yes", "2", "TRUE", "null"]
        case "array":
            out += [[], [None], edges.deep_json(), [default_value(node.item)] * 1000 if node.item else [0] * 1000]
            if node.max_length is not None:
                out.append([default_value(node.item) if node.item else 0] * (node.max_length + 1))
            out += [None, {}, "", 0]
        case "object":
            out += [{}, None, [], "", {"": None}]
        case "file":
            out += [b"", b"\x00" * 1024, b"\xff\xfe\x00", bytes(range(256)) * 64]
        case _:
            out += list(edges.STRING_BOUNDARIES)
            if node.max_length is not None:
                out.append("a" * (node.max_length + 1))
            out.append(edges.huge_string())
            out += list(edges.UNICODE_EDGES)
            if json_loc:
                out += list(edges.JSON_ONLY_EDGES) + [None, [], {}, 0, True]
    if node.enum:
        out.insert(0, "bst-not-in-enum" if node.kind in ("string", "any") else -999_999)
    if required:
        out.append(OMIT)
    if location in ("header", "cookie"):
        out = [v for v in out if _header_safe(v)]
    return _unique(out)


def _header_safe(value: Any) -> bool:
    text = as_text(value)
    return text.isascii() and "\r" not in text and "\n" not in text and "\x00" not in text and ";" not in text


def _unique(values: list[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for v in values:
        key = _stable(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def field_strategy(f: Field, canary: str = "") -> st.SearchStrategy[Any]:
    """Valid values first (shrinking goes there), then the field's edge cases."""
    return st.one_of(valid_strategy(f.node, f.location, canary=canary),
                     st.sampled_from(edge_values(f.node, f.location, f.required)))


def example_strategy(shape: RequestShape) -> st.SearchStrategy[Example]:
    """Whole requests: every required field, any optional ones, and a body mode."""
    required = {f.key: field_strategy(f, shape.canary) for f in shape.fields if f.required}
    optional = {f.key: field_strategy(f, shape.canary) for f in shape.fields if not f.required}
    modes = BODY_MODES.get(shape.body, ("normal",))
    # The sweep sends every malformed body once; generation mostly varies the fields of a normal body.
    required[MODE] = st.sampled_from(("normal",) * 2 * len(modes) + modes[1:])
    return st.fixed_dictionaries(required, optional=optional)


def base_example(shape: RequestShape) -> Example:
    """Every field at its benign default, body sent normally."""
    out: Example = {f.key: default_value(f.node, shape.canary) for f in shape.fields}
    out[MODE] = "normal"
    return out


def sweep_examples(shape: RequestShape) -> list[Example]:
    """Explicit examples: the base, then one field at a time set to its edge values (round-robin), then
    the malformed body modes; each deviates from the base in one place, so it is minimal already."""
    base = base_example(shape)
    out = [base]
    per_field = [(f, edge_values(f.node, f.location, f.required)) for f in shape.fields]
    modes = [m for m in BODY_MODES.get(shape.body, ()) if m != "normal"]
    depth = max((len(v) for _, v in per_field), default=0)
    for i in range(depth):
        for f, values in per_field:
            if i < len(values):
                out.append({**base, f.key: values[i]})
        if MODES_FROM_ROUND <= i < MODES_FROM_ROUND + len(modes):
            out.append({**base, MODE: modes[i - MODES_FROM_ROUND]})
    out += [{**base, MODE: m} for m in modes[max(0, depth - MODES_FROM_ROUND):]]
    return out


def as_text(value: Any) -> str:
    """A value as it travels in a URL, header, cookie or form field."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).lower()
    if isinstance(value, list | dict):
        return _stable(value)
    return str(value)


def _stable(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr, allow_nan=True)


def example_key(example: Example) -> str:
    """A stable text form of an example (cache key, evidence)."""
    return json.dumps({k: (repr(v) if isinstance(v, bytes | _Omit) else v) for k, v in sorted(example.items())},
                      sort_keys=True, default=repr, allow_nan=True)


def _json_doc(shape: RequestShape, example: Example) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for f in shape.fields:
        value = example.get(f.key, OMIT)
        if f.location == "json" and value is not OMIT:
            if "." in f.name or "[]" in f.name:
                _set_json_path(doc, f.name, value)
            else:
                doc[f.name] = value
    return doc


def build_example_request(ep: EntryPoint, shape: RequestShape, example: Example) -> RequestSpec:
    """The request an example describes (JSON serialised by hand: NaN, surrogates and deep nesting pass)."""
    spec = RequestSpec(method=ep.method, path="")
    path_values: dict[str, str] = {}
    form: dict[str, str] = {}
    files: dict[str, tuple[str, bytes, str]] = {}
    for f in shape.fields:
        value = example.get(f.key, OMIT)
        if value is OMIT or f.location == "json":
            continue
        match f.location:
            case "path":
                path_values[f.name] = as_text(value)
            case "query":
                spec.params[f.name] = as_text(value)
            case "header":
                spec.headers[f.name] = as_text(value)
            case "cookie":
                spec.cookies[f.name] = as_text(value)
            case "form" | "multipart" if f.node.kind == "file":
                content = value if isinstance(value, bytes) else as_text(value).encode("utf-8", "surrogatepass")
                files[f.name] = ("bastion.txt", content, "application/octet-stream")
            case "form" | "multipart":
                form[f.name] = as_text(value)
            case "body":
                spec.content = as_text(value).encode("utf-8", "surrogatepass")
    spec.path = _fill(ep.path, path_values)
    mode = example.get(MODE, "normal")
    if shape.body == "json":
        _json_body(spec, _json_doc(shape, example), mode)
    elif shape.body in ("form", "multipart"):
        _form_body(spec, shape, form, files, mode)
    elif shape.body == "body":
        spec.headers.setdefault("content-type", shape.content_type or "application/octet-stream")
        if mode == "empty_body":
            spec.content = b""
    return spec


def _fill(template: str, values: dict[str, str]) -> str:
    # An empty path value would merge two slashes: a different route, not an edge case of this one.
    return fill_path(template, {k: (v if v else " ") for k, v in values.items()})


def _json_body(spec: RequestSpec, doc: dict[str, Any], mode: str) -> None:
    spec.headers["content-type"] = "application/json"
    match mode:
        case "invalid_json":
            text = _stable(doc)[:-1] + ","
        case "wrong_content_type":
            text = _stable(doc)
            spec.headers["content-type"] = "text/plain"
        case "array_body":
            text = _stable([doc])
        case "empty_body":
            text = ""
        case "extra_property":
            text = _stable({**doc, "bst_extra": {"nested": [1, None]}})
        case "deep_nesting":
            text = _stable({**doc, "bst_deep": edges.deep_json()})
        case _:
            text = _stable(doc)
    spec.content = text.encode("utf-8")


def _form_body(spec: RequestSpec, shape: RequestShape, form: dict[str, str],
               files: dict[str, tuple[str, bytes, str]], mode: str) -> None:
    if mode == "empty_body":
        spec.content = b""
        spec.headers["content-type"] = shape.content_type or "application/x-www-form-urlencoded"
    elif mode == "wrong_content_type":
        spec.content = _stable(form).encode("utf-8")
        spec.headers["content-type"] = "application/json"
    elif files or shape.body == "multipart":
        spec.files = files or {"file": ("bastion.txt", b"bastion", "text/plain")}
        spec.form = form or None
    else:
        spec.form = form

