"""Read what a project depends on: requirements files, pyproject.toml, uv.lock, poetry.lock, installed dists.

Every reader returns `Pinned` entries: a distribution name (PEP 503 normalised), the exact version when
the file fixes one (`==1.2.3`, a lock entry, an installed dist) or None when it does not (a range, a
URL, a Poetry caret), and where it was declared. Nothing is guessed: an unpinned requirement stays
unpinned. A malformed file raises `ManifestError` naming the file and line; the runner records it as
a skipped file and goes on with the rest of the tree.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bastion.errors import BastionError

MAX_MANIFEST_BYTES = 8 * 1024 * 1024
MAX_INCLUDE_DEPTH = 5
MAX_ENTRIES = 20_000
LOCK_NAMES = frozenset({"uv.lock", "poetry.lock"})
_REQ_FILE = re.compile(r"^requirements.*\.(txt|in)$", re.IGNORECASE)
# pip options that take a value and say nothing about which packages are installed.
_VALUE_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host",
                  "--no-binary", "--only-binary", "--prefer-binary", "--pre", "--use-feature",
                  "--no-index", "--require-hashes", "--progress-bar")
_POETRY_EXACT = re.compile(r"^\s*=?=?\s*([0-9][0-9A-Za-z.+!_-]*)\s*$")


class ManifestError(BastionError):
    """A dependency manifest is malformed; the message names the file (and line)."""

    def __init__(self, message: str, *, file: str, line: int | None = None) -> None:
        where = f"{file}:{line}" if line else file
        self.file, self.line = file, line
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Pinned:
    """One declared dependency: normalised name, exact version (or None), where it was declared."""

    name: str
    version: str | None
    file: str
    line: int | None = None
    spec: str = ""
    source: str = "manifest"  # manifest | lock | installed


def is_manifest(path: PurePath) -> bool:
    """Whether `bastion static` reads this file as a dependency manifest."""
    name = path.name
    return (bool(_REQ_FILE.match(name)) or name in LOCK_NAMES or name == "pyproject.toml"
            or (path.parent.name.lower() == "requirements" and name.endswith(".txt")))


def read_manifest(path: Path, display: str) -> list[Pinned]:
    """The dependencies one manifest declares (dispatch on the file name)."""
    name = path.name
    if name == "pyproject.toml":
        return read_pyproject(path, display)
    if name == "uv.lock":
        return read_lock(path, display, "uv.lock")
    if name == "poetry.lock":
        return read_lock(path, display, "poetry.lock")
    return read_requirements(path, display)


def _read(path: Path, display: str) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"larger than {MAX_MANIFEST_BYTES} bytes", file=display)
        with path.open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"cannot read: {exc.strerror or exc}", file=display) from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"larger than {MAX_MANIFEST_BYTES} bytes", file=display)
    if b"\x00" in raw:
        raise ManifestError("binary content (NUL bytes)", file=display)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not valid UTF-8 (offset {exc.start})", file=display) from None


def exact_version(req: Requirement) -> str | None:
    """The version a requirement pins (`==1.2`, `===1.2`), or None for ranges, wildcards and URLs."""
    if req.url:
        return None
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        return None
    try:
        return str(Version(specs[0].version))
    except InvalidVersion:
        return specs[0].version if specs[0].operator == "===" else None


# ---------------------------------------------------------------- requirements.txt


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first physical line number, joined line) with `\\` continuations and comments removed."""
    buf, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw)  # pip: a comment starts at '#' after whitespace
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            yield start, buf.strip()
        buf = ""
    if buf.strip():
        yield start, buf.strip()


