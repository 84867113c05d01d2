"""Sensor events and the session that collects them (bounded, thread-safe)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from bastion.findings.redact import Redactor

MAX_EVENTS = 10_000
MAX_DETAIL = 8_000
REDACTOR = Redactor()
# The tokens `CanaryFactory` makes: `bst` and lower-case alphanumerics.
CANARY_RE = re.compile(r"bst[a-z0-9]{6,}")
# Every place in a detail where a canary could start, keyed by its shortest form ("bst" + 6): a canary
# marker is looked up among the events holding its first 9 characters instead of in every event.
_CANARY_KEY = 9
_CANARY_STARTS = re.compile(r"(?=(bst[a-z0-9]{6}))")


class Probe:
    """One request a check sends; the engine fills `key` once the request is built (see correlate)."""

    __slots__ = ("key",)

    def __init__(self) -> None:
        self.key: tuple[str, str, str, tuple[tuple[str, str], ...]] | None = None


@dataclass(eq=False)
class SensorEvent:
    """What a sensor saw: kind (`sql`, `open`, `subprocess`, ...), detail, and the app frame."""

    kind: str
    raw_detail: str = field(repr=False)
    file: str | None = None  # absolute path of the innermost app frame, when the app is on the stack
    line: int | None = None
    probe: Probe | None = field(default=None, repr=False, compare=False)

    @cached_property
    def detail(self) -> str:
        """The detail, with secret-shaped text masked (done lazily: most events are never read)."""
        return REDACTOR.text(self.raw_detail)

    @cached_property
    def canaries(self) -> frozenset[str]:
        return frozenset(CANARY_RE.findall(self.raw_detail))


class SensorSession:
    """Collects events while active; `app_roots` decide which stack frames are the app's own code."""

    def __init__(self, app_roots: Iterable[str] = (), *, allowed_hosts: Iterable[str] | None = None,
                 max_events: int = MAX_EVENTS) -> None:
        self.app_roots = tuple(os.path.abspath(r).rstrip(os.sep) + os.sep for r in app_roots if r)
        # None: no egress guard (e.g. a pytest fixture watching only); a set: everything else is blocked.
        self.allowed_hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
        self.max_events = max_events
        self.events: list[SensorEvent] = []
        self.dropped = 0
        # Per-session scratch space of the sensors and checks that need it (e.g. crypto nonce hashes).
        self.state: dict[str, Any] = {}
        self._kind_counts: dict[str, int] = {}
        self._canary_overflow = 0
        self._lock = threading.Lock()
        self._by_canary_key: dict[str, list[SensorEvent]] = {}
        self._indexed = 0  # events[:_indexed] are in _by_canary_key

    def record(self, event: SensorEvent, *, kind_cap: int | None = None) -> None:
        """Keep `event`; with `kind_cap`, its kind has its own bound instead of the shared one (rare,
        decisive events such as crypto misuse must not be crowded out by SQL traffic)."""
        with self._lock:
            if kind_cap is not None:
                count = self._kind_counts.get(event.kind, 0)
                if count >= kind_cap:
                    self.dropped += 1
                    return
                self._kind_counts[event.kind] = count + 1
            elif len(self.events) >= self.max_events and not self._keep_past_cap(event):
                self.dropped += 1
                return
            self.events.append(event)

    def _keep_past_cap(self, event: SensorEvent) -> bool:
        """Events carrying a probe's canary are the proof checks look for (blind flaws have no other):
        past the shared cap they get a bound of their own, so app traffic cannot crowd them out."""
        if not event.canaries or self._canary_overflow >= self.max_events:
            return False
        self._canary_overflow += 1
        return True

    def of_kind(self, kind: str) -> list[SensorEvent]:
        return [e for e in self.events if e.kind == kind]

    def matching(self, marker: str) -> list[SensorEvent]:
        """Events whose (unredacted) detail contains `marker`."""
        with self._lock:
            if CANARY_RE.fullmatch(marker):
                # Checks ask once or twice per probe: scanning every event's detail each time was the
                # sensors' main cost. A detail containing the canary holds its first 9 characters.
                self._index_new_events()
                events = list(self._by_canary_key.get(marker[:_CANARY_KEY], ()))
            else:
                events = list(self.events)
        return [e for e in events if marker in e.raw_detail]

    def _index_new_events(self) -> None:
        """Add the events recorded since the last lookup to the canary index (caller holds the lock)."""
        for event in self.events[self._indexed:]:
            for key in dict.fromkeys(_CANARY_STARTS.findall(event.raw_detail)):
                self._by_canary_key.setdefault(key, []).append(event)
        self._indexed = len(self.events)

    def is_app_file(self, filename: str) -> bool:
        return filename.startswith(self.app_roots)


def clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL] + "…"
