"""A loopback TLS listener for a given server-side SSLContext: answers every request with a tiny response.

It serves the service's own SSLContext (`tls: {context: ...}` for in-process targets), the demo's, and
the test servers. It only ever binds 127.0.0.1, handles each connection in its own daemon thread, and
stops when its `with` block ends or after `lifetime` seconds, whichever comes first.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator

# A stuck client must not keep a handler thread alive for long.
HANDSHAKE_TIMEOUT = 5.0
MAX_REQUEST_BYTES = 16384


def _response(headers: dict[str, str]) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 2", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\nok").encode("latin-1")


def _handle(conn: socket.socket, context: ssl.SSLContext, reply: bytes) -> None:
    conn.settimeout(HANDSHAKE_TIMEOUT)
    try:
        with context.wrap_socket(conn, server_side=True) as tls:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < MAX_REQUEST_BYTES:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                request += chunk
            tls.sendall(reply)
    except (OSError, ssl.SSLError, ValueError):
        pass  # probes fail handshakes on purpose; nothing to report from the server side
    finally:
        conn.close()


@contextlib.contextmanager
def serve_tls(context: ssl.SSLContext, *, headers: dict[str, str] | None = None,
              lifetime: float = 300.0) -> Iterator[tuple[str, int]]:
    """Serve `context` on 127.0.0.1 (ephemeral port) for the `with` block; yields (host, port)."""
    reply = _response(headers or {})
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_handle, args=(conn, context, reply), daemon=True,
                             name="bastion-tls-conn").start()

    thread = threading.Thread(target=accept_loop, daemon=True, name="bastion-tls-listener")
    thread.start()
    timer = threading.Timer(lifetime, stop.set)
    timer.daemon = True
    timer.start()
    try:
        yield "127.0.0.1", int(listener.getsockname()[1])
    finally:
        stop.set()
        timer.cancel()
        thread.join(timeout=2)
        listener.close()
