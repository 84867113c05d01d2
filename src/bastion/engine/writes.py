"""Which entry points state-changing probes may call, and how the target's data is restored after.

Probes that create, change or delete data (authorization writes as another role, mass assignment,
lockout attempts) ask `WritePolicy.allows(method, path)` first. The default ("auto") allows them on
in-process targets, whose data is throw-away or restored by a reset hook, and never on URL targets:
a scan must not change a running service's data unless its owner says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

AUTO, ALL, NONE = "auto", "all", "none"
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PARAM = re.compile(r"\{[^/{}]+\}")


@cache
def _path_regex(pattern: str) -> re.Pattern[str]:
    """`/users/{id}` matches `/users/{user_id}` and `/users/7`; a trailing `*` matches any rest."""
    rest = pattern.endswith("*")
    parts = _PARAM.split(pattern.rstrip("*"))
    body = "[^/]+".join(re.escape(part) for part in parts)
    return re.compile(body + (".*" if rest else ""))


@dataclass(frozen=True)
class WritePolicy:
    """Resolved `writes:` setting: everything, nothing, or an explicit list of `METHOD /path` entries."""

    mode: str = NONE  # all | none | list
    entries: tuple[tuple[str, str], ...] = ()

    @classmethod
    def resolve(cls, setting: str | list[str], *, in_process: bool) -> WritePolicy:
        """The policy for a target from the config value ("auto" depends on where the target runs)."""
        if isinstance(setting, list):
            pairs = []
            for entry in setting:
                method, _, path = entry.strip().partition(" ")
                pairs.append((method.upper(), path.strip() or "/"))
            return cls("list", tuple(pairs))
        if setting == AUTO:
            return cls(ALL if in_process else NONE)
        return cls(setting)

    def allows(self, method: str, path: str) -> bool:
        """Whether a state-changing request `method path` (a route template or a concrete path) may be sent."""
        if self.mode == ALL:
            return True
        if self.mode == NONE:
            return False
        method = method.upper()
        for m, pattern in self.entries:
            if m not in ("*", method):
                continue
            if pattern == path or _path_regex(pattern).fullmatch(path):
                return True
        return False

    def describe(self) -> str:
        if self.mode == "list":
            return ", ".join(f"{m} {p}" for m, p in self.entries)
        return self.mode
