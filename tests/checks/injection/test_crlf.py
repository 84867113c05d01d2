"""injection.crlf against hand-rolled WSGI header code, in-process and over a real werkzeug server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import pytest
from flask import Flask, Response, redirect, request
from werkzeug.serving import make_server

from bastion.checks.injection.crlf import injected_header
from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.exchange import Exchange, SentRequest
from bastion.target.target import Target

CRLF = "injection.crlf"
StartResponse = Callable[..., Any]


def splitting_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Hand-rolled WSGI: values copied into headers as they are (no framework validation)."""
    path = environ["PATH_INFO"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    body = b"<html><body>ok</body></html>"
    headers = [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]
    if path == "/lang":
        start_response("302 Found", [("Location", "/?lang=" + query.get("l", ["en"])[0]), *headers])
    elif path.startswith("/p/"):
        start_response("200 OK", [("X-Page", path[3:]), *headers])
    elif path == "/track" and environ["REQUEST_METHOD"] == "POST":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(size).decode("latin-1"))
        start_response("200 OK", [("Set-Cookie", "last=" + form.get("page", [""])[0]), *headers])
    elif path == "/trace":
        # Percent-decodes a request header into a response header.
        start_response("200 OK", [("X-Trace", unquote(environ.get("HTTP_X_TRACE_ID", ""))), *headers])
    elif path == "/safe-strip":
        value = "".join(ch for ch in query.get("l", ["en"])[0] if " " <= ch <= "~")  # printable ASCII only
        start_response("302 Found", [("Location", "/?lang=" + value), *headers])
    elif path == "/safe-quote":
        start_response("302 Found", [("Location", "/?lang=" + quote(query.get("l", ["en"])[0])), *headers])
    elif path == "/echo":
        # Reflected in the body only: not CRLF injection.
        text = query.get("l", [""])[0].encode("utf-8")
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
        return [text]
    else:
        start_response("404 Not Found", headers)
    return [body]


def vulnerable_surface() -> Surface:
    return Surface([
        EntryPoint("GET", "/lang", [Input("query", "l")]),
        EntryPoint("GET", "/p/{page}", [Input("path", "page")]),
        EntryPoint("POST", "/track", [Input("form", "page")]),
        EntryPoint("GET", "/trace", [Input("header", "X-Trace-Id")]),
    ])


def safe_surface() -> Surface:
    paths = ("/safe-strip", "/safe-quote", "/echo")
    return Surface([EntryPoint("GET", p, [Input("query", "l")]) for p in paths])


def _scan(target: Target, surface: Surface) -> ScanResult:
    result = run_scan(target, surface, ScanOptions(checks=[CRLF]))
    assert all(not c.errors for c in result.checks), [c.errors for c in result.checks]
    return result


def _inputs(result: ScanResult) -> set[tuple[str, str, str]]:
    return {(f.location.path, f.location.input.in_, f.location.input.name)  # type: ignore[union-attr, misc]
            for f in result.findings}


def test_crlf_fires_in_process() -> None:
    result = _scan(Target.from_app(splitting_app, spec="tests:app"), vulnerable_surface())
    assert _inputs(result) == {("/lang", "query", "l"), ("/p/{page}", "path", "page"),
                               ("/track", "form", "page"), ("/trace", "header", "X-Trace-Id")}
    for f in result.findings:
        assert f.check_id == CRLF and f.confidence == "confirmed" and f.severity == "medium" and f.cwe == 113
        assert "X-Bst-" in f.evidence[0].summary
    lang = next(f for f in result.findings if f.location.path == "/lang")
    assert "(Location)" in lang.title and "%0D%0AX-Bst-" in lang.reproduction.curl


def test_crlf_silent_on_safe_code_and_body_reflection() -> None:
    assert _scan(Target.from_app(splitting_app, spec="tests:app"), safe_surface()).findings == []


def test_crlf_silent_on_framework_validated_headers() -> None:
    app = Flask("validated")

    @app.get("/lang")
    def lang() -> Response:
        # werkzeug refuses CR/LF in header values: the request fails instead of splitting.
        return redirect("/?lang=" + request.args.get("l", "en"))

    surface = Surface([EntryPoint("GET", "/lang", [Input("query", "l")])])
    result = _scan(Target.from_app(app, spec="tests:app"), surface)
    assert result.findings == []


