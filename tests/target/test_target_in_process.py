"""In-process WSGI/ASGI transports: crashes, endless bodies, lifespan, concurrency, path/header encoding."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from bastion.errors import TargetError
from bastion.target import Limits, ProbeClient, Target

CAP = 64 * 1024


def run(target: Target, coro_fn: Callable[[ProbeClient], Any], limits: Limits | None = None) -> Any:
    async def go():
        limits_ = limits or Limits(max_response_bytes=CAP)
        async with target.running(), ProbeClient(target, limits=limits_) as c:
            return await coro_fn(c)

    return asyncio.run(go())


def get(target: Target, path: str = "/", limits: Limits | None = None, **kwargs: Any):
    return run(target, lambda c: c.request("GET", path, **kwargs), limits)


# --- WSGI -------------------------------------------------------------------------------------------

def crashing_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    raise RuntimeError("database on fire")


def test_wsgi_app_exception_is_a_500_with_an_event() -> None:
    ex = get(Target.from_app(crashing_wsgi))
    assert ex.status == 500
    assert "app-exception" in ex.events
    assert "database on fire" in (ex.error or "")


def test_wsgi_app_crashing_mid_body_is_a_500_with_an_event() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"partial"
        raise ValueError("boom mid-stream")

    ex = get(Target.from_app(app))
    assert "app-exception" in ex.events
    assert ex.status == 500


def test_wsgi_endless_body_is_cut() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        while True:
            yield b"z" * 4096

    ex = get(Target.from_app(app))
    assert "truncated" in ex.events
    assert len(ex.body) == CAP


def echo_environ(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    picked = "\n".join(f"{k}={environ.get(k, '')}" for k in ("PATH_INFO", "QUERY_STRING", "HTTP_X_NAME"))
    return [picked.encode("latin-1")]


def test_wsgi_path_is_percent_decoded_into_path_info() -> None:
    ex = get(Target.from_app(echo_environ), "/files/a%2Fb/caf%C3%A9?q=%2F")
    lines = dict(line.split("=", 1) for line in ex.body.decode("latin-1").splitlines())
    assert lines["PATH_INFO"] == "/files/a/b/" + "café".encode().decode("latin-1")
    assert lines["QUERY_STRING"] == "q=%2F"


def test_wsgi_non_ascii_header_value_is_passed_as_latin1() -> None:
    ex = get(Target.from_app(echo_environ), headers={"X-Name": "café ☃"})
    lines = dict(line.split("=", 1) for line in ex.body.decode("latin-1").splitlines())
    # PEP 3333: header bytes arrive as latin-1 text; re-encoding gives the UTF-8 bytes that were sent.
    assert lines["HTTP_X_NAME"].encode("latin-1") == "café ☃".encode()


def test_wsgi_response_headers_survive_non_ascii() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("X-Greeting", "grüß")])
        return [b""]

    assert get(Target.from_app(app)).header("x-greeting") == "grüß"


# --- ASGI -------------------------------------------------------------------------------------------

async def endless_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    while True:  # never awaits anything but send(): a transport that never suspends it hangs forever
        await send({"type": "http.response.body", "body": b"y" * 1024, "more_body": True})


def test_asgi_endless_body_is_cut() -> None:
    ex = get(Target.from_app(endless_asgi))
    assert ex.status == 200
    assert "truncated" in ex.events
    assert len(ex.body) == CAP


def test_asgi_endless_body_with_small_chunks_is_cut() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": b"y", "more_body": True})
            await asyncio.sleep(0)

    ex = get(Target.from_app(app), limits=Limits(max_response_bytes=1000))
    assert "truncated" in ex.events and len(ex.body) == 1000


def test_asgi_app_that_hangs_ends_in_a_timeout_and_is_cancelled() -> None:
    state = {"cancelled": False}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    async def scenario(client: ProbeClient) -> tuple[Any, bool]:
        ex = await client.request("GET", "/")
        for _ in range(5):
            await asyncio.sleep(0)
        return ex, state["cancelled"]  # read inside the loop: asyncio.run() would cancel it anyway

    ex, cancelled = run(Target.from_app(app), scenario, Limits(request_timeout=0.2))
    assert ex.events == ["timeout"]
    assert cancelled


def test_asgi_app_exception_before_response_is_a_500() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("kaput")

    ex = get(Target.from_app(app))
    assert ex.status == 500


def test_asgi_path_is_percent_decoded_and_raw_path_kept() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(path=scope["path"], raw_path=scope["raw_path"], headers=dict(scope["headers"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    ex = get(Target.from_app(app), "/files/a%2Fb/caf%C3%A9", headers={"X-Name": "café"})
    assert ex.status == 204
    assert seen["path"] == "/files/a/b/café"
    assert seen["raw_path"] == b"/files/a%2Fb/caf%C3%A9"
    assert seen["headers"][b"x-name"] == "café".encode()


def test_asgi_lifespan_startup_and_shutdown_run_around_the_scan() -> None:
    log: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    log.append("startup")
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    log.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        log.append("request")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    ex = get(Target.from_app(app))
    assert ex.text == "ok"
    assert log == ["startup", "request", "shutdown"]


def test_fastapi_lifespan_runs() -> None:
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    log: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        log.append("startup")
        yield
        log.append("shutdown")

    api = FastAPI(lifespan=lifespan)

    @api.get("/ping")
    def ping() -> dict[str, str]:
        log.append("request")
        return {"pong": "yes"}

    assert get(Target.from_app(api), "/ping").status == 200
    assert log == ["startup", "request", "shutdown"]


def test_asgi_app_without_lifespan_support_still_runs() -> None:
    async def returns_on_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # silently ignores lifespan: must not hang startup
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def raises_on_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await returns_on_lifespan(scope, receive, send)

    for app in (returns_on_lifespan, raises_on_lifespan):
        assert get(Target.from_app(app)).text == "ok"


def test_asgi_lifespan_startup_failure_is_a_target_error() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with pytest.raises(TargetError, match="no database"):
        get(Target.from_app(app))


def test_asgi_lifespan_that_never_answers_is_a_target_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bastion.target.target.LIFESPAN_TIMEOUT", 0.05)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    with pytest.raises(TargetError, match="lifespan startup"):
        get(Target.from_app(app))


def test_concurrency_limit_is_honoured() -> None:
    limit, total = 3, 10
    state = {"inflight": 0, "peak": 0}
    full = asyncio.Event()
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        state["inflight"] += 1
        state["peak"] = max(state["peak"], state["inflight"])
        if state["inflight"] == limit:
            full.set()
        await release.wait()
        state["inflight"] -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def scenario(client: ProbeClient) -> list[Any]:
        tasks = [asyncio.ensure_future(client.request("GET", f"/{i}")) for i in range(total)]
        await full.wait()
        for _ in range(50):  # give any request that could sneak past the limit every chance to start
            await asyncio.sleep(0)
        assert state["inflight"] == limit
        release.set()
        return await asyncio.gather(*tasks)

    results = run(Target.from_app(app), scenario, Limits(concurrency=limit))
    assert [r.status for r in results] == [200] * total
    assert state["peak"] == limit


def test_httpx_timeout_reads_as_timeout_event() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    target = Target.from_url("http://127.0.0.1:9")
    target.transport = lambda max_bytes: httpx.MockTransport(handler)  # type: ignore[method-assign]
    ex = get(target)
    assert ex.events == ["timeout"]


def test_unsendable_request_is_an_event() -> None:
    ex = get(Target.from_app(echo_environ), "/", headers={"X-Bad": "line\r\nInjected: 1"})
    assert ex.events == ["invalid-request"] or "Injected" not in ex.text


def test_wsgi_slow_body_abandoned_at_timeout_stops_the_worker_thread() -> None:
    import threading
    import time

    closed = threading.Event()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            while True:
                time.sleep(0.02)
                yield b"."
        finally:
            closed.set()

    ex = get(Target.from_app(app), limits=Limits(request_timeout=0.2))
    assert ex.events == ["timeout"]
    # Not a timing assertion: a generous bound on "the thread noticed", instead of looping forever.
    assert closed.wait(10)
