"""Safe YAML loading for files Bastion does not trust: size, depth, alias and node limits, line numbers.

PyYAML's SafeLoader never executes content, but it happily expands an alias bomb ("billion laughs"),
recurses on deep nesting and keeps the last of two duplicate keys. This module composes the node graph
with counters first; when the document uses aliases it measures what construction *would* produce
(each alias counted at its full expanded size); only then does it build Python objects. Every error
is a ConfigError (or the subclass a caller asks for) naming the file, the line and, where known, the
dotted key.
"""

from __future__ import annotations

import codecs
import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent, MappingEndEvent, SequenceEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from bastion.errors import ConfigError

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_ALIASES = 100
MAX_NODES = 100_000

_MERGE_TAG = "tag:yaml.org,2002:merge"

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on one document; the defaults suit a hand-written config file."""

    max_bytes: int = MAX_BYTES
    max_depth: int = MAX_DEPTH
    max_aliases: int = MAX_ALIASES
    max_nodes: int = MAX_NODES


@dataclass
class YamlDocument:
    """Parsed data plus the line of every key and list item, for error messages."""

    data: Any
    file: str
    root: Node | None = field(default=None, repr=False)
    _lines: dict[PathKey, int] | None = field(default=None, repr=False)

    @property
    def lines(self) -> dict[PathKey, int]:
        """Line of every mapping key and list item by path; built on first use (errors are rare)."""
        if self._lines is None:
            self._lines = _build_lines(self.root) if self.root is not None else {}
            self.root = None  # the node graph is only needed for this
        return self._lines

    def line_of(self, path: Iterable[Any]) -> int | None:
        """Line of the deepest known node along `path` (mapping keys as str, list items as int)."""
        return line_of(self.lines, path)


def line_of(lines: dict[PathKey, int], path: Iterable[Any]) -> int | None:
    """Line of the deepest known node along `path` in a line map built by this module."""
    best = lines.get(())
    prefix: PathKey = ()
    for elem in path:
        for candidate in (elem, str(elem)):
            if (*prefix, candidate) in lines:
                prefix = (*prefix, candidate)
                best = lines[prefix]
                break
        else:
            break
    return best


def dotted_key(path: Iterable[Any], *, max_parts: int = 12) -> str:
    """`roles.alice.login.path`; list items as `[0]`; keys with dots or spaces quoted; long paths cut."""
    parts = list(path)
    out = ""
    for elem in parts[:max_parts]:
        if isinstance(elem, int):
            out += f"[{elem}]"
            continue
        text = str(elem)
        if not text or any(c in text for c in ". []\"'"):
            text = '"' + text.replace('"', '\\"') + '"'
        out += f".{text}" if out else text
    if len(parts) > max_parts:
        out += "..."
    return out


class _LimitError(Exception):
    """Raised inside the composer; turned into the caller's ConfigError with file and line."""

    def __init__(self, message: str, line: int | None, path: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.message, self.line, self.path = message, line, tuple(path)


def _line(node_or_event: Any) -> int | None:
    mark = getattr(node_or_event, "start_mark", None)
    return None if mark is None else mark.line + 1


class _CountingComposer(Composer):
    """Composer that counts nodes, aliases and depth as it goes and rejects duplicate keys."""

    if TYPE_CHECKING:  # supplied by the Parser/CParser and Resolver mixins of the concrete loaders below
        def check_event(self, *choices: Any) -> bool: ...
        def peek_event(self) -> Any: ...
        def get_event(self) -> Any: ...
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any: ...

    def _init_counters(self, limits: YamlLimits) -> None:
        self._limits = limits
        self._nodes = 0
        self._aliases = 0
        self._path: list[Any] = []

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if self._aliases > self._limits.max_aliases:
                raise _LimitError(f"more than {self._limits.max_aliases} YAML aliases (alias bomb?)",
                                  _line(event), self._path)
            # types-PyYAML says Node | None, but PyYAML's compose_node always returns a node
            return cast(Node, super().compose_node(parent, index))
        if len(self._path) >= self._limits.max_depth:
            raise _LimitError(f"nesting deeper than {self._limits.max_depth} levels",
                              _line(self.peek_event()), self._path)
        self._nodes += 1
        if self._nodes > self._limits.max_nodes:
            raise _LimitError(f"more than {self._limits.max_nodes} YAML nodes", _line(self.peek_event()),
                              self._path)
        return cast(Node, super().compose_node(parent, index))

    # types-PyYAML types `anchor` as a dict; PyYAML passes the anchor name (or None)
    def compose_sequence_node(self, anchor: str | None) -> SequenceNode:  # type: ignore[override]
        start = self.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = self.resolve(SequenceNode, None, start.implicit)
        node = SequenceNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        if anchor is not None:
            self.anchors[anchor] = node
        index = 0
        while not self.check_event(SequenceEndEvent):
            self._path.append(index)
            node.value.append(self.compose_node(node, index))
            self._path.pop()
            index += 1
        node.end_mark = self.get_event().end_mark
        return node

    def compose_mapping_node(self, anchor: str | None) -> MappingNode:  # type: ignore[override]  # as above
        start = self.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = self.resolve(MappingNode, None, start.implicit)
        node = MappingNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        if anchor is not None:
            self.anchors[anchor] = node
        seen: dict[tuple[str, str], int | None] = {}
        while not self.check_event(MappingEndEvent):
            key = self.compose_node(node, None)
            label = key.value if isinstance(key, ScalarNode) else "?"
            if isinstance(key, ScalarNode) and key.tag != _MERGE_TAG:
                ident = (key.tag, key.value)
                if ident in seen:
                    raise _LimitError(f"duplicate key {key.value!r} (first at line {seen[ident]})",
                                      _line(key), [*self._path, key.value])
                seen[ident] = _line(key)
            self._path.append(label)
            value = self.compose_node(node, key)
            self._path.pop()
            node.value.append((key, value))
        node.end_mark = self.get_event().end_mark
        return node


class _CheckedConstructor(SafeConstructor):
    """SafeConstructor whose date errors carry the node's line instead of a bare ValueError."""

    def construct_yaml_timestamp(self, node: ScalarNode) -> datetime.date | datetime.datetime:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise ConstructorError(None, None, f"invalid date {node.value!r}: {exc}",
                                   node.start_mark) from None


# types-PyYAML wants the constructor's first argument to be a whole Loader; a constructor mixin is fine at runtime
_CheckedConstructor.add_constructor("tag:yaml.org,2002:timestamp",  # type: ignore[type-var]
                                    _CheckedConstructor.construct_yaml_timestamp)


class _PyLoader(_CountingComposer, Reader, Scanner, Parser, _CheckedConstructor, Resolver):
    """Pure-Python events, counting composer, safe constructor."""

    def __init__(self, stream: str, limits: YamlLimits) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _CheckedConstructor.__init__(self)
        Resolver.__init__(self)
        self._init_counters(limits)


_LOADER: type[Any] = _PyLoader
try:  # libyaml parses about ten times faster; the Python composer above still does the counting.
    from yaml._yaml import CParser

    class _CLoader(_CountingComposer, CParser, _CheckedConstructor, Resolver):  # type: ignore[misc]
        """libyaml events, counting composer, safe constructor."""

        def __init__(self, stream: str, limits: YamlLimits) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            _CheckedConstructor.__init__(self)
            Resolver.__init__(self)
            self._init_counters(limits)

    _LOADER = _CLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    pass


def _measure(root: Node, limits: YamlLimits) -> None:
    """Reject the document if building it would exceed the node or depth limit, before building it.

    Aliases are counted at the size of what they point to, so an alias bomb is refused from its
    small node graph; a recursive alias (`&a [*a]`) is refused too.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, height)
    active: set[int] = set()

    def visit(node: Node, depth: int, path: tuple[Any, ...]) -> tuple[int, int]:
        key = id(node)
        if key in active:
            raise _LimitError("recursive YAML alias (a node that contains itself)", _line(node), path)
        if key in sizes:
            size, height = sizes[key]
            if depth + height >= limits.max_depth:
                raise _LimitError(f"nesting deeper than {limits.max_depth} levels once aliases are expanded",
                                  _line(node), path)
            return size, height
        if depth >= limits.max_depth:
            raise _LimitError(f"nesting deeper than {limits.max_depth} levels", _line(node), path)
        active.add(key)
        size, height = 1, 0
        children: list[tuple[Any, Node]] = []
        if isinstance(node, SequenceNode):
            children = list(enumerate(node.value))
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                children.append(("?", k))
                children.append((getattr(k, "value", "?"), v))
        for label, child in children:
            child_size, child_height = visit(child, depth + 1, (*path, label))
            size += child_size
            height = max(height, child_height + 1)
            if size > limits.max_nodes:
                raise _LimitError(f"more than {limits.max_nodes} YAML nodes once aliases are expanded "
                                  "(alias bomb?)", _line(child), path)
        active.discard(key)
        sizes[key] = (size, height)
        return size, height

    visit(root, 0, ())


def _build_lines(root: Node) -> dict[PathKey, int]:
    """Line of every mapping key and list item, keyed by its path (keys as str, items as int)."""
    loader = _CheckedConstructor()  # to turn key nodes into the values the data uses
    lines: dict[PathKey, int] = {}
    root_line = _line(root)
    if root_line is not None:
        lines[()] = root_line
    stack: list[tuple[Node, PathKey]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, SequenceNode):
            for index, child in enumerate(node.value):
                child_path = (*path, index)
                lines.setdefault(child_path, _line(child) or 0)
                stack.append((child, child_path))
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.tag == _MERGE_TAG:
                    # Merged keys belong to this mapping (`<<: *a` or `<<: [*a, *b]`).
                    merged = value.value if isinstance(value, SequenceNode) else [value]
                    stack.extend((m, path) for m in merged)
                    continue
                label = str(loader.construct_object(key)) if isinstance(key, ScalarNode) else "?"
                child_path = (*path, label)
                lines.setdefault(child_path, _line(key) or 0)
                stack.append((value, child_path))
    return lines


def read_limited(path: str | Path, *, max_bytes: int = MAX_BYTES,
                 error: type[ConfigError] = ConfigError) -> bytes:
    """Read a file's bytes, refusing it by size before reading when it is larger than `max_bytes`."""
    name = str(path)
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise error(f"file is {size} bytes, larger than the limit of {max_bytes}", file=name)
        with p.open("rb") as fh:
            raw = fh.read(max_bytes + 1)  # a pipe or growing file may lie about its size
    except FileNotFoundError:
        raise error("file not found", file=name) from None
    except IsADirectoryError:
        raise error("is a directory, not a file", file=name) from None
    except PermissionError:
        raise error("permission denied", file=name) from None
    except OSError as exc:
        raise error(f"cannot read file: {exc.strerror or exc}", file=name) from None
    if len(raw) > max_bytes:
        raise error(f"file is larger than the limit of {max_bytes} bytes", file=name)
    return raw


def decode_utf8(raw: bytes, *, name: str, error: type[ConfigError] = ConfigError) -> str:
    """Decode UTF-8 (a BOM is allowed); UTF-16/32, NUL bytes and invalid sequences are clear errors."""
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise error("file is UTF-32 encoded; save it as UTF-8", file=name, line=1)
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise error("file is UTF-16 encoded; save it as UTF-8", file=name, line=1)
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise error("file contains NUL bytes (UTF-16 without BOM, or a binary file?); save it as UTF-8",
                    file=name, line=raw.count(b"\n", 0, nul) + 1)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                    file=name, line=line) from None


