"""Cookie sensor: which line of the app's own code set a cookie, and with which flags.

While a sensor session is active, `set_cookie` of werkzeug (Flask), Starlette (FastAPI) and Django
responses is wrapped; each call records the cookie's name and flags (secure, httponly, samesite,
domain, path, max_age; never its value) and the innermost frame in the app's own code. A cookie the
framework sets by itself (Flask's session interface, Django's session and CSRF middleware) has no app
frame: the call then names the configuration keys that decide its flags instead of framework code.

The wrappers are installed when the first session starts and removed when the last one ends, so
with no session the response classes are the framework's own. The cookie-flags check turns a call
that explains a Set-Cookie it saw into the finding's file:line.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from bastion.findings.model import Evidence
from bastion.sensors import hook
from bastion.sensors.events import Probe, SensorEvent, SensorSession
from bastion.surface.handler_ast import display_path

MAX_COOKIE_CALLS = 2_000
_STATE_KEY = "cookies"
# Modules that set cookies on the app's behalf, and the configuration that decides the flags.
CONFIG_HINTS: dict[str, str] = {
    "flask.sessions": "Flask's session interface sets this cookie: its flags come from the app config "
                      "SESSION_COOKIE_SECURE, SESSION_COOKIE_HTTPONLY and SESSION_COOKIE_SAMESITE",
    "flask_login": "Flask-Login's remember-me cookie: its flags come from the app config "
                   "REMEMBER_COOKIE_SECURE, REMEMBER_COOKIE_HTTPONLY and REMEMBER_COOKIE_SAMESITE",
    "django.contrib.sessions": "Django's SessionMiddleware sets this cookie: its flags come from the settings "
                               "SESSION_COOKIE_SECURE, SESSION_COOKIE_HTTPONLY and SESSION_COOKIE_SAMESITE",
    "django.middleware.csrf": "Django's CSRF middleware sets this cookie: its flags come from the settings "
                              "CSRF_COOKIE_SECURE, CSRF_COOKIE_HTTPONLY and CSRF_COOKIE_SAMESITE",
}
_LOCK = threading.Lock()
_depth = 0
_originals: list[tuple[type, Callable[..., Any]]] = []


@dataclass(frozen=True)
class CookieCall:
    """One `set_cookie` call: the flags it asked for and who made it."""

    name: str
    secure: bool
    httponly: bool
    samesite: str | None
    domain: str | None
    path: str | None
    max_age: str | None
    deletes: bool
    file: str | None  # the app's own frame (absolute path), None when the framework set it
    line: int | None
    setter: str  # the module of the code that called set_cookie
    config_hint: str | None  # for framework-set cookies: the configuration that decides the flags
    probe: Probe | None = None

    def lacks(self, flag: str) -> bool:
        """Whether this call explains a missing flag as reported by the cookie-flags check."""
        samesite = (self.samesite or "").lower()
        match flag:
            case "HttpOnly":
                return not self.httponly
            case "Secure":
                return not self.secure
            case "SameSite":
                return samesite not in ("lax", "strict", "none")
            case "SameSite (None without Secure)":
                return samesite == "none" and not self.secure
        return False


def _response_classes() -> list[type]:
    """The importable response classes whose `set_cookie` the apps call."""
    out: list[type] = []
    try:
        from werkzeug.sansio.response import Response as WerkzeugResponse

        out.append(WerkzeugResponse)
    except ImportError:
        pass
    try:
        from starlette.responses import Response as StarletteResponse

        out.append(StarletteResponse)
    except ImportError:
        pass
    # Django missing, or importable but unconfigured: nothing to watch.
    with contextlib.suppress(Exception):
        from django.http.response import HttpResponseBase

        out.append(HttpResponseBase)
    return out


def start() -> None:
    """Wrap `set_cookie` when the first session starts (sessions nest; the last one unwraps)."""
    global _depth
    with _LOCK:
        _depth += 1
        if _depth > 1:
            return
        for cls in _response_classes():
            original = cls.__dict__.get("set_cookie")
            if original is None or getattr(original, "__bastion_sensor__", False):
                continue
            _originals.append((cls, original))
            cls.set_cookie = _wrapper(original)  # type: ignore[attr-defined]


def stop() -> None:
    """Restore the frameworks' own `set_cookie` when the last session ends."""
    global _depth
    with _LOCK:
        _depth = max(0, _depth - 1)
        if _depth:
            return
        for cls, original in reversed(_originals):
            cls.set_cookie = original  # type: ignore[attr-defined]
        _originals.clear()


