"""Oracles that turn a fuzzed response into a failure: crash, stack trace, sensor sink."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bastion.sensors import SensorEvent
from bastion.target.exchange import Exchange

# 501 (not implemented) and 503 (overloaded, rate limited) are answers, not crashes.
_NOT_CRASHES = frozenset({501, 503})
# Sensor events that mean request data reached a query, a shell or the unpickler as syntax. `compile`
# is left out (ast.parse of a formula compiles too, harmlessly) and so are argv lists without a shell.
SINK_KINDS = frozenset({"sql", "subprocess", "pickle"})
_SHELL = re.compile(r"^(?:\S*/)?(?:ba|da|z|k)?sh -c ")


@dataclass(frozen=True)
class StackSignature:
    name: str
    regex: str


def is_crash(ex: Exchange) -> bool:
    """A 5xx the server chose not to explain (500, 502, 504, ...)."""
    return ex.ok and ex.status >= 500 and ex.status not in _NOT_CRASHES


def leaked_stack(ex: Exchange, baseline: str, sigs: list[StackSignature]) -> str | None:
    """The first stack-trace signature in the response that the baseline does not show."""
    for sig in sigs:
        if re.search(sig.regex, ex.text) and not re.search(sig.regex, baseline):
            return sig.name
    return None


def sink_events(events: list[SensorEvent]) -> list[SensorEvent]:
    """Events where fuzzed text became syntax: SQL text, a shell command line, a class to unpickle."""
    return [e for e in events if e.kind in SINK_KINDS
            and (e.kind != "subprocess" or _SHELL.match(e.raw_detail) is not None)]