def load_yaml_text(text: str, *, name: str = "<string>", limits: YamlLimits | None = None,
                   error: type[ConfigError] = ConfigError) -> YamlDocument:
    """Parse one YAML document from `text` within `limits`; an empty document gives `data=None`."""
    limits = limits or YamlLimits()
    if len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise error(f"document is larger than the limit of {limits.max_bytes} bytes", file=name)
    loader = _LOADER(text, limits)
    try:
        root = loader.get_single_node()
        if root is None:
            return YamlDocument(data=None, file=name)
        if loader._aliases:  # without aliases the composer's own counts are exact
            _measure(root, limits)
        data = loader.construct_document(root)
    except _LimitError as exc:
        raise error(exc.message, file=name, line=exc.line, key=dotted_key(exc.path) or None) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.context}: {exc.problem}"
        raise error(f"invalid YAML: {problem}", file=name,
                    line=None if mark is None else mark.line + 1) from None
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {exc}", file=name) from None
    except RecursionError:
        raise error("document nests too deeply to parse", file=name) from None
    finally:
        loader.dispose()
    return YamlDocument(data=data, file=name, root=root)


def load_yaml_file(path: str | Path, *, limits: YamlLimits | None = None,
                   error: type[ConfigError] = ConfigError) -> YamlDocument:
    """Read and parse a YAML file within `limits` (size checked before reading)."""
    limits = limits or YamlLimits()
    raw = read_limited(path, max_bytes=limits.max_bytes, error=error)
    text = decode_utf8(raw, name=str(path), error=error)
    return load_yaml_text(text, name=str(path), limits=limits, error=error)
