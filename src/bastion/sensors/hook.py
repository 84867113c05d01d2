"""The process-wide audit hook and the sensor session context.

Audit hooks cannot be removed, so one hook is installed on first use and does nothing unless a
session is active in the current context. Sessions live in a ContextVar: asyncio tasks and
`anyio.to_thread.run_sync` worker threads (the in-process WSGI transport) inherit it, other threads
and other scans do not see it.
"""

from __future__ import annotations

import contextvars
import ipaddress
import os
import sqlite3
import sqlite3.dbapi2
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from bastion.sensors.events import Probe, SensorEvent, SensorSession, clip

_SESSION: contextvars.ContextVar[SensorSession | None] = contextvars.ContextVar("bastion_sensors", default=None)
_PROBE: contextvars.ContextVar[Probe | None] = contextvars.ContextVar("bastion_probe", default=None)
_INSTALL_LOCK = threading.Lock()
_installed = False
_busy = threading.local()  # the hook's own work (e.g. sys._getframe) raises audit events too


class EgressBlocked(PermissionError):
    """Raised inside the app when it connects or resolves a host outside the scan's scope."""


def active_session() -> SensorSession | None:
    return _SESSION.get()


@contextmanager
def sensor_session(session: SensorSession) -> Iterator[SensorSession]:
    """Make `session` the active one in this context (and the tasks/threads it starts)."""
    install()
    from bastion.sensors import cookies, django_sql, sqlite_trace  # installed per session, removed after the last

    sqlite_trace.start(_on_sqlite_statement)
    cookies.start()
    django_sql.start()
    token = _SESSION.set(session)
    try:
        yield session
    finally:
        _SESSION.reset(token)
        django_sql.stop()
        cookies.stop()
        sqlite_trace.stop()


@contextmanager
def probe_scope() -> Iterator[Probe]:
    """Tag the events caused while one request is in flight with a `Probe`."""
    probe = Probe()
    token = _PROBE.set(probe)
    try:
        yield probe
    finally:
        _PROBE.reset(token)


def install() -> None:
    """Install the audit hook once per process (idempotent)."""
    global _installed
    with _INSTALL_LOCK:
        if _installed:
            return
        sys.addaudithook(_audit)
        _install_sqlite()
        _install_sqlalchemy()
        from bastion.sensors import runtime  # XPath, LDAP and marshal watchers (imports this module)

        runtime.install()
        from bastion.sensors import crypto, logs, sessions, templates  # wrappers: pass-through without a session

        templates.install()
        logs.install()
        crypto.install()
        sessions.install()
        _installed = True


def _audit(event: str, args: tuple[Any, ...]) -> None:
    session = _SESSION.get()
    if session is None:
        return  # no session: zero effect beyond one ContextVar lookup
    handler = _HANDLERS.get(event)
    if handler is None or getattr(_busy, "on", False):
        return
    _busy.on = True
    try:
        handler(session, args)
    finally:
        _busy.on = False