def test_detection_needs_the_injected_header_name() -> None:
    ex = Exchange(SentRequest("GET", "http://t/", []), status=200,
                  headers=[("X-A", "value X-Bst-bstq: 1"), ("X-Bst-other", "1")])
    assert injected_header(ex, "bstq") is None
    ex.headers.append(("Location", "/x\nX-Bst-bstq: 1"))
    raw = injected_header(ex, "bstq")
    assert raw is not None and raw.header == "Location" and not raw.split
    ex.headers.append(("x-bst-bstq", "1"))
    ex.headers.reverse()
    assert injected_header(ex, "bstq").split  # type: ignore[union-attr]


def test_probe_client_records_a_redirect_with_an_unparseable_location() -> None:
    import asyncio

    from bastion.target.client import ProbeClient

    async def go() -> tuple[Exchange, Exchange]:
        async with ProbeClient(Target.from_app(splitting_app, spec="tests:app")) as client:
            params = {"l": "x\r\nX-Bst-abc: 1"}
            return (await client.request("GET", "/lang", params=params),
                    await client.request("GET", "/lang", params=params, follow_redirects=True))

    plain, followed = asyncio.run(go())
    for ex in (plain, followed):
        assert ex.status == 302 and ex.header("location") == "/?lang=x\r\nX-Bst-abc: 1"
    assert "invalid-redirect" in followed.events


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, splitting_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_crlf_splits_on_a_real_server(served: str) -> None:
    surface = Surface([EntryPoint("GET", "/lang", [Input("query", "l")]),
                       EntryPoint("GET", "/p/{page}", [Input("path", "page")])])
    result = _scan(Target.from_url(served), surface)
    assert _inputs(result) == {("/lang", "query", "l"), ("/p/{page}", "path", "page")}
    # On the wire the injected line is a header of its own.
    assert all("arrived as a header of its own" in f.evidence[0].summary for f in result.findings)


def test_crlf_silent_on_a_real_server_when_safe(served: str) -> None:
    assert _scan(Target.from_url(served), safe_surface()).findings == []


# --- demo oracle ---------------------------------------------------------------------------------

# The same tuple in every injection-client test module, so the session cache scans the demo once.
CLIENT_CHECKS = ("injection.crlf", "injection.open-redirect", "injection.xss-reflected",
                 "injection.xss-stored", "injection.xxe")


def _located(result: ScanResult, check_id: str) -> set[tuple[str, str, str, str]]:
    return {(f.location.method or "", f.location.path or "", f.location.input.in_, f.location.input.name)
            for f in result.findings if f.check_id == check_id and f.location.input is not None}


def test_demo_crlf_found(scan_demo) -> None:  # type: ignore[no-untyped-def]
    result = scan_demo(flaws="all", checks=CLIENT_CHECKS)
    assert _located(result, CRLF) == {("GET", "/set-language", "query", "lang")}
    f = next(f for f in result.findings if f.check_id == CRLF)
    assert f.confidence == "confirmed" and "Set-Cookie" in f.title


def test_demo_hardened_twin_has_no_crlf(scan_demo) -> None:  # type: ignore[no-untyped-def]
    result = scan_demo(flaws="none", checks=CLIENT_CHECKS)
    assert not [f for f in result.findings if f.check_id == CRLF]
    assert all(not c.errors for c in result.checks)


def test_demo_crlf_splits_over_real_http() -> None:
    from bastion.demo.serve import start_background_server
    from bastion.session import scan_from_options

    for flaws, expected in (("crlf_injection", {("GET", "/set-language", "query", "lang")}), ("none", set())):
        url, stop = start_background_server(flaws, "flask")
        try:
            result = scan_from_options(url=url, checks=[CRLF])
        finally:
            stop()
        assert _located(result, CRLF) == expected
        assert all("arrived as a header of its own" in f.evidence[0].summary for f in result.findings)
