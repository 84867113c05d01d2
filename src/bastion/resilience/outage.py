"""Outages of dependencies that are not Bastion doubles: a SQLite file, a TCP store (PostgreSQL, Redis) or
whatever the app's own `fault_hook` switches, broken from inside the scanning process.

An `Outage` carries a `fault_state` like a double, so the resilience checks switch it with the same
`bastion.doubles.faults` calls. Any fault kind means the same thing: while it is on, the app's **new**
connections to the store fail — `sqlite3.connect` to the declared file raises `sqlite3.OperationalError`,
`socket.connect` to the declared host:port raises `ConnectionRefusedError` — through one process-wide audit
hook. The hook acts only in the context that switched the fault on (a ContextVar: the check's task and the
threads the in-process transport runs the app in), so Bastion's own history database and other threads'
work are untouched. Connections the app pooled before the fault are not cut (docs/resilience.md); a
`fault_hook` can do better, since it knows the app.
"""

from __future__ import annotations

import contextvars
import errno
import os
import socket
import sqlite3
import sys
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bastion.doubles.faults import FAULT_MESSAGE, Fault, FaultState

# Outages switched on in the current context (the check's task and what it runs the app in).
_ACTIVE: contextvars.ContextVar[tuple[Outage, ...]] = contextvars.ContextVar("bastion_outages", default=())
_INSTALL_LOCK = threading.Lock()
_installed = False
# Default ports of the TCP stores an outage may name by URL.
DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "rediss": 6379}
# The Redis client Bastion uses to cut a declared cache's open connections gives up after this.
REDIS_KILL_TIMEOUT_S = 2.0


class Outage:
    """A dependency Bastion breaks in-process; `fault_state` switches it like a double's."""

    def __init__(self, name: str, *, sqlite_path: str | None = None, address: tuple[str, int] | None = None,
                 hook: Callable[[Any, bool], Any] | None = None, on_break: Callable[[], None] | None = None) -> None:
        self.name = name
        # The declared file as written and with its symlinks resolved: the app may open either.
        self.sqlite_files = _spellings(sqlite_path) if sqlite_path else frozenset()
        self.address = address
        self._ips = _resolve(address[0]) if address else frozenset()
        self.hook = hook
        self.on_break = on_break
        self.app: Any = None
        self._hook_on = False
        self.fault_state = FaultState(name)
        self.fault_state.subscribe(self._switch)
        install()

    @property
    def in_process_only(self) -> bool:
        """Always: the fault lives in this process, so a service running elsewhere never sees it."""
        return True

    def _switch(self, fault: Fault | None) -> None:
        """Called in the context that switches the fault: the outage applies there (and what it starts)."""
        current = _ACTIVE.get()
        if fault is None:
            if self in current:
                _ACTIVE.set(tuple(o for o in current if o is not self))
            if self.hook is not None and self._hook_on:
                self._hook_on = False
                self.hook(self.app, False)
            return
        if self.hook is not None:
            if not self._hook_on:
                self._hook_on = True
                self.hook(self.app, True)
            return
        if self in current:
            return
        if self.on_break is not None:
            self.on_break()  # before the outage applies here: Bastion's own call must still get through
        _ACTIVE.set((*current, self))

    def refuses_sqlite(self, database: Any) -> bool:
        return bool(self.sqlite_files) and self.hook is None and _database_file(database) in self.sqlite_files

    def refuses_socket(self, address: Any) -> bool:
        if self.address is None or self.hook is not None:
            return False
        if not isinstance(address, tuple) or len(address) < 2:
            return False
        host, port = address[0], address[1]
        return port == self.address[1] and isinstance(host, str) and host.split("%")[0] in self._ips

    def refuse(self, where: str) -> None:
        self.fault_state.record("outage", where)


def active() -> tuple[Outage, ...]:
    """The outages switched on in the current context."""
    return _ACTIVE.get()


def install() -> None:
    """Install the audit hook once per process (idempotent); it does nothing while no outage is on."""
    global _installed
    with _INSTALL_LOCK:
        if not _installed:
            sys.addaudithook(_audit)
            _installed = True


def _audit(event: str, args: tuple[Any, ...]) -> None:
    outages = _ACTIVE.get()
    if not outages:
        return  # the common case: one ContextVar lookup
    if event == "sqlite3.connect" and args:
        for outage in outages:
            if outage.refuses_sqlite(args[0]):
                outage.refuse("sqlite3.connect")
                raise sqlite3.OperationalError(f"unable to open database file ({FAULT_MESSAGE}: outage "
                                               f"{outage.name})")
    elif event == "socket.connect" and len(args) > 1:
        for outage in outages:
            if outage.refuses_socket(args[1]):
                outage.refuse("connect")
                raise ConnectionRefusedError(errno.ECONNREFUSED, f"Connection refused ({FAULT_MESSAGE}: outage "
                                                                 f"{outage.name})")


def _spellings(path: str) -> frozenset[str]:
    return frozenset(os.path.normcase(p) for p in (os.path.abspath(path), os.path.realpath(path)))


def _database_file(database: Any) -> str | None:
    """The file a `sqlite3.connect` argument names (a path or a `file:` URI), normalized; None for memory."""
    try:
        text = os.fsdecode(database)
    except TypeError:
        return None
    if text.startswith("file:"):
        text = text[5:].split("?", 1)[0]
    if not text or text == ":memory:":
        return None
    # abspath, not realpath: no file system calls inside an audit hook (they raise audit events too).
    return os.path.normcase(os.path.abspath(text))


def _resolve(host: str) -> frozenset[str]:
    """The addresses a host name stands for (once, when the outage is declared)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return frozenset({host})
    return frozenset({host, *(str(info[4][0]) for info in infos)})


def address_of(url: str) -> tuple[str, int]:
    """(host, port) of a store URL, with the scheme's default port."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    if not parts.hostname or port is None:
        raise ValueError(f"dependency url {url!r}: needs a host and a port (or a scheme with a known default)")
    return parts.hostname, port


def redis_killer(url: str) -> Callable[[], None]:
    """Close every normal client connection of the Redis at `url` (pooled connections must see the outage)."""

    def kill() -> None:
        import redis

        try:
            with redis.Redis.from_url(url, socket_timeout=REDIS_KILL_TIMEOUT_S,
                                      socket_connect_timeout=REDIS_KILL_TIMEOUT_S) as client:
                client.client_kill_filter(_type="normal", skipme=True)
        except redis.RedisError:
            pass  # the cache is already unreachable: nothing is pooled to cut

    return kill


def outage_for(name: str, dep: Any) -> Outage | None:
    """The outage a dependency declaration allows: its fault_hook, else its sqlite path, else its TCP url."""
    if dep.fault_hook:
        from bastion.target.target import load_app

        hook = load_app(dep.fault_hook)
        return Outage(name, hook=hook)
    if dep.kind == "sqlite" and dep.path:
        return Outage(name, sqlite_path=dep.path)
    if dep.url and dep.kind in ("postgresql", "cache"):
        kill = redis_killer(dep.url) if dep.kind == "cache" and dep.url.startswith("redis") else None
        return Outage(name, address=address_of(dep.url), on_break=kill)
    return None
