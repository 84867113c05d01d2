"""Sensor proofs: which sensor events show that a probe's data is still doing what the flaw did.

A blind flaw (SQL injection nobody sees, a shell command with no output, a loader that ran) has no
response to test. Its proof is a sensor event: `(kind, marker)` where the marker is the injected
value (or the probe's canary) found in the event. The generated pytest reproductions call
`flaw_events` under the `sensors` fixture; a fixed app produces no such event.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from bastion.sensors.events import SensorEvent, SensorSession

# A shell running a command line (`sh -c "<line>"`): only there do separators in the data matter.
_SHELL_C = re.compile(r"^(?:/usr)?/bin/(?:ba|da|z|k)?sh -c ")
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "\n"})


def shell_runs_marker(detail: str, marker: str) -> bool:
    """A shell command line in which `marker` is a word after a command separator: the value was
    spliced in unquoted (quoted with `shlex.quote`, or passed as an argv item, it stays one word)."""
    if not _SHELL_C.match(detail) or marker not in detail:
        return False
    line = _SHELL_C.sub("", detail, count=1)
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: the shell would refuse the line too
        return False
    seen_separator = False
    for token in tokens:
        if token in _SEPARATORS:
            seen_separator = True
        elif seen_separator and marker in token:
            return True
    return False


def shows_flaw(event: SensorEvent, kind: str, marker: str) -> bool:
    """Whether `event` is a `kind` event carrying `marker` the way the flaw did."""
    if event.kind != kind:
        return False
    if kind == "subprocess":
        return shell_runs_marker(event.raw_detail, marker)
    return marker in event.raw_detail


def flaw_events(sensors: SensorSession | Iterable[SensorEvent], kind: str, marker: str) -> list[SensorEvent]:
    """The events (from a session or a list) that show the flaw: `kind` events carrying `marker`."""
    events = sensors.events if isinstance(sensors, SensorSession) else sensors
    return [e for e in list(events) if shows_flaw(e, kind, marker)]
