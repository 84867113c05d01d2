"""Literal prefilters for signature regexes: skip `re.search` on bodies that cannot match.

Signatures such as `\\bat [\\w.]+\\(...\\.java:\\d+\\)` have no literal prefix, so Python's `re` tries
every position of a large body; a plain `in` test for text every match must contain is far cheaper.
The prefilter never changes an outcome: it only answers "no match" when a required literal is absent.
"""

from __future__ import annotations

import re
from functools import lru_cache

# The parser `re` itself compiles with (private, but stable since 3.11; sre_parse is its deprecated alias).
from re import _constants as _sre  # type: ignore[attr-defined]
from re import _parser as _sre_parse  # type: ignore[attr-defined]
from typing import Any

# A requirement: at least one of these literals occurs in every matching text.
Requirement = tuple[str, ...]
_MIN_LITERAL = 2  # one-character literals filter nothing on real bodies


@lru_cache(maxsize=512)
def required_literals(pattern: str, flags: int = 0) -> tuple[Requirement, ...]:
    """Requirements every text matched by `pattern` meets; () when none can be derived safely."""
    if flags & re.IGNORECASE:
        return ()
    try:
        parsed = _sre_parse.parse(pattern, flags)
    except (re.error, RecursionError, OverflowError):
        return ()
    if parsed.state.flags & re.IGNORECASE:  # an inline (?i) at the start
        return ()
    return tuple(r for r in _sequence(list(parsed)) if all(len(lit) >= _MIN_LITERAL for lit in r))


def _sequence(items: list[tuple[Any, Any]]) -> list[Requirement]:
    """Requirements of a sequence of parsed items: its literal runs and its mandatory sub-parts."""
    out: list[Requirement] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            out.append(("".join(run),))
            run.clear()

    for op, arg in items:
        if op is _sre.LITERAL:
            run.append(chr(arg))
            continue
        flush()
        if op is _sre.SUBPATTERN:
            _group, add_flags, del_flags, sub = arg
            if add_flags & re.IGNORECASE:
                continue  # case-insensitive inside: its literals prove nothing
            out.extend(_alternatives(list(sub)))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT) and arg[0] >= 1:
            out.extend(_alternatives(list(arg[2])))  # present at least once
        elif op is _sre.BRANCH:
            alt = _branch(arg[1])
            if alt:
                out.append(alt)
        elif op is _sre.ATOMIC_GROUP:
            out.extend(_alternatives(list(arg)))
        # anything else (classes, anchors, lookarounds, backrefs, optional parts) requires nothing
    flush()
    return out


def _alternatives(items: list[tuple[Any, Any]]) -> list[Requirement]:
    """Requirements of a group's content, which may be one alternation."""
    if len(items) == 1 and items[0][0] is _sre.BRANCH:
        alt = _branch(items[0][1][1])
        return [alt] if alt else []
    return _sequence(items)


def _branch(branches: list[Any]) -> Requirement:
    """One literal per branch (its longest required one), or () when a branch has none."""
    picks: list[str] = []
    for branch in branches:
        singles = [r[0] for r in _sequence(list(branch)) if len(r) == 1]
        if not singles:
            return ()
        picks.append(max(singles, key=len))
    return tuple(dict.fromkeys(picks))


def may_match(pattern: str, text: str, flags: int = 0) -> bool:
    """False only when `pattern` cannot match anywhere in `text` (a required literal is missing)."""
    return all(any(lit in text for lit in req) for req in required_literals(pattern, flags))


def search(pattern: str, text: str, flags: int = 0) -> re.Match[str] | None:
    """`re.search(pattern, text, flags)`, skipped when a required literal is missing from `text`."""
    if not may_match(pattern, text, flags):
        return None
    return re.search(pattern, text, flags)
