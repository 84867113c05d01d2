"""Real local servers for the target tests: a werkzeug WSGI server and a raw socket server for responses
no well-behaved framework would send (endless bodies, lying Content-Length, slow drips)."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import make_server


@dataclass
class LocalServer:
    """A server running in a daemon thread; `hits` lists the paths it was asked for."""

    host: str
    port: int
    hits: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture
def wsgi_server() -> Iterator[Callable[..., LocalServer]]:
    """wsgi_server(app, host="127.0.0.1") -> LocalServer serving `app` (requests recorded in `.hits`)."""
    running: list[Any] = []

    def start(app: Callable[..., Any], host: str = "127.0.0.1") -> LocalServer:
        box: list[LocalServer] = []

        def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            box[0].hits.append(environ.get("PATH_INFO", ""))
            return app(environ, start_response)

        server = make_server(host, 0, recording, threaded=True)
        box.append(LocalServer(host, server.server_port))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append(server)
        return box[0]

    yield start
    for server in running:
        server.shutdown()
        server.server_close()


Handler = Callable[[socket.socket, threading.Event], None]


@pytest.fixture
def raw_server() -> Iterator[Callable[[Handler], LocalServer]]:
    """raw_server(handler) -> LocalServer whose connections are handled by `handler(sock, stop)`."""
    stop = threading.Event()
    running: list[socketserver.ThreadingTCPServer] = []

    def start(handler: Handler) -> LocalServer:
        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(5)
                _read_head(self.request)
                try:
                    handler(self.request, stop)
                except OSError:
                    pass  # the client hung up: that is the point of these tests

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running.append(server)
        return LocalServer("127.0.0.1", server.server_address[1])

    yield start
    stop.set()
    for server in running:
        server.shutdown()
        server.server_close()


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
