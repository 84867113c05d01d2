"""Real servers on 127.0.0.1: start, answer, stop; never on a non-loopback host."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from bastion.demo.serve import serve, start_background_server


@pytest.fixture
def served() -> Iterator[Callable[[str, str], str]]:
    stops: list[Callable[[], None]] = []

    def start(flaws: str, framework: str) -> str:
        url, stop = start_background_server(flaws, framework)
        stops.append(stop)
        return url

    yield start
    for stop in stops:
        stop()


def _raw_get(url: str, target: str) -> bytes:
    """Send a request byte for byte and return the raw response head (httpx would re-parse it)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_background_server_serves_on_loopback_and_stops(framework: str) -> None:
    url, stop = start_background_server("none", framework)
    try:
        assert urlsplit(url).hostname == "127.0.0.1"
        r = httpx.get(url + "/healthz", timeout=5)
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        assert "strict-transport-security" not in r.headers  # plain http
        assert "version" not in r.headers.get("server", "").lower()
    finally:
        stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/healthz", timeout=2)


def test_hardened_server_has_no_version_banner(served: Callable[[str, str], str]) -> None:
    server = httpx.get(served("none", "flask") + "/", timeout=5).headers.get("server", "")
    assert "/" not in server  # a bare product name, no version


def test_crlf_splits_the_response_on_the_wire(served: Callable[[str, str], str]) -> None:
    flawed = _raw_get(served("crlf_injection", "flask"), "/set-language?lang=fr%0d%0aX-Bst-Wire:%201")
    assert b"\r\nX-Bst-Wire: 1" in flawed
    hardened = _raw_get(served("none", "flask"), "/set-language?lang=fr%0d%0aX-Bst-Wire:%201")
    assert b"X-Bst-Wire" not in hardened


def test_flawed_server_reflects_xss(served: Callable[[str, str], str]) -> None:
    r = httpx.get(served("xss_reflected", "flask") + "/search", params={"q": "<bstw1>"}, timeout=5)
    assert "<bstw1>" in r.text


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_serve_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(ValueError, match="refusing"):
        serve(0, "none", host=host)


def test_serve_rejects_unknown_framework() -> None:
    with pytest.raises(ValueError, match="framework"):
        start_background_server("none", "django")
