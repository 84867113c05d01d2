"""The log sensor's field prefilter never hides a `name=value` pair the full pattern finds."""

from __future__ import annotations

import random
import re

from bastion.sensors.logs import DEFAULT_PII_FIELDS, DEFAULT_SECRET_FIELDS, _field_values


def _unfiltered(message: str, fields: tuple[str, ...]) -> list[tuple[str, str]]:
    names = "|".join(re.escape(f) for f in sorted(set(fields), key=len, reverse=True) if f)
    pattern = re.compile(rf"(?i)([\w.-]*(?:{names})[\w.-]*)['\"]?\s*[=:]\s*['\"]?([^\s'\",;&}}]+)")
    return [(m.group(1), m.group(2)) for m in pattern.finditer(message)]


def test_prefilter_keeps_every_match() -> None:
    rnd = random.Random(11)
    pieces = ["password", "PASSWORD", "pİn", "PIN", "pın", "ſsn", "\u212aey", "token", "e-mail", "Email", "=",
              ": ", "'", '"', " ", "x", "GET /api/items?id=3", "user=alice", "otp", "phone", "ﬀ", "é"]
    for fields in (DEFAULT_SECRET_FIELDS, DEFAULT_PII_FIELDS, ("Api_Key",), ("pin",)):
        for _ in range(1500):
            message = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 12))) + "=v4lue"
            assert _field_values(message, fields) == _unfiltered(message, fields), (fields, message)


def test_non_ascii_field_names_are_not_prefiltered() -> None:
    assert _field_values("STRASSE=Main", ["straße"]) == _unfiltered("STRASSE=Main", ("straße",))
