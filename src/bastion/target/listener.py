"""A loopback HTTP listener that records which canary paths a target fetched (out-of-band proof).

Bastion starts it on 127.0.0.1 with an ephemeral port for the length of one check run; a request
from the target whose path carries a probe's canary proves the target fetched a URL Bastion chose
(SSRF, external XML entities). `/redirect/<canary>?to=<url>` answers with a redirect, to see
whether the target follows redirects to internal addresses. Nothing else is served.
"""

from __future__ import annotations

import random
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_HITS = 1_000
LIFETIME_S = 300.0  # the listener closes itself after this, even if its owner never does
_BODY = b"bastion listener\n"
PORT_RANGE = (20_000, 59_999)  # below Linux's default ephemeral range: the OS hands these out less
PORT_TRIES = 20


@dataclass(frozen=True)
class Hit:
    """One request the listener received."""

    method: str
    path: str
    user_agent: str


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        self.server.record(Hit(self.command, self.path, self.headers.get("User-Agent", "")))
        parts = urlsplit(self.path)
        target = parse_qs(parts.query).get("to", [""])[0]
        if parts.path.startswith("/redirect/") and target:
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(_BODY)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(_BODY)

    do_GET = do_POST = do_HEAD = do_PUT = _answer  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        return  # quiet: hits are recorded, not logged


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.hits: list[Hit] = []
        self._lock = threading.Lock()

    def record(self, hit: Hit) -> None:
        with self._lock:
            if len(self.hits) < MAX_HITS:
                self.hits.append(hit)


def _bind(rng: random.Random | None) -> _Server:
    """A server on a port drawn from `rng` (the same port, hence the same findings, on every run with one
    seed), or an ephemeral one when those are taken."""
    for _ in range(PORT_TRIES if rng is not None else 0):
        try:
            return _Server(rng.randint(*PORT_RANGE))  # type: ignore[union-attr]
        except OSError:
            continue
    return _Server()


def free_port(rng: random.Random) -> int:
    """A loopback port nothing listens on, drawn from `rng` (bound, then released)."""
    for _ in range(PORT_TRIES):
        port = rng.randint(*PORT_RANGE)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopbackListener:
    """`with LoopbackListener() as listener:` — `listener.url(canary)`, then `listener.hits_for(canary)`."""

    def __init__(self, lifetime_s: float = LIFETIME_S, rng: random.Random | None = None) -> None:
        self._server = _bind(rng)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="bastion-listener", daemon=True)
        self._timer = threading.Timer(lifetime_s, self.close)
        self._timer.daemon = True
        self._closed = False

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, canary: str, suffix: str = "") -> str:
        return f"{self.base_url}/{canary}{suffix}"

    def redirect_url(self, canary: str, to: str) -> str:
        from urllib.parse import quote

        return f"{self.base_url}/redirect/{canary}?to={quote(to, safe='')}"

    def hits_for(self, canary: str) -> list[Hit]:
        with self._server._lock:
            return [h for h in self._server.hits if canary in h.path]

    def start(self) -> LoopbackListener:
        self._thread.start()
        self._timer.start()
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._timer.cancel()
        if self._thread.is_alive():
            self._server.shutdown()  # blocks until serve_forever returns: only once it runs
        self._server.server_close()

    def __enter__(self) -> LoopbackListener:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def reaches_loopback(target: Any) -> bool:
    """Whether `target` can reach a listener on this machine's loopback: in-process apps share it, a
    URL target only when it runs on loopback itself."""
    if target.in_process:
        return True
    host = urlsplit(target.base_url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")
