"""SQL statements on sqlite3 connections the app opened before the sensor session started.

`sqlite3.connect` is wrapped only for connections opened while a session is active (see hook.py);
an app that opens its connection at import time or in its factory would go unseen. `sqlite3.Connection`
is a C type (no attribute to patch, no weak references), but it has a trace callback: when the first
session starts, the live connections are found once with `gc.get_objects()` (bounded) and given
Bastion's trace callback; when the last session ends, `set_trace_callback(None)` removes it.

Caveats, by CPython's design:
- A trace callback cannot be read back, so one the app installed itself is replaced during the scan
  and cleared (not restored) after it. Apps that rely on their own trace callback should open their
  connection inside the scan (then Bastion's connect wrapper senses it without a trace callback) or
  scan with sensors off.
- The trace callback receives the statement with bound parameters expanded as escaped literals
  (`'it''s'`): a bound value shows in the text, but its quotes stay data, which is what the SQL check
  and the reproductions test for.
- Connections that only their creating thread may use (`check_same_thread=True`, the default) or that
  are closed refuse a callback from another thread: they are skipped.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
from collections.abc import Callable

# At most this many pre-opened connections are traced (an app has a handful; a pool a few dozen).
MAX_PREOPENED = 256

_LOCK = threading.Lock()
_depth = 0  # active sessions using the tracer (sessions nest: a pytest fixture around a scan)
_traced: list[sqlite3.Connection] = []  # strong refs only while a session is active


def preopened_connections(limit: int = MAX_PREOPENED) -> list[sqlite3.Connection]:
    """Live sqlite3 connections (not Bastion's sensed ones), at most `limit`, in gc order."""
    from bastion.sensors.hook import _SensedConnection  # the connect wrapper's class: already sensed

    found: list[sqlite3.Connection] = []
    for obj in gc.get_objects():
        # type(), not isinstance(): lazy proxies (Django's settings) resolve themselves on `__class__`.
        if issubclass(type(obj), sqlite3.Connection) and not issubclass(type(obj), _SensedConnection):
            found.append(obj)
            if len(found) >= limit:
                break
    return found


def start(callback: Callable[[str], None]) -> None:
    """Trace the pre-opened connections with `callback` (the first of nested sessions does the scan;
    later ones add the connections opened since)."""
    global _depth
    with _LOCK:
        _depth += 1
        known = {id(c) for c in _traced}
        for conn in preopened_connections():
            if id(conn) in known or len(_traced) >= MAX_PREOPENED:
                continue
            try:
                conn.set_trace_callback(callback)
            except sqlite3.Error:  # closed, or bound to another thread (check_same_thread)
                continue
            _traced.append(conn)


def stop() -> None:
    """When the last session ends, remove the trace callback from every connection given one."""
    global _depth
    with _LOCK:
        _depth = max(0, _depth - 1)
        if _depth:
            return
        for conn in _traced:
            try:
                conn.set_trace_callback(None)
            except sqlite3.Error:  # closed meanwhile, or the app moved it to another thread
                pass
        _traced.clear()


def traced_count() -> int:
    """How many pre-opened connections currently carry Bastion's trace callback."""
    with _LOCK:
        return len(_traced)
