"""Fault injection for test doubles: latency, error replies, connection resets, DNS failure and full outage.

    with faults.outage(idp):                 # port closed: connections are refused
        assert client.get(idp.issuer + "/jwks").status_code ...
    faults.latency(smtp, 0.5)                # until the test ends (fixture) or faults.clear(smtp)

Every double carries a `FaultState` (`double.fault_state`). A double served on 127.0.0.1 sits behind a
`FaultProxy`: a TCP proxy that reads the state on every connection and every chunk, so a fault switched on
inside a test hits new and pooled connections alike, and is gone when switched off. In-process doubles
(the in-memory queue, the vault's in-process client) call `fault_state.check(operation)` instead, which
raises the exception a network client would have seen. Each injection is logged in `fault_state.injected`,
so a test can observe that a fault is active without measuring time.
"""

from __future__ import annotations

import errno
import json
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import httpx

FaultKind = Literal["latency", "error", "reset", "dns", "outage"]
Protocol = Literal["http", "smtp", "resp", "tcp"]

# How often an idle proxied connection looks at the fault state (a pooled connection is closed within this).
POLL_S = 0.05
# Bytes buffered per chunk; doubles speak small request/response protocols.
CHUNK = 64 * 1024
# The proxy's listener rebinds the same port after an outage; it gives up after this many tries.
REBIND_TRIES = 20
LISTEN_BACKLOG = 64
FAULT_MESSAGE = "bastion fault"


@dataclass(frozen=True)
class Fault:
    """One fault: its kind and parameters (`delay` for latency, `status` for HTTP error replies)."""

    kind: FaultKind
    delay: float = 0.0
    status: int = 503
    message: str = "injected error"


@dataclass(frozen=True)
class Injection:
    """A fault that actually hit a client: what kind and where (`connect`, `reply`, or an operation name)."""

    kind: FaultKind
    where: str


class InjectedError(RuntimeError):
    """An error reply from a double under an `errors` fault (in-process doubles raise it)."""


