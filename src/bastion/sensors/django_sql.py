"""Django SQL sensor: every statement Django's cursor wrapper runs (ORM, `.raw()`, `.extra()`, `cursor.execute`).

Django runs all SQL through `django.db.backends.utils.CursorWrapper` (its DEBUG subclass calls the same
`execute`); that is where `connection.execute_wrapper()` hooks apply. Those hooks are kept per
connection object and connections are per thread, so a hook added on the scan's thread would miss
the worker threads that serve the requests. The sensor therefore wraps `CursorWrapper.execute` and
`executemany` themselves while a sensor session is active, for every database alias and backend,
and restores Django's own methods when the last session ends: without a session the class is
untouched. Only the statement text is recorded (bound parameters are data, not injection), located
at the innermost frame of the app's own code, like the sqlite3 and SQLAlchemy sensors.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any

from bastion.sensors import hook

_LOCK = threading.Lock()
_depth = 0
_originals: dict[str, Callable[..., Any]] = {}


def _cursor_wrapper_class() -> type | None:
    """Django's CursorWrapper when Django is already imported (a Django app is in the process)."""
    if "django" not in sys.modules:
        return None
    with contextlib.suppress(Exception):  # importable but broken/unconfigured: nothing to watch
        from django.db.backends.utils import CursorWrapper

        return CursorWrapper
    return None


def start() -> None:
    """Wrap CursorWrapper.execute/executemany when the first session starts (sessions nest)."""
    global _depth
    with _LOCK:
        _depth += 1
        if _originals:
            return
        cls = _cursor_wrapper_class()
        if cls is None:
            return
        for name in ("execute", "executemany"):
            original = cls.__dict__.get(name)
            if original is None or getattr(original, "__bastion_sensor__", False):
                continue
            _originals[name] = original
            setattr(cls, name, _wrapper(original))


def stop() -> None:
    """Restore Django's own methods when the last session ends."""
    global _depth
    with _LOCK:
        _depth = max(0, _depth - 1)
        if _depth or not _originals:
            return
        cls = _cursor_wrapper_class()
        if cls is not None:
            for name, original in _originals.items():
                setattr(cls, name, original)
        _originals.clear()


def installed() -> bool:
    """Whether Django's cursor wrapper currently carries the sensor."""
    with _LOCK:
        return bool(_originals)


def _wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    def sensed(self: Any, sql: Any, *args: Any, **kwargs: Any) -> Any:
        session = hook.active_session()
        if session is None or hook.busy():
            return original(self, sql, *args, **kwargs)
        hook.emit_at(session, "sql", str(sql), sys._getframe(1))
        # The sqlite3 sensors below would see the same statement again (as one more event).
        with hook.sql_already_recorded():
            return original(self, sql, *args, **kwargs)

    sensed.__wrapped__ = original  # type: ignore[attr-defined]
    sensed.__bastion_sensor__ = True  # type: ignore[attr-defined]
    sensed.__doc__ = original.__doc__
    return sensed
