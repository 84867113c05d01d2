"""Hostile responses from real local servers: bombs, endless bodies, lies, drips, dead ports."""

from __future__ import annotations

import asyncio
import socket
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from bastion.target import Limits, ProbeClient, Target

CAP = 256 * 1024
GIB = 1 << 30
Server = Any  # conftest.Server: .url, .hits


def gzip_bomb(total: int = GIB, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Yield a gzip stream inflating to `total` zero bytes, compressed lazily (never 1 GB in memory)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(chunk)
    for _ in range(total // chunk):
        out = z.compress(zeros)
        if out:
            yield out
    yield z.flush()


def fetch(url: str, path: str = "/", limits: Limits | None = None, **kwargs: Any):
    """One request through a fresh ProbeClient (its own event loop)."""

    async def go():
        limits_ = limits or Limits(max_response_bytes=CAP)
        async with ProbeClient(Target.from_url(url), limits=limits_) as client:
            return await client.request("GET", path, **kwargs)

    return asyncio.run(go())


def bomb_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Encoding", "gzip")])
    return gzip_bomb()


def test_gzip_bomb_over_http_is_cut_at_the_cap_with_memory_bounded(
        wsgi_server: Callable[..., Server]) -> None:
    server = wsgi_server(bomb_app)
    tracemalloc.start()
    try:
        ex = fetch(server.url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ex.status == 200
    assert "truncated" in ex.events
    assert len(ex.body) == CAP
    assert ex.body == bytes(CAP)
    assert peak < 64 * 1024 * 1024  # the bomb inflates to 1 GiB


def test_gzip_bomb_from_in_process_wsgi_app_is_cut() -> None:
    async def go():
        async with ProbeClient(Target.from_app(bomb_app), limits=Limits(max_response_bytes=CAP)) as client:
            return await client.request("GET", "/")

    tracemalloc.start()
    try:
        ex = asyncio.run(go())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "truncated" in ex.events
    assert len(ex.body) == CAP
    assert peak < 64 * 1024 * 1024


def test_gzip_bomb_stream_really_inflates_to_a_gibibyte() -> None:
    # Guard for the fixture itself: a weaker "bomb" would make the tests above meaningless.
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total = 0
    compressed = 0
    for part in gzip_bomb(total=64 << 20):
        compressed += len(part)
        total += len(d.decompress(part))
    assert total == 64 << 20
    assert compressed < 128 * 1024
    assert GIB // (64 << 20) == 16


def _endless_chunked(sock: socket.socket, stop: threading.Event) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"A" * 65536
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    while not stop.is_set():
        sock.sendall(frame)


def test_endless_body_is_cut(raw_server: Callable[..., Server]) -> None:
    server = raw_server(_endless_chunked)
    ex = fetch(server.url)
    assert ex.status == 200
    assert "truncated" in ex.events
    assert len(ex.body) == CAP


def _lying_content_length(sock: socket.socket, stop: threading.Event) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                 b"Content-Length: %d\r\n\r\n" % GIB)
    chunk = b"\0" * 65536
    for _ in range(GIB // len(chunk)):
        if stop.is_set():
            return
        sock.sendall(chunk)


def test_gigabyte_content_length_body_is_cut(raw_server: Callable[..., Server]) -> None:
    server = raw_server(_lying_content_length)
    ex = fetch(server.url)
    assert ex.status == 200
    assert ex.header("content-length") == str(GIB)
    assert "truncated" in ex.events
    assert len(ex.body) == CAP


def _slow_drip(sock: socket.socket, stop: threading.Event) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n")
    while not stop.wait(0.2):
        sock.sendall(b"x")


def test_slow_drip_ends_at_the_request_timeout(raw_server: Callable[..., Server]) -> None:
    server = raw_server(_slow_drip)
    ex = fetch(server.url, limits=Limits(request_timeout=0.5, max_response_bytes=CAP))
    assert ex.events == ["timeout"]
    assert not ex.ok
    assert "0.5" in (ex.error or "")


def _silent(sock: socket.socket, stop: threading.Event) -> None:
    stop.wait(30)


def test_server_that_never_answers_ends_as_timeout_not_connect_error(
        raw_server: Callable[..., Server]) -> None:
    # httpx's own read timeout and the request deadline race here; both must read as "timeout".
    server = raw_server(_silent)
    ex = fetch(server.url, limits=Limits(request_timeout=0.3, max_response_bytes=CAP))
    assert ex.events == ["timeout"]


def _invalid_utf8(sock: socket.socket, stop: threading.Event) -> None:
    body = b"caf\xe9 \xff\xfe \xc3\x28 ok"
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


def test_invalid_utf8_body_decodes_with_replacement_characters(raw_server: Callable[..., Server]) -> None:
    server = raw_server(_invalid_utf8)
    ex = fetch(server.url)
    assert ex.ok and ex.events == []
    assert "\ufffd" in ex.text
    assert ex.text.startswith("caf") and ex.text.endswith(" ok")
    assert ex.is_html


def _bogus_charset(sock: socket.socket, stop: threading.Event) -> None:
    body = b"hello \xff"
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=no-such-codec\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


def test_unknown_charset_falls_back_to_utf8(raw_server: Callable[..., Server]) -> None:
    ex = fetch(raw_server(_bogus_charset).url)
    assert ex.text == "hello \ufffd"


def _garbage_status_line(sock: socket.socket, stop: threading.Event) -> None:
    sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")


def test_garbage_response_is_an_event_not_an_exception(raw_server: Callable[..., Server]) -> None:
    ex = fetch(raw_server(_garbage_status_line).url)
    assert not ex.ok
    assert ex.events and ex.events[0] in ("connect-error", "http-error")


def test_unreachable_port_is_a_connect_error_event(closed_port: int) -> None:
    ex = fetch(f"http://127.0.0.1:{closed_port}")
    assert ex.events == ["connect-error"]
    assert ex.status == 0 and not ex.ok
    assert ex.error
