"""Load bastion.yaml: safe YAML with limits, `${VAR}` interpolation, validation errors with file:line:key."""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bastion.errors import ConfigError
from bastion.model.schema import BastionConfig, KeyedError
from bastion.safeyaml import YamlDocument, YamlLimits, dotted_key, load_yaml_file, load_yaml_text

# `$${` is a literal `${`; anything else between `${` and `}` must be NAME or NAME:-default.
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VARIABLE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_UNTERMINATED = re.compile(r"(?<!\$)\$\{[^}]*$")

_TYPE_MESSAGES = {
    "dict_type": "expected a mapping (key: value)",
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "date_type": "expected a date (YYYY-MM-DD)",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "expected a date (YYYY-MM-DD)",
}


def load_config(path: str | Path, env: Mapping[str, str] | None = None, *,
                limits: YamlLimits | None = None) -> BastionConfig:
    """Read, interpolate and validate a threat-model file; any problem is a ConfigError at file:line:key."""
    doc = load_yaml_file(path, limits=limits)
    return config_from_document(doc, env, source=Path(path))


def load_config_text(text: str, env: Mapping[str, str] | None = None, *, name: str = "<string>",
                     source: Path | None = None, limits: YamlLimits | None = None) -> BastionConfig:
    """Like load_config, from text already in memory (`source` anchors relative paths)."""
    doc = load_yaml_text(text, name=name, limits=limits)
    return config_from_document(doc, env, source=source)


def config_from_document(doc: YamlDocument, env: Mapping[str, str] | None = None, *,
                         source: Path | None = None) -> BastionConfig:
    """Validate a parsed YAML document as a BastionConfig."""
    env = os.environ if env is None else env
    if doc.data is None:
        raise ConfigError("file is empty; a threat model needs at least a 'target'", file=doc.file, line=1)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"expected a mapping of keys (target, roles, ...) at the top level, "
                          f"got {_type_name(doc.data)}", file=doc.file, line=doc.line_of(()))
    _check_keys(doc.data, doc, ())
    secrets: set[str] = set()
    data = interpolate(doc.data, doc, env, secrets)
    try:
        config = BastionConfig.model_validate(data)
    except ValidationError as exc:
        raise translate_validation_error(exc, doc, data, secrets=secrets) from None
    config._source = source.absolute() if source is not None else None
    config._secrets = frozenset(secrets)
    _check_files(config, doc)
    _check_threat_ids(config, doc)
    return config


def _check_threat_ids(config: BastionConfig, doc: YamlDocument) -> None:
    """An accepted risk must name a catalog threat: a typo would silently accept nothing."""
    if not config.accepted:
        return
    from bastion.catalog.loader import load_catalog

    try:
        known = sorted(load_catalog())
    except ConfigError:  # a broken catalog is Bastion's bug, reported elsewhere; don't blame this file
        return
    for index, risk in enumerate(config.accepted):
        if known and risk.threat not in known:
            hint = difflib.get_close_matches(risk.threat, known, n=1)
            suffix = f" (did you mean {hint[0]!r}?)" if hint else "; `bastion catalog` lists them"
            path = ("accepted", index, "threat")
            raise ConfigError(f"unknown threat {risk.threat!r}{suffix}", file=doc.file,
                              line=doc.line_of(path), key=dotted_key(path))


