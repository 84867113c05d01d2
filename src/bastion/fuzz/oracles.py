"""Oracles that turn a fuzzed response into a failure: crash, stack trace, sensor sink."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bastion.checks.injection.sql import payload_quote_is_syntax
from bastion.payloads.prefilter import search as prefiltered_search
from bastion.sensors import SensorEvent
from bastion.target.exchange import Exchange

# Only an unhandled error (500) is a crash by status: 501, a deliberate 502/504 ("upstream failed") and
# 503 (overloaded, rate limited) are answers. Any status with a stack trace in its body is one (leaked_stack).
_CRASH_STATUSES = frozenset({500})
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Sensor events that mean request data reached a query, a shell or the unpickler as syntax. `compile`
# is left out (ast.parse of a formula compiles too, harmlessly) and so are argv lists without a shell.
SINK_KINDS = frozenset({"sql", "subprocess", "pickle"})
_SHELL = re.compile(r"^(?:\S*/)?(?:ba|da|z|k)?sh -c ")


@dataclass(frozen=True)
class StackSignature:
    name: str
    regex: str


def is_crash(ex: Exchange) -> bool:
    """An unhandled server error (500); other 5xx are the app's own answers unless they carry a stack trace."""
    return ex.ok and ex.status in _CRASH_STATUSES


def has_lone_surrogate(value: Any) -> bool:
    """Whether a (nested) JSON value holds a lone UTF-16 surrogate, text no UTF-8 encoder accepts."""
    if isinstance(value, str):
        return _LONE_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


def without_surrogates(value: Any) -> Any:
    """The value with every string holding a lone surrogate replaced by a plain wrong-type value ([])."""
    if isinstance(value, str):
        return [] if _LONE_SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {k: without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_surrogates(v) for v in value]
    return value


def leaked_stack(ex: Exchange, baseline: str, sigs: list[StackSignature]) -> str | None:
    """The first stack-trace signature in the response that the baseline does not show."""
    for sig in sigs:
        if prefiltered_search(sig.regex, ex.text) and not prefiltered_search(sig.regex, baseline):
            return sig.name
    return None


def sql_breaks_out(events: list[SensorEvent], marker: str, canary: str) -> bool:
    """A SQL statement where the probe's marker quotes are syntax (spliced text), not an escaped literal (a bound
    parameter some tracers expand into the statement): injection.sql's sensor confirmation."""
    return any(e.kind == "sql" and payload_quote_is_syntax(e.raw_detail, marker, canary) for e in events)


def sink_events(events: list[SensorEvent]) -> list[SensorEvent]:
    """Events where fuzzed text became syntax: SQL text, a shell command line, a class to unpickle."""
    return [e for e in events if e.kind in SINK_KINDS
            and (e.kind != "subprocess" or _SHELL.match(e.raw_detail) is not None)]
