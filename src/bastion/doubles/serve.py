"""Serve a WSGI test double on 127.0.0.1 with an ephemeral port, in a thread that stops with the context."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bastion.doubles.faults import FaultState, fronted

# How long shutdown waits for the serving thread; it only has to leave its select() loop.
JOIN_TIMEOUT_S = 5.0


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        """Test doubles write no access log to stderr (it would interleave with pytest's output)."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # A relying party may call the double while the double is answering another request.
    daemon_threads = True


@contextmanager
def serve_wsgi(app: Callable[..., Any], host: str = "127.0.0.1", faults: FaultState | None = None) -> Iterator[str]:
    """Run `app` on `host` with a free port; yields its base URL and stops the server on exit.

    With `faults`, clients reach the app through a FaultProxy applying that state (bastion.doubles.faults).
    """
    server = make_server(host, 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"bastion-double-{server.server_port}", daemon=True)
    thread.start()
    try:
        if faults is None:
            yield f"http://{host}:{server.server_port}"
        else:
            with fronted((host, server.server_port), "http", faults) as proxy:
                yield f"http://{host}:{proxy.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(JOIN_TIMEOUT_S)