def _check_keys(data: Any, doc: YamlDocument, path: tuple[Any, ...]) -> None:
    """Every mapping key must be a string: YAML reads `1:`, `yes:` or `2027-01-01:` as other types."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                raise ConfigError(f"key {key!r} must be a string; quote it", file=doc.file,
                                  line=doc.line_of((*path, str(key))), key=dotted_key((*path, str(key))))
            _check_keys(value, doc, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _check_keys(value, doc, (*path, index))


def _check_files(config: BastionConfig, doc: YamlDocument) -> None:
    if config.target.openapi and not config.resolve_path(config.target.openapi).is_file():
        raise ConfigError(f"OpenAPI file not found: {config.resolve_path(config.target.openapi)}",
                          file=doc.file, line=doc.line_of(("target", "openapi")), key="target.openapi")


def interpolate(data: Any, doc: YamlDocument, env: Mapping[str, str], secrets: set[str],
                path: tuple[Any, ...] = ()) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in string values (not keys); collect substituted env values."""
    if isinstance(data, dict):
        return {k: interpolate(v, doc, env, secrets, (*path, str(k))) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate(v, doc, env, secrets, (*path, i)) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        return _interpolate_string(data, doc, env, secrets, path)
    return data


def _interpolate_string(text: str, doc: YamlDocument, env: Mapping[str, str], secrets: set[str],
                        path: tuple[Any, ...]) -> str:
    def fail(message: str) -> ConfigError:
        return ConfigError(message, file=doc.file, line=doc.line_of(path), key=dotted_key(path) or None)

    if _UNTERMINATED.search(text):
        raise fail("unterminated '${' (write $${ for a literal '${')")

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        variable = _VARIABLE.match(match.group(1))
        if variable is None:
            raise fail(f"malformed variable reference '${{{match.group(1)}}}': "
                       "use ${NAME} or ${NAME:-default}")
        name, default = variable.group(1), variable.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise fail(f"environment variable {name} is not set (set it, or write ${{{name}:-default}})")
            return default  # defaults are written in the file, so they are not secrets
        if value:
            secrets.add(value)
        return value

    return _REFERENCE.sub(substitute, text)


def translate_validation_error(exc: ValidationError, doc: YamlDocument, data: Any, *,
                               model: type[BaseModel] = BastionConfig,
                               secrets: set[str] | frozenset[str] = frozenset()) -> ConfigError:
    """Turn pydantic's errors into one ConfigError at the first offending line (by position in the file)."""
    problems: dict[tuple[Any, ...], str] = {}
    for error in exc.errors(include_url=False):
        path, message = _describe(error, data, model)
        problems.setdefault(path, message)  # a union reports once per member; the first says enough
    ordered = sorted(problems.items(), key=lambda item: (doc.line_of(item[0]) or 0, len(item[0])))
    path, message = ordered[0]
    for secret in sorted(secrets, key=len, reverse=True):
        message = message.replace(secret, "***")
    if len(ordered) > 1:
        message += f" (and {len(ordered) - 1} more problem{'s' if len(ordered) > 2 else ''})"
    return ConfigError(message, file=doc.file, line=doc.line_of(path), key=dotted_key(path) or None)


def _describe(error: Any, data: Any, model: type[BaseModel]) -> tuple[tuple[Any, ...], str]:
    loc = tuple(error["loc"])
    kind = error["type"]
    cause = (error.get("ctx") or {}).get("error")
    present = _present_prefix(data, loc)
    if isinstance(cause, KeyedError):
        return (*present, *cause.path), cause.message
    if kind == "missing":
        return (*present, loc[len(present)]), f"missing required key {loc[len(present)]!r}"
    if kind == "extra_forbidden":
        return present, _unknown_key(str(loc[-1]), _fields_at(model, loc[:-1]))
    if "[key]" in loc[len(present):len(present) + 1]:
        return present, f"invalid name {str(present[-1])!r}: {_plain(error)}"
    return present, _plain(error)


def _plain(error: Any) -> str:
    kind, message = error["type"], str(error["msg"])
    if kind in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[kind]}, got {_type_name(error.get('input'))}"
    if kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern", "")
        if pattern.startswith("^/"):
            return "must be a path starting with '/' (no spaces)"
        if pattern.startswith("^[A-Za-z_]"):
            return "use letters, digits, '_', '.' and '-', starting with a letter or '_'"
        return f"does not match the expected form {pattern}"
    if kind == "string_too_short":
        return "must not be empty"
    return message.removeprefix("Value error, ")


def _present_prefix(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The longest prefix of a pydantic location that exists in the input data."""
    node = data
    prefix: tuple[Any, ...] = ()
    for elem in loc:
        if isinstance(node, dict) and elem in node:
            node = node[elem]
        elif isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node):
            node = node[elem]
        else:
            break
        prefix = (*prefix, elem)
    return prefix


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Key names the model allows at `loc` (for did-you-mean hints); empty when unknown."""
    annotation: Any = model
    for elem in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next((f for name, f in annotation.model_fields.items() if elem in (name, f.alias)), None)
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        elif typing.get_origin(annotation) is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Optional[...] and Annotated[...] around a model or container type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0] if len(members) == 1 else annotation
            if len(members) != 1:
                return annotation
        else:
            return annotation


def _unknown_key(key: str, allowed: list[str]) -> str:
    hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if hint:
        return f"unknown key {key!r} (did you mean {hint[0]!r}?)"
    if allowed:
        return f"unknown key {key!r} (allowed: {', '.join(allowed)})"
    return f"unknown key {key!r}"


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    names = {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)
