"""Session-store sensor: values the app's own code writes into the server-side session.

Flask's `session[key] = value` (SecureCookieSession) and Django's `request.session[key] = value`
(SessionBase) are wrapped; the event names the key and carries the value (a canary in it means
request data crossed into the trusted session unvalidated), located at the app line that wrote it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

from bastion.sensors import hook

MAX_SESSION_EVENTS = 2_000
_installed = False


def install() -> None:
    """Wrap the session classes that are importable (once per process; pass-through without a session)."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        from flask.sessions import SecureCookieSession

        _wrap_setitem(SecureCookieSession)
    except ImportError:
        pass
    # Django missing, or importable but unconfigured: nothing to watch.
    with contextlib.suppress(Exception):
        from django.contrib.sessions.backends.base import SessionBase

        _wrap_setitem(SessionBase)


def _wrap_setitem(cls: Any) -> None:
    original: Callable[..., Any] = cls.__setitem__
    if getattr(original, "__bastion_sensor__", False):
        return

    def setitem(self: Any, key: Any, value: Any) -> Any:
        session = hook.active_session()
        if session is not None and not hook.busy():
            hook.emit_at(session, "session", f"session[{key!r}] = {value!r}", sys._getframe(1),
                         kind_cap=MAX_SESSION_EVENTS)
        return original(self, key, value)

    setitem.__wrapped__ = original  # type: ignore[attr-defined]
    setitem.__bastion_sensor__ = True  # type: ignore[attr-defined]
    cls.__setitem__ = setitem
