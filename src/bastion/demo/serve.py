"""Run the demo on a loopback port: in the foreground (CLI) or in a background thread (URL-mode tests)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

FlawSpec = str | Iterable[str] | None


class _DemoRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its own `Server: Werkzeug/x Python/y` banner (the app decides)."""

    def version_string(self) -> str:
        return "DemoCorp"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # scans send thousands of requests; the console is for humans


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"refusing to serve the deliberately vulnerable demo on {host!r}: use 127.0.0.1")


def build_app(flaws: FlawSpec = "all", framework: str = "flask") -> Any:
    from bastion.demo import create_app, create_fastapi_app

    if framework == "flask":
        return create_app(flaws)
    if framework == "fastapi":
        return create_fastapi_app(flaws)
    raise ValueError(f"unknown demo framework {framework!r}: use 'flask' or 'fastapi'")


def serve(port: int, flaws: FlawSpec = "all", host: str = "127.0.0.1", framework: str = "flask",
          use_tls: bool = False) -> None:
    """Serve the demo on host:port until interrupted (Ctrl-C); https with `use_tls` (demo/tls.py)."""
    _check_loopback(host)
    app = build_app(flaws, framework)
    if use_tls:
        from bastion.demo.tls import demo_certificates

        print(f"https://{host}:{port}  (demo CA: {demo_certificates().ca_file})")
    if framework == "fastapi":
        import uvicorn

        certs = _tls_files() if use_tls else {}
        uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False,
                    ssl_certfile=certs.get("ssl_certfile"), ssl_keyfile=certs.get("ssl_keyfile"))
        return
    server = _werkzeug_server(app, host, port, _tls_context(app) if use_tls else None)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _werkzeug_server(app: Any, host: str, port: int, ssl_context: Any = None) -> BaseWSGIServer:
    return make_server(host, port, app, threaded=True, request_handler=_DemoRequestHandler, ssl_context=ssl_context)


def _tls_context(app: Any) -> Any:
    from bastion.demo.tls import server_context

    return server_context(app)


def _tls_files() -> dict[str, str]:
    """uvicorn takes files, not a context: the FastAPI demo serves the hardened TLS configuration."""
    from bastion.demo.tls import demo_certificates

    certs = demo_certificates()
    return {"ssl_certfile": str(certs.cert_file), "ssl_keyfile": str(certs.key_file)}


def start_background_server(flaws: FlawSpec = "all",
                            framework: str = "flask") -> tuple[str, Callable[[], None]]:
    """Serve the demo on a free 127.0.0.1 port in a daemon thread; returns (base_url, stop)."""
    app = build_app(flaws, framework)
    if framework == "fastapi":
        return _start_uvicorn(app)
    server = _werkzeug_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="bastion-demo-server", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://127.0.0.1:{server.server_port}", stop


def _start_uvicorn(app: Any) -> tuple[str, Callable[[], None]]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", server_header=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="bastion-demo-uvicorn",
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the FastAPI demo server did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()

    return f"http://127.0.0.1:{port}", stop