@dataclass
class FaultState:
    """The fault currently active on one double, plus the log of injections that hit its clients."""

    name: str = "double"
    injected: list[Injection] = field(default_factory=list)
    _fault: Fault | None = None
    _released: threading.Event = field(default_factory=threading.Event)
    _listeners: list[Callable[[Fault | None], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def active(self) -> Fault | None:
        return self._fault

    def set(self, fault: Fault | None) -> Fault | None:
        """Switch to `fault` (None: healthy); returns the previous fault. Wakes anything held by latency."""
        with self._lock:
            previous, self._fault = self._fault, fault
            released, self._released = self._released, threading.Event()
            listeners = list(self._listeners)
        released.set()
        for listener in listeners:
            listener(fault)
        return previous

    def subscribe(self, listener: Callable[[Fault | None], None]) -> None:
        """Call `listener(fault)` on every switch (a proxy closes its port on an outage)."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Fault | None], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def record(self, kind: FaultKind, where: str) -> None:
        with self._lock:
            self.injected.append(Injection(kind, where))

    def count(self, kind: FaultKind | None = None) -> int:
        """How many injections of `kind` (any kind when None) hit a client so far."""
        return sum(1 for i in self.injected if kind is None or i.kind == kind)

    def hold(self, fault: Fault) -> None:
        """Wait `fault.delay` seconds, or less if the fault is switched off meanwhile (it must not outlive it)."""
        with self._lock:
            if self._fault is not fault:
                return
            released = self._released
        released.wait(fault.delay)

    def check(self, operation: str) -> None:
        """For in-process doubles: raise what a network client would see under the active fault."""
        fault = self._fault
        if fault is None:
            return
        self.record(fault.kind, operation)
        where = f"{self.name} {operation} ({FAULT_MESSAGE}: {fault.kind})"
        if fault.kind == "latency":
            self.hold(fault)
        elif fault.kind == "outage":
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"Connection refused: {where}")
        elif fault.kind == "reset":
            raise ConnectionResetError(errno.ECONNRESET, f"Connection reset by peer: {where}")
        elif fault.kind == "dns":
            raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known: {where}")
        else:
            raise InjectedError(f"{fault.status} {fault.message}: {where}")


def state_of(double: Any) -> FaultState:
    """The FaultState of a double (anything with `fault_state`), or the state itself."""
    if isinstance(double, FaultState):
        return double
    state = getattr(double, "fault_state", None)
    if not isinstance(state, FaultState):
        raise TypeError(f"{type(double).__name__} is not a Bastion test double (it has no fault_state)")
    return state


class ActiveFault:
    """A switched-on fault; as a context manager it restores the previous state on exit."""

    def __init__(self, state: FaultState, fault: Fault) -> None:
        self.state, self.fault = state, fault
        self.previous = state.set(fault)

    def restore(self) -> None:
        """Put back what was active before this fault (healthy, or an enclosing fault)."""
        if self.state.active is self.fault:
            self.state.set(self.previous)

    def __enter__(self) -> ActiveFault:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.restore()


class FaultInjector:
    """Switches faults on doubles; remembers them so `clear_all()` (the fixture's teardown) heals everything."""

    def __init__(self) -> None:
        self._touched: list[FaultState] = []

    def _switch(self, double: Any, fault: Fault) -> ActiveFault:
        state = state_of(double)
        if state not in self._touched:
            self._touched.append(state)
        return ActiveFault(state, fault)

    def latency(self, double: Any, seconds: float) -> ActiveFault:
        """Every reply of the double is held back `seconds` (released early when the fault ends)."""
        if seconds < 0:
            raise ValueError("latency must be >= 0 seconds")
        return self._switch(double, Fault("latency", delay=seconds))

    def errors(self, double: Any, status: int = 503, message: str = "injected error") -> ActiveFault:
        """The double answers with an error: HTTP `status`, SMTP 421, Redis `-ERR`, in-process InjectedError."""
        return self._switch(double, Fault("error", status=status, message=message))

    def reset(self, double: Any) -> ActiveFault:
        """Connections to the double are reset (TCP RST) on their next use."""
        return self._switch(double, Fault("reset"))

    def dns_failure(self, double: Any) -> ActiveFault:
        """The double's host name no longer resolves for its clients; open connections are dropped."""
        return self._switch(double, Fault("dns"))

    def outage(self, double: Any) -> ActiveFault:
        """The double is down: its port is closed (connection refused) and open connections are cut."""
        return self._switch(double, Fault("outage"))

    def clear(self, double: Any) -> None:
        """Heal one double whatever is active on it."""
        state_of(double).set(None)

    def clear_all(self) -> None:
        """Heal every double this injector touched."""
        for state in self._touched:
            state.set(None)
        self._touched.clear()


_DEFAULT = FaultInjector()
latency = _DEFAULT.latency
errors = _DEFAULT.errors
reset = _DEFAULT.reset
dns_failure = _DEFAULT.dns_failure
outage = _DEFAULT.outage
clear = _DEFAULT.clear


# --- DNS failure: socket.getaddrinfo refuses the double's (host, port) while the fault is active -------------

_dns_lock = threading.Lock()
# (name, port) -> the states blocking it (each records the lookups it failed).
_dns_blocked: dict[tuple[str, int], list[FaultState]] = {}
_real_getaddrinfo = socket.getaddrinfo


def _host_text(host: Any) -> str:
    return host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)


def _getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    name = _host_text(host).lower()
    try:
        states = _dns_blocked.get((name, int(port)))
    except (TypeError, ValueError):
        states = None
    if states:
        states[-1].record("dns", "resolve")
        raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known ({FAULT_MESSAGE}: dns {name})")
    return _real_getaddrinfo(host, port, *args, **kwargs)


def block_resolution(names: tuple[str, ...], port: int, state: FaultState) -> None:
    """Make `getaddrinfo(name, port)` fail for each name (the port tells one double on loopback from another)."""
    with _dns_lock:
        for name in names:
            _dns_blocked.setdefault((name.lower(), port), []).append(state)
        socket.getaddrinfo = _getaddrinfo  # type: ignore[assignment]


def unblock_resolution(names: tuple[str, ...], port: int, state: FaultState) -> None:
    """Undo `block_resolution`; the real getaddrinfo is back once nothing is blocked."""
    with _dns_lock:
        for name in names:
            key = (name.lower(), port)
            states = _dns_blocked.get(key, [])
            if state in states:
                states.remove(state)
            if not states:
                _dns_blocked.pop(key, None)
        # Only undo our own patch: something installed after us keeps its wrapper (ours passes through).
        if not _dns_blocked and socket.getaddrinfo is _getaddrinfo:
            socket.getaddrinfo = _real_getaddrinfo  # type: ignore[assignment]


# --- the proxy ------------------------------------------------------------------------------------------------


def _rst(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0), which the peer sees as 'connection reset by peer'."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _quiet_shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def resp_commands(buffer: bytes) -> tuple[int, bytes]:
    """Count the complete RESP commands (arrays of bulk strings, or inline) in `buffer`; returns (n, rest)."""
    count = 0
    while buffer:
        end = _resp_command_end(buffer)
        if end is None:
            break
        count, buffer = count + 1, buffer[end:]
    return count, buffer


def _resp_command_end(buffer: bytes) -> int | None:
    line_end = buffer.find(b"\r\n")
    if line_end < 0:
        return None
    if not buffer.startswith(b"*"):
        return line_end + 2  # an inline command: one line
    try:
        items = int(buffer[1:line_end])
    except ValueError:
        return line_end + 2
    pos = line_end + 2
    for _ in range(max(items, 0)):
        head_end = buffer.find(b"\r\n", pos)
        if head_end < 0:
            return None
        try:
            size = int(buffer[pos + 1:head_end])
        except ValueError:
            return head_end + 2
        pos = head_end + 2 + size + 2
        if pos > len(buffer):
            return None
    return pos


def _http_error(fault: Fault) -> bytes:
    body = json.dumps({"errors": [f"{FAULT_MESSAGE}: {fault.message}"]}).encode()
    return (f"HTTP/1.1 {fault.status} Injected Fault\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class _Connection:
    """One client connection relayed to the upstream server, looking at the fault state on every chunk."""

    def __init__(self, proxy: FaultProxy, client: socket.socket) -> None:
        self.proxy, self.client = proxy, client
        self.upstream: socket.socket | None = None
        self._resp_pending = b""

    @property
    def state(self) -> FaultState:
        return self.proxy.state

    def run(self) -> None:
        try:
            if self._on_connect():
                self._relay()
        except OSError:
            pass  # the client or the upstream went away: nothing left to relay
        finally:
            for sock in (self.client, self.upstream):
                if sock is not None:
                    sock.close()
            self.proxy._forget(self)

    def _on_connect(self) -> bool:
        fault = self.state.active
        if fault is not None and fault.kind in ("reset", "outage", "dns"):
            self.state.record(fault.kind, "connect")
            _rst(self.client)
            return False
        if fault is not None and fault.kind == "error" and self.proxy.protocol == "smtp":
            self.state.record("error", "connect")
            self.client.sendall(b"421 4.3.2 " + FAULT_MESSAGE.encode() + b": service not available\r\n")
            return False
        self.upstream = socket.create_connection(self.proxy.upstream, timeout=5.0)
        self.upstream.settimeout(None)
        return True

    def _relay(self) -> None:
        assert self.upstream is not None
        while True:
            readable, _, _ = select.select([self.client, self.upstream], [], [], POLL_S)
            fault = self.state.active
            if fault is not None and fault.kind in ("outage", "dns"):
                # Recorded by the proxy when it cut the connection (synchronously with the switch).
                if fault.kind == "outage":
                    _rst(self.client)
                else:
                    _quiet_shutdown(self.client)
                return
            for sock in readable:
                if not self._pump(sock, fault):
                    return

    def _pump(self, sock: socket.socket, fault: Fault | None) -> bool:
        """Move one chunk; False when the connection is finished."""
        assert self.upstream is not None
        data = sock.recv(CHUNK)
        if not data:
            return False
        if fault is not None and fault.kind == "reset":
            self.state.record("reset", "reply" if sock is self.upstream else "request")
            _rst(self.client)
            return False
        if sock is self.upstream:
            if fault is not None and fault.kind == "latency":
                self.state.record("latency", "reply")
                self.state.hold(fault)
            self.client.sendall(data)
            return True
        if fault is not None and fault.kind == "error":
            return self._error_reply(data, fault)
        self.upstream.sendall(data)
        return True

    def _error_reply(self, request: bytes, fault: Fault) -> bool:
        """Answer a client's request with the protocol's error instead of relaying it."""
        self.state.record("error", "request")
        if self.proxy.protocol == "http":
            self.client.sendall(_http_error(fault))
            return False
        if self.proxy.protocol == "smtp":
            self.client.sendall(b"421 4.3.2 " + FAULT_MESSAGE.encode() + b": " + fault.message.encode() + b"\r\n")
            return False
        if self.proxy.protocol == "resp":
            count, self._resp_pending = resp_commands(self._resp_pending + request)
            self.client.sendall((f"-ERR {FAULT_MESSAGE}: {fault.message}\r\n" * count).encode())
            return True
        _rst(self.client)  # plain TCP has no error reply: cut it
        return False


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of a double's real server, applying its FaultState."""

    def __init__(self, upstream: tuple[str, int], protocol: Protocol = "tcp", state: FaultState | None = None,
                 host: str = "127.0.0.1") -> None:
        self.upstream, self.protocol, self.host = upstream, protocol, host
        self.state = state if state is not None else FaultState(protocol)
        self.port = 0
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: set[_Connection] = set()
        self._lock = threading.Lock()
        self._dns_names: tuple[str, ...] = ()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def fault_state(self) -> FaultState:
        """The proxy is itself a target for faults (e.g. one put in front of a server the test started)."""
        return self.state

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._stopping.clear()
        self._listen()
        self.state.subscribe(self._on_fault)
        self._on_fault(self.state.active)  # a fault switched on before serving applies at once
        return self

    def stop(self) -> None:
        self.state.unsubscribe(self._on_fault)
        self._stopping.set()
        self._close_listener()
        self._set_dns(False)
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            _quiet_shutdown(conn.client)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(LISTEN_BACKLOG)
        listener.settimeout(POLL_S)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept_loop, args=(listener,),
                                           name=f"bastion-fault-proxy-{self.port}", daemon=True)
        self._accepting.start()

    def _close_listener(self) -> None:
        listener, thread, self._listener = self._listener, self._accepting, None
        if listener is None:
            return
        listener.close()  # connection refused from now on
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set() and self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            conn = _Connection(self, client)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=conn.run, name=f"bastion-fault-conn-{self.port}", daemon=True).start()

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    # --- reacting to switches -----------------------------------------------------------------------------

    def _on_fault(self, fault: Fault | None) -> None:
        kind = fault.kind if fault is not None else None
        if kind == "outage" and self._listener is not None:
            self._close_listener()
        elif kind != "outage" and self._listener is None and not self._stopping.is_set():
            self._rebind()
        self._set_dns(kind == "dns")
        if fault is not None and fault.kind in ("outage", "dns"):
            # Pooled connections must see the fault at once, not on their next chunk.
            with self._lock:
                conns = list(self._conns)
            for conn in conns:
                self.state.record(fault.kind, "open connection")
                _quiet_shutdown(conn.client)

    def _rebind(self) -> None:
        for _ in range(REBIND_TRIES):
            try:
                self._listen()
                return
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                threading.Event().wait(POLL_S)  # the old listener's close is still settling
        raise OSError(errno.EADDRINUSE, f"{self.state.name}: port {self.port} was taken while the double was "
                                        "down; it cannot come back on the same address")

    def _set_dns(self, failing: bool) -> None:
        if failing and not self._dns_names:
            self._dns_names = (self.host, "localhost")
            block_resolution(self._dns_names, self.port, self.state)
        elif not failing and self._dns_names:
            unblock_resolution(self._dns_names, self.port, self.state)
            self._dns_names = ()


@contextmanager
def fronted(upstream: tuple[str, int], protocol: Protocol, state: FaultState) -> Iterator[FaultProxy]:
    """Run a FaultProxy for `upstream` while the block runs."""
    proxy = FaultProxy(upstream, protocol, state)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


class FaultTransport(httpx.BaseTransport):
    """An httpx transport applying a FaultState before an in-process (WSGI) double sees the request."""

    def __init__(self, inner: httpx.BaseTransport, state: FaultState) -> None:
        self.inner, self.state = inner, state

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = self.state.active
        try:
            self.state.check(f"{request.method} {request.url.path}")
        except (ConnectionRefusedError, socket.gaierror) as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except ConnectionResetError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        except InjectedError:
            assert fault is not None
            return httpx.Response(fault.status, json={"errors": [f"{FAULT_MESSAGE}: {fault.message}"]},
                                  request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
