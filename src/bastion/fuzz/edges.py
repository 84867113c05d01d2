"""Edge-case values per field kind: boundaries, wrong types, unicode oddities (data, ordered by yield).

Each list is tried in order by the deterministic sweep, so the values most likely to break a handler
come first. Lone surrogates only go into JSON (escaped as `\\ud800`): they cannot be encoded in a URL.
"""

from __future__ import annotations

from typing import Any

# Larger values are cut to this many characters; "huge" means big enough to hit limits, bounded.
MAX_VALUE_CHARS = 16_384

INTEGER_BOUNDARIES: tuple[int, ...] = (0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 10**30)
NUMBER_BOUNDARIES: tuple[float, ...] = (0.0, -0.0, -1.5, 1e308, 5e-324)
# NaN and infinities are only sent where the schema does not exclude them (JSON carries them as
# NaN / Infinity, which Python's json module reads).
NUMBER_SPECIALS: tuple[float, ...] = (float("nan"), float("inf"), float("-inf"))

UNICODE_EDGES: tuple[str, ...] = (
    "\x00",                      # NUL
    "\u202etxt.exe",             # right-to-left override
    "e\u0301" * 64,              # combining marks
    "\U0001f600\U0001f469\u200d\U0001f4bb",  # emoji and a ZWJ sequence
    "\ufeff\u200b",              # BOM, zero-width space
    "\uff11\uff12\uff13",        # fullwidth digits (normalise to 123)
    "\u0130\u00df\ufb01",        # case mappings that change length (İ, ß, ﬁ)
    "\u00c0\u00af",              # bytes of an overlong UTF-8 sequence, as text
    "\r\n",                      # line break
)
JSON_ONLY_EDGES: tuple[str, ...] = ("\ud800", "\udfff\ud800")  # lone surrogates

STRING_BOUNDARIES: tuple[str, ...] = ("", " ", "0", "-1", "null", "true", "[]", "{}", "%00", "..", "%s%n")

# Wrong-type values for a JSON field, most crash-prone first.
JSON_WRONG_TYPES: tuple[Any, ...] = (None, [], {}, "", 0, -1, True, 1.5, [None], {"": None}, [[]])
# Wrong-type values for text inputs (query, path, header, cookie, form) that should be numbers/booleans.
TEXT_WRONG_TYPES: tuple[str, ...] = ("", "abc", "1.5", "1e309", "NaN", "-0", "0x10", " 1", "[]")


def huge_string(chars: int = MAX_VALUE_CHARS) -> str:
    """A long value, bounded by MAX_VALUE_CHARS."""
    return "A" * min(chars, MAX_VALUE_CHARS)


def deep_json(depth: int = 64) -> Any:
    """Nested lists `[[[...]]]`, deep enough to hit recursion limits in naive walkers, bounded."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value
