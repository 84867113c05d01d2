"""Keep an in-process target's log lines off Bastion's console while it is being scanned.

An app scanned in-process logs into the same process as Bastion: a warning it logs would land, through
`logging.lastResort` or its own stderr handler (Flask's default one), in the middle of Bastion's progress
output. Within `muted_app_console()` such records skip every `StreamHandler` writing to the terminal
(stderr/stdout). Nothing else changes: the log sensor still sees them (it hooks `Logger.handle`, before any
handler), the app's file or network handlers still write them, and only records emitted in the scan's
context (its tasks and the threads they start) are affected: other threads log as before.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

_MUTED: ContextVar[bool] = ContextVar("bastion_app_console_muted", default=False)
_LOCK = threading.Lock()
# Nesting depth of muted blocks in the process, and StreamHandler.emit as it was before the first one.
_depth = 0
_original_emit: Callable[[logging.StreamHandler[Any], logging.LogRecord], None] | None = None


def _resolved(stream: Any) -> Any:
    """The object behind a proxy stream (Flask's `wsgi_errors_stream` is a werkzeug LocalProxy)."""
    resolve = getattr(stream, "_get_current_object", None)
    if callable(resolve):
        try:
            return resolve()
        except RuntimeError:  # the proxy has nothing bound here
            return stream
    return stream


def writes_to_terminal(handler: logging.StreamHandler[Any]) -> bool:
    """Whether the handler's stream is the process's stderr or stdout (as now, or as at start-up)."""
    stream = _resolved(handler.stream)
    return any(stream is s for s in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__) if s is not None)


def _muting_emit(self: logging.StreamHandler[Any], record: logging.LogRecord) -> None:
    if _MUTED.get() and writes_to_terminal(self):
        return
    assert _original_emit is not None
    _original_emit(self, record)


@contextmanager
def muted_app_console(enabled: bool = True) -> Iterator[None]:
    """Within the block, records logged in this context skip terminal handlers (restored afterwards)."""
    global _depth, _original_emit
    if not enabled:
        yield
        return
    with _LOCK:
        if _depth == 0:
            _original_emit = logging.StreamHandler.emit
            logging.StreamHandler.emit = _muting_emit  # type: ignore[method-assign,assignment]
        _depth += 1
    token = _MUTED.set(True)
    try:
        yield
    finally:
        _MUTED.reset(token)
        with _LOCK:
            _depth -= 1
            if _depth == 0 and _original_emit is not None:
                logging.StreamHandler.emit = _original_emit  # type: ignore[method-assign,assignment]
                _original_emit = None


@asynccontextmanager
async def muted_app_console_async(enabled: bool = True) -> AsyncIterator[None]:
    """`muted_app_console` for an `async with` (the tasks started inside inherit the muted context)."""
    with muted_app_console(enabled):
        yield