def _wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    def set_cookie(self: Any, *args: Any, **kwargs: Any) -> Any:
        session = hook.active_session()
        if session is not None and not hook.busy():
            hook._busy.on = True  # the recording itself must not be sensed (e.g. file opens)
            try:
                _record(session, signature, (self, *args), kwargs, sys._getframe(1))
            finally:
                hook._busy.on = False
        return original(self, *args, **kwargs)

    set_cookie.__wrapped__ = original  # type: ignore[attr-defined]
    set_cookie.__bastion_sensor__ = True  # type: ignore[attr-defined]
    set_cookie.__doc__ = original.__doc__
    return set_cookie


def _record(session: SensorSession, signature: inspect.Signature, args: tuple[Any, ...],
            kwargs: dict[str, Any], caller: FrameType | None) -> None:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return  # the framework's own call will raise the same error
    bound.apply_defaults()
    a = bound.arguments
    setter = str(caller.f_globals.get("__name__", "")) if caller is not None else ""
    # A framework's own cookie: its config decides the flags (an app middleware further out on the
    # stack is not where they are chosen).
    hint = _config_hint(setter)
    file, line = None, None
    if hint is None and session.app_roots:
        file, line = hook._app_frame(session, caller)
    elif hint is None and caller is not None:
        file, line = caller.f_code.co_filename, caller.f_lineno  # no app roots: the direct caller
    max_age = a.get("max_age")
    call = CookieCall(
        name=str(a.get("key", "")), secure=bool(a.get("secure")), httponly=bool(a.get("httponly")),
        samesite=None if a.get("samesite") is None else str(a.get("samesite")),
        domain=None if a.get("domain") is None else str(a.get("domain")),
        path=None if a.get("path") is None else str(a.get("path")),
        max_age=None if max_age is None else str(max_age),
        deletes=not a.get("value") or str(max_age) in ("0", "0:00:00"),
        file=file, line=line, setter=setter, config_hint=hint, probe=hook.current_probe())
    event = SensorEvent("cookie", describe(call), file, line, call.probe)
    with session._lock:
        calls: list[CookieCall] = session.state.setdefault(_STATE_KEY, [])
        if len(calls) >= MAX_COOKIE_CALLS:
            session.dropped += 1
            return
        calls.append(call)
    session.record(event, kind_cap=MAX_COOKIE_CALLS)


def _config_hint(setter: str) -> str | None:
    for prefix, hint in CONFIG_HINTS.items():
        if setter == prefix or setter.startswith(prefix + "."):
            return hint
    return None


def describe(call: CookieCall) -> str:
    """`set_cookie('sid', secure=False, httponly=False, samesite=None, ...)` (never the value)."""
    text = (f"set_cookie({call.name!r}, secure={call.secure}, httponly={call.httponly}, "
            f"samesite={call.samesite!r}, domain={call.domain!r}, path={call.path!r}, max_age={call.max_age})")
    if call.file is None:
        text += f" called by {call.setter or 'unknown code'}"
    return text


def cookie_calls(session: SensorSession | None) -> list[CookieCall]:
    """Every `set_cookie` call the session saw, in call order."""
    if session is None:
        return []
    with session._lock:
        return list(session.state.get(_STATE_KEY, ()))


def explaining_call(session: SensorSession | None, name: str, missing: list[str],
                    probe_key: Any = None) -> CookieCall | None:
    """The call that set cookie `name` without every flag in `missing`: one made during the request
    `probe_key` when there is one, else any such call (app lines before framework ones, then by line)."""
    calls = [c for c in cookie_calls(session) if c.name == name and not c.deletes
             and all(c.lacks(flag) for flag in missing)]
    if not calls:
        return None
    same = [c for c in calls if probe_key is not None and c.probe is not None and c.probe.key == probe_key]
    return min(same or calls, key=lambda c: (c.file is None, c.file or "", c.line or 0, c.setter))


def call_evidence(call: CookieCall) -> Evidence:
    """Sensor evidence for a finding: the app's file:line, or the framework and its configuration."""
    if call.file is not None:
        file = display_path(call.file) or call.file
        summary = f"cookie sensor: the app's own code set {call.name!r} at {file}:{call.line}"
        return Evidence(kind="sensor", summary=summary, content=describe(call),
                        meta={"sensor": "cookie", "file": file, "line": str(call.line)})
    hint = call.config_hint or f"set by {call.setter or 'library code'}, not by the app's own code"
    return Evidence(kind="sensor", summary=f"cookie sensor: {call.name!r} is set by the framework, not the app's code",
                    content=f"{describe(call)}\n{hint}", meta={"sensor": "cookie", "setter": call.setter})