def _app_frame(session: SensorSession, frame: FrameType | None) -> tuple[str | None, int | None]:
    """The innermost frame in the app's own code."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if session.is_app_file(filename):
            return filename, frame.f_lineno
        frame = frame.f_back
    return None, None


def _emit(session: SensorSession, kind: str, detail: str, *, always: bool = False) -> None:
    file, line = None, None
    if session.app_roots:
        file, line = _app_frame(session, sys._getframe(2))
        if file is None and not always:
            return  # not caused by the app's code (imports, the framework's own files): noise
    session.record(SensorEvent(kind, clip(detail), file, line, _PROBE.get()))


def emit_at(session: SensorSession, kind: str, detail: str, frame: FrameType | None, *,
            always: bool = False, kind_cap: int | None = None) -> SensorEvent | None:
    """Record an event located at the innermost app frame from `frame` outwards (for wrapper sensors).

    Without an app frame the event is dropped (not the app's doing) unless `always`.
    """
    file, line = None, None
    if session.app_roots:
        file, line = _app_frame(session, frame)
        if file is None and not always:
            return None
    event = SensorEvent(kind, clip(detail), file, line, _PROBE.get())
    session.record(event, kind_cap=kind_cap)
    return event


def current_probe() -> Probe | None:
    """The probe (request) in flight in this context, if any."""
    return _PROBE.get()


def busy() -> bool:
    """Whether a sensor is already working in this thread (its own calls must not be sensed)."""
    return bool(getattr(_busy, "on", False))


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return " ".join(_text(v) for v in value)
    return str(value)


def _on_open(session: SensorSession, args: tuple[Any, ...]) -> None:
    path, mode = args[0], args[1] if len(args) > 1 else None
    if isinstance(path, int):
        return  # an fd: the path was seen when it was opened
    _emit(session, "open", f"{_shown_path(_text(path))} mode={mode or 'r'}")


def _shown_path(path: str) -> str:
    """A traversal shows as `…/files/../../etc/passwd -> /etc/passwd`: the part the request supplied
    and where it lands, without the app's (often temporary) base directory."""
    parts = path.split("/")
    if ".." not in parts:
        return path
    first = parts.index("..")
    return "…/" + "/".join(parts[max(0, first - 1):]) + " -> " + os.path.normpath(path)


# Set by a `subprocess.Popen` event, consumed by the spawn event the same Popen raises next in the
# same thread (Python 3.13 starts processes with os.posix_spawn more often): one process, one event.
_IN_POPEN = threading.local()


def _on_argv(session: SensorSession, args: tuple[Any, ...]) -> None:
    _IN_POPEN.pending = True
    _emit(session, "subprocess", _text(args[1] if len(args) > 1 and args[1] is not None else args[0]))


def _on_spawn(session: SensorSession, args: tuple[Any, ...]) -> None:
    if getattr(_IN_POPEN, "pending", False):
        _IN_POPEN.pending = False
        return
    _emit(session, "subprocess", _text(args[1] if len(args) > 1 and args[1] is not None else args[0]))


def _on_system(session: SensorSession, args: tuple[Any, ...]) -> None:
    _emit(session, "subprocess", _text(args[0]))


def _on_compile(session: SensorSession, args: tuple[Any, ...]) -> None:
    source, filename = args[0], args[1] if len(args) > 1 else ""
    if isinstance(source, str | bytes):
        _emit(session, "compile", f"{_text(filename)}: {_text(source)}")


def _on_exec(session: SensorSession, args: tuple[Any, ...]) -> None:
    code = args[0]
    filename = getattr(code, "co_filename", "")
    if isinstance(filename, str) and filename.startswith("<"):  # module imports are not interesting
        _emit(session, "exec", f"{filename} {getattr(code, 'co_name', '')}")


def _on_find_class(session: SensorSession, args: tuple[Any, ...]) -> None:
    _emit(session, "pickle", f"{args[0]}.{args[1]}")


def _host_allowed(session: SensorSession, host: str) -> bool:
    allowed = session.allowed_hosts
    if allowed is None:
        return True
    host = host.strip("[]").lower()
    if host in allowed or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard(session: SensorSession, kind: str, host: Any, port: Any) -> None:
    if host is None:
        return  # getaddrinfo(None, port): a local bind address
    name = _text(host)
    allowed = _host_allowed(session, name)
    _emit(session, kind, f"{name}:{port}", always=not allowed)
    if not allowed:
        _emit(session, "egress-blocked", f"{name}:{port}", always=True)
        raise EgressBlocked(f"bastion egress guard: {name}:{port} is outside the scan's scope")


def _on_connect(session: SensorSession, args: tuple[Any, ...]) -> None:
    address = args[1]
    if isinstance(address, tuple) and len(address) >= 2:
        _guard(session, "connect", address[0], address[1])


def _on_getaddrinfo(session: SensorSession, args: tuple[Any, ...]) -> None:
    _guard(session, "resolve", args[0], args[1] if len(args) > 1 else None)


class _SensedCursor(sqlite3.Cursor):
    """Records the statement text before sqlite parses it, so statements that fail are seen too."""

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        _on_sqlite_statement(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        _on_sqlite_statement(sql)
        return super().executemany(sql, seq_of_parameters)

    def executescript(self, sql_script: str, /) -> Any:
        _on_sqlite_statement(sql_script)
        return super().executescript(sql_script)


class _SensedConnection(sqlite3.Connection):
    """Hands out `_SensedCursor`s; the execute shortcuts do what sqlite3's own do, through them."""

    def cursor(self, factory: Any = _SensedCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, sql_script: str, /) -> Any:
        return self.cursor().executescript(sql_script)


def _install_sqlite() -> None:
    """Capture statements on sqlite3 connections opened while a session is active.

    The `sqlite3.connect/handle` audit event fires before the connection is initialised (nothing can
    be attached there), so `sqlite3.connect` is wrapped; with no active session it only passes
    through. Bound parameters are never recorded: data in them is not injection.
    """
    original = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        if _SESSION.get() is None:
            return original(*args, **kwargs)
        if "factory" in kwargs or len(args) > 5:
            conn = original(*args, **kwargs)  # the app's own Connection class: fall back to tracing
            conn.set_trace_callback(_on_sqlite_statement)
            return conn
        return original(*args, factory=_SensedConnection, **kwargs)

    connect.__wrapped__ = original  # type: ignore[attr-defined]
    sqlite3.connect = connect  # type: ignore[assignment]
    sqlite3.dbapi2.connect = connect  # type: ignore[assignment]


# Set while a framework-level SQL sensor (Django's cursor wrapper) runs a statement it has recorded:
# the sqlite3 sensors underneath must not record it a second time.
_SQL_RECORDED = threading.local()


@contextmanager
def sql_already_recorded() -> Iterator[None]:
    """Within this block the sqlite3 sensors skip statements (an outer SQL sensor saw them)."""
    previous = getattr(_SQL_RECORDED, "on", False)
    _SQL_RECORDED.on = True
    try:
        yield
    finally:
        _SQL_RECORDED.on = previous


def _on_sqlite_statement(statement: str) -> None:
    session = _SESSION.get()
    if session is not None and not getattr(_SQL_RECORDED, "on", False):
        _emit(session, "sql", statement)


def _install_sqlalchemy() -> None:
    """Statement capture for every SQLAlchemy engine, when SQLAlchemy is importable."""
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except ImportError:
        return

    def before_cursor_execute(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                              executemany: bool) -> None:
        session = _SESSION.get()
        if session is not None:
            _emit(session, "sql", statement)  # not the parameters: bound data is not injection

    event.listen(Engine, "before_cursor_execute", before_cursor_execute)


_HANDLERS: dict[str, Callable[[SensorSession, tuple[Any, ...]], None]] = {
    "open": _on_open,
    "subprocess.Popen": _on_argv,
    "os.posix_spawn": _on_spawn,
    "os.exec": _on_spawn,
    "os.system": _on_system,
    "compile": _on_compile,
    "exec": _on_exec,
    "pickle.find_class": _on_find_class,
    "socket.connect": _on_connect,
    "socket.getaddrinfo": _on_getaddrinfo,
}
