"""In-process transports for httpx that never load more than the size cap into memory.

httpx ships WSGI/ASGI transports, but its ASGI transport buffers the whole body (an endless body
never returns) and its WSGI one is synchronous and ASCII-only on headers. These read at most
`max_bytes + 1` bytes and then stop the app, so the client can record the cut.
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio
import httpx


class _BufferedStream(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


def _environ(request: httpx.Request, body: bytes, script_name: str = "") -> dict[str, Any]:
    url = request.url
    port = url.port or {"http": 80, "https": 443}[url.scheme]
    # PATH_INFO is the percent-decoded path as latin-1 text (PEP 3333).
    path = unquote_to_bytes(url.raw_path.split(b"?", 1)[0].decode("ascii")).decode("latin-1")
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": url.query.decode("latin-1"),
        "SERVER_NAME": url.host,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
    }
    for raw_key, raw_value in request.headers.raw:
        key = raw_key.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        value = raw_value.decode("latin-1")
        environ[key] = f"{environ[key]},{value}" if key in environ and key.startswith("HTTP_") else value
    return environ


class AsyncWSGITransport(httpx.AsyncBaseTransport):
    """Runs a WSGI app in a worker thread; the body is read there, up to `max_bytes + 1`."""

    def __init__(self, app: Callable[..., Iterable[bytes]], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _call(self, request: httpx.Request, body: bytes, abandoned: threading.Event) -> httpx.Response:
        status_holder: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            status_holder["status"], status_holder["headers"] = status, headers
            return lambda _data: None

        result = self.app(_environ(request, body), start_response)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in result:
                if chunk:
                    chunks.append(chunk)
                    size += len(chunk)
                if size > self.max_bytes or abandoned.is_set():
                    break
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status = int(str(status_holder.get("status", "500")).split()[0])
        headers = [(k.encode("latin-1", "replace"), str(v).encode("latin-1", "replace"))
                   for k, v in status_holder.get("headers", [])]
        return httpx.Response(status, headers=headers, stream=_BufferedStream(chunks))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        abandoned = threading.Event()
        try:
            return await anyio.to_thread.run_sync(self._call, request, body, abandoned,
                                                  abandon_on_cancel=True)
        finally:
            # On a timeout the thread is left behind: tell it to stop pulling from an endless/slow body.
            abandoned.set()


class AsyncASGITransport(httpx.AsyncBaseTransport):
    """Calls an ASGI app in the running loop; stops it once `max_bytes + 1` body bytes arrived."""

    def __init__(self, app: Callable[..., Any], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        url = request.url
        raw_path, _, query = url.raw_path.partition(b"?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": url.scheme,
            "path": unquote_to_bytes(raw_path.decode("ascii")).decode("utf-8", "replace"),
            "raw_path": raw_path,
            "query_string": query,
            "server": (url.host, url.port or {"http": 80, "https": 443}[url.scheme]),
            "client": ("127.0.0.1", 123),
            "root_path": "",
            "state": {},
        }
        request_sent = False
        done = asyncio.Event()
        status: int | None = None
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        size = 0

        async def receive() -> dict[str, Any]:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, headers, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk:
                    chunks.append(chunk)
                    size += len(chunk)
                if not message.get("more_body", False) or size > self.max_bytes:
                    done.set()
                if size > self.max_bytes:
                    # An app that only ever awaits send() would never yield to the loop again: park it
                    # here until the transport cancels it.
                    await asyncio.get_running_loop().create_future()

        async def run_app() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                done.set()

        task = asyncio.ensure_future(run_app())
        try:
            await done.wait()
        finally:
            # Also on our own cancellation (request timeout): a hung app must not outlive its request.
            if not task.done():
                task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            task_self = asyncio.current_task()
            if task_self is not None and task_self.cancelling():
                raise  # we were cancelled ourselves, not just the app we stopped
        except Exception:
            if status is None:
                # The app crashed before answering: a server would send a bare 500.
                return httpx.Response(500, content=b"Internal Server Error")
        if status is None:
            return httpx.Response(500, content=b"Internal Server Error")
        return httpx.Response(status, headers=headers, stream=_BufferedStream(chunks))

