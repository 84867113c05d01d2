"""Load payload corpora from payloads/data/*.yaml.

Each file maps a corpus name to a list of entries. An entry is a string or a mapping with at least
`payload`; other keys (e.g. `expect`, `dbms`, `context`) say how a check recognises success.
`{canary}`-style fields are filled by the check with str.format-free replacement (see `render`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


class Payloads:
    def __init__(self, corpora: dict[str, list[Any]]) -> None:
        self._corpora = corpora

    def names(self) -> list[str]:
        return sorted(self._corpora)

    def get(self, name: str) -> list[Any]:
        try:
            return list(self._corpora[name])
        except KeyError:
            raise KeyError(f"unknown payload corpus {name!r}; known: {', '.join(self.names())}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._corpora


def render(template: str, **values: str) -> str:
    """Replace `{name}` markers literally (payloads are full of braces, so no str.format)."""
    for key, val in values.items():
        template = template.replace("{" + key + "}", val)
    return template


@cache
def load_payloads() -> Payloads:
    corpora: dict[str, list[Any]] = {}
    folder = resources.files("bastion.payloads") / "data"
    if folder.is_dir():
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if entry.name.endswith(".yaml"):
                data = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
                for name, items in data.items():
                    if name in corpora:
                        raise ValueError(f"payload corpus {name!r} defined twice ({entry.name})")
                    corpora[name] = items
    return Payloads(corpora)