def read_requirements(path: Path, display: str, *, _depth: int = 0,
                      _seen: frozenset[str] = frozenset()) -> list[Pinned]:
    """A pip requirements file with `-r` includes (bounded depth, cycles ignored), markers and hashes."""
    real = os.path.realpath(path)
    if real in _seen:
        return []
    seen = _seen | {real}
    out: list[Pinned] = []
    for number, line in _logical_lines(_read(path, display)):
        include = re.match(r"^(-r|--requirement)(?:\s+|=)(\S+)$", line)
        if include:
            out.extend(_include(path, display, number, include.group(2), _depth, seen))
            continue
        if line.startswith(("-c", "--constraint", "-e", "--editable")):
            continue  # constraints pin nothing by themselves; editables are the project's own code
        if line.startswith("-"):
            if line.split()[0].split("=")[0] in _VALUE_OPTIONS:
                continue
            raise ManifestError(f"unknown pip option {line.split()[0]!r}", file=display, line=number)
        out.append(_requirement(line, display, number))
        if len(out) > MAX_ENTRIES:
            raise ManifestError(f"more than {MAX_ENTRIES} requirements", file=display)
    return [p for p in out if p.name]


def _include(path: Path, display: str, number: int, target: str, depth: int,
             seen: frozenset[str]) -> list[Pinned]:
    if depth >= MAX_INCLUDE_DEPTH:
        raise ManifestError(f"-r includes nested deeper than {MAX_INCLUDE_DEPTH}", file=display, line=number)
    if "://" in target:
        raise ManifestError("-r with a URL is not read (Bastion never fetches manifests)", file=display,
                            line=number)
    child = (path.parent / target)
    child_display = str(PurePath(display).parent / target)
    if not child.is_file():
        raise ManifestError(f"-r {target}: file not found", file=display, line=number)
    return read_requirements(child, child_display, _depth=depth + 1, _seen=seen)


def _requirement(line: str, display: str, number: int) -> Pinned:
    # --hash options belong to the requirement on the same logical line; they do not change the version.
    text = re.sub(r"\s--hash[=\s]\S+", "", " " + line).strip()
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise ManifestError(f"not a valid requirement ({exc})", file=display, line=number) from None
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return Pinned(name="", version=None, file=display, line=number)  # not for this interpreter
    return Pinned(name=canonicalize_name(req.name), version=exact_version(req), file=display, line=number,
                  spec=str(req.specifier) or (req.url or ""), source="manifest")


# ---------------------------------------------------------------- pyproject.toml and locks


def _toml(path: Path, display: str) -> dict[str, Any]:
    try:
        return tomllib.loads(_read(path, display))
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"invalid TOML ({exc})", file=display) from None
    except RecursionError:
        raise ManifestError("invalid TOML (nested too deeply)", file=display) from None


def _line_of(text_lines: list[str], name: str) -> int | None:
    pattern = re.compile(rf"""(^|["'\s]){re.escape(name)}\s*([=<>!~\[;@"' ]|$)""", re.IGNORECASE)
    for number, line in enumerate(text_lines, start=1):
        if pattern.search(line):
            return number
    return None


def read_pyproject(path: Path, display: str) -> list[Pinned]:
    """PEP 621 `dependencies` + `optional-dependencies`, PEP 735 groups and Poetry dependency tables."""
    data = _toml(path, display)
    lines = _read(path, display).splitlines()
    out: list[Pinned] = []
    project: dict[str, Any] = data["project"] if isinstance(data.get("project"), dict) else {}
    specs: list[Any] = list(_as_list(project.get("dependencies"), display, "project.dependencies"))
    optional = project.get("optional-dependencies") or {}
    groups = data.get("dependency-groups") or {}
    for table, key in ((optional, "project.optional-dependencies"), (groups, "dependency-groups")):
        if not isinstance(table, dict):
            raise ManifestError(f"{key} must be a table", file=display)
        for group, items in table.items():
            specs.extend(s for s in _as_list(items, display, f"{key}.{group}") if isinstance(s, str))
    own = canonicalize_name(str(project.get("name") or "")) if project.get("name") else None
    for spec in specs:
        if not isinstance(spec, str):
            raise ManifestError(f"dependency {spec!r} is not a string", file=display)
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            raise ManifestError(f"not a valid requirement {spec!r} ({exc})", file=display,
                                line=_line_of(lines, spec.split(";")[0].strip())) from None
        name = canonicalize_name(req.name)
        if name == own:
            continue  # `myproject[extra]` self-references
        out.append(Pinned(name=name, version=exact_version(req), file=display, line=_line_of(lines, req.name),
                          spec=str(req.specifier) or (req.url or ""), source="manifest"))
    out.extend(_poetry_dependencies(data, display, lines))
    return out


