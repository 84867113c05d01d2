"""What a service exposes: entry points and the inputs each one reads."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

InputLocation = Literal["path", "query", "form", "json", "multipart", "header", "cookie", "body"]
INPUT_LOCATIONS: tuple[str, ...] = ("path", "query", "form", "json", "multipart", "header", "cookie", "body")


@dataclass(frozen=True)
class Input:
    """One input an entry point reads.

    `name` is the parameter name; JSON fields nest with dots and `[]` for array items
    (`address.city`, `items[].sku`). `location="multipart"` with `kind="file"` is an uploaded file
    (its file name and content are both injectable). `location="body"` is a raw body (XML, text).
    """

    location: InputLocation
    name: str
    kind: Literal["string", "integer", "number", "boolean", "file", "object", "array"] = "string"
    required: bool = False
    example: str | None = None
    source: str = "declared"  # declared | openapi | ast | crawl | config
    file: str | None = None
    line: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.location, self.name)


@dataclass
class EntryPoint:
    method: str
    path: str  # template with {name} for path parameters: /users/{id}
    inputs: list[Input] = field(default_factory=list)
    source: str = "declared"  # flask | starlette | openapi | crawl | config
    handler: str | None = None  # module:function
    file: str | None = None
    line: int | None = None
    # Media types the entry point accepts for its body, most preferred first.
    consumes: list[str] = field(default_factory=list)
    # Media types it is known to answer with (from OpenAPI or observation).
    produces: list[str] = field(default_factory=list)
    # Declared JSON response schemas by status ("200", "2XX", "default"), `$ref`s inlined with cycles and
    # depth cut to `{}` (plain JSON data: serialisable, no shared or cyclic objects).
    response_schemas: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def input(self, location: str, name: str) -> Input | None:
        for i in self.inputs:
            if i.location == location and i.name == name:
                return i
        return None

    def add_input(self, new: Input) -> None:
        """Add an input, keeping the first-seen one for a (location, name) but filling gaps."""
        for idx, old in enumerate(self.inputs):
            if old.key == new.key:
                if old.file is None and new.file is not None:
                    self.inputs[idx] = replace(old, file=new.file, line=new.line)
                return
        self.inputs.append(new)

    @property
    def body_locations(self) -> set[str]:
        locations: set[str] = {i.location for i in self.inputs}
        return locations & {"form", "json", "multipart", "body"}


@dataclass
class Surface:
    entry_points: list[EntryPoint] = field(default_factory=list)

    def get(self, method: str, path: str) -> EntryPoint | None:
        for ep in self.entry_points:
            if ep.method == method and ep.path == path:
                return ep
        return None

    def add(self, ep: EntryPoint) -> EntryPoint:
        """Add or merge an entry point (inputs from several sources are unioned)."""
        existing = self.get(ep.method, ep.path)
        if existing is None:
            self.entry_points.append(ep)
            return ep
        for i in ep.inputs:
            existing.add_input(i)
        for mt in ep.consumes:
            if mt not in existing.consumes:
                existing.consumes.append(mt)
        for mt in ep.produces:
            if mt not in existing.produces:
                existing.produces.append(mt)
        for status, schema in ep.response_schemas.items():
            existing.response_schemas.setdefault(status, schema)
        if existing.file is None:
            existing.file, existing.line, existing.handler = ep.file, ep.line, ep.handler
        return existing

    def merge(self, other: Surface) -> None:
        for ep in other.entry_points:
            self.add(ep)

    def sorted(self) -> list[EntryPoint]:
        return sorted(self.entry_points, key=lambda e: (e.path, e.method))