def _as_list(value: Any, display: str, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ManifestError(f"{key} must be a list", file=display)
    return value


def _poetry_dependencies(data: dict[str, Any], display: str, lines: list[str]) -> list[Pinned]:
    tool: dict[str, Any] = data["tool"] if isinstance(data.get("tool"), dict) else {}
    poetry: dict[str, Any] = tool["poetry"] if isinstance(tool.get("poetry"), dict) else {}
    tables = [poetry.get("dependencies"), poetry.get("dev-dependencies")]
    groups = poetry.get("group")
    if isinstance(groups, dict):
        tables += [g.get("dependencies") for g in groups.values() if isinstance(g, dict)]
    out: list[Pinned] = []
    for table in tables:
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ManifestError("[tool.poetry.*dependencies] must be a table", file=display)
        for name, constraint in table.items():
            if name.lower() == "python":
                continue
            version_text = constraint.get("version") if isinstance(constraint, dict) else constraint
            match = _POETRY_EXACT.match(version_text) if isinstance(version_text, str) else None
            version = None
            if match:  # a bare "1.2.3" is exact in Poetry; "^1.2" and "~1.2" are ranges
                try:
                    version = str(Version(match.group(1)))
                except InvalidVersion:
                    version = None
            out.append(Pinned(name=canonicalize_name(name), version=version, file=display,
                              line=_line_of(lines, name), spec=str(version_text or ""), source="manifest"))
    return out


def read_lock(path: Path, display: str, kind: str) -> list[Pinned]:
    """`[[package]]` name/version pairs of uv.lock or poetry.lock (the project itself excluded)."""
    data = _toml(path, display)
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise ManifestError("'package' must be an array of tables", file=display)
    if len(packages) > MAX_ENTRIES:
        raise ManifestError(f"more than {MAX_ENTRIES} packages", file=display)
    lines = _read(path, display).splitlines()
    index: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        m = re.match(r'^name\s*=\s*"([^"]+)"', line)
        if m:
            index.setdefault(canonicalize_name(m.group(1)), number)
    out: list[Pinned] = []
    for i, pkg in enumerate(packages):
        if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str):
            raise ManifestError(f"package[{i}] has no name", file=display)
        source = pkg.get("source")
        if kind == "uv.lock" and isinstance(source, dict) and ({"editable", "virtual"} & set(source)):
            continue  # the project being locked, not a dependency
        version = pkg.get("version")
        if version is not None and not isinstance(version, str):
            raise ManifestError(f"package {pkg['name']!r}: version is not a string", file=display)
        name = canonicalize_name(pkg["name"])
        out.append(Pinned(name=name, version=version, file=display, line=index.get(name), spec=version or "",
                          source="lock"))
    return out


# ---------------------------------------------------------------- installed environments


def read_installed(site_packages: str | None) -> list[Pinned]:
    """Distributions installed in `site_packages` (or the running interpreter's environment)."""
    from importlib import metadata

    if site_packages is not None and not Path(site_packages).is_dir():
        raise ManifestError("not a directory (expected a site-packages path)", file=site_packages)
    dists = metadata.distributions(path=[site_packages]) if site_packages else metadata.distributions()
    where = site_packages or "installed environment"
    out: dict[str, Pinned] = {}
    for dist in dists:
        name = dist.metadata["Name"] if dist.metadata else None
        if not name or not dist.version:
            continue
        key = canonicalize_name(name)
        out.setdefault(key, Pinned(name=key, version=dist.version, file=f"{where} ({name} {dist.version})",
                                   spec=f"=={dist.version}", source="installed"))
        if len(out) > MAX_ENTRIES:
            break
    return sorted(out.values(), key=lambda p: p.name)
