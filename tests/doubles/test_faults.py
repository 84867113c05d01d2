"""Fault injection: the state and its switches, the TCP proxy (outage closes the port and it comes back on the
same one), DNS failure scoped to one double and undone, and faults on the OIDC provider fixture."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from bastion.doubles.faults import (
    Fault,
    FaultInjector,
    FaultState,
    InjectedError,
    resp_commands,
    state_of,
)
from bastion.doubles.oidc import OIDCProvider
from bastion.doubles.serve import serve_wsgi


def hello_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def test_check_raises_what_a_network_client_would_see() -> None:
    state = FaultState("thing")
    injector = FaultInjector()
    state.check("op")  # healthy: nothing
    expected = [(injector.outage, ConnectionRefusedError), (injector.reset, ConnectionResetError),
                (injector.dns_failure, socket.gaierror), (injector.errors, InjectedError)]
    for switch, error in expected:
        with switch(state), pytest.raises(error, match="bastion fault"):
            state.check("op")
    assert state.active is None
    assert [i.kind for i in state.injected] == ["outage", "reset", "dns", "error"]


def test_nested_faults_restore_the_enclosing_one_and_clear_all_heals() -> None:
    state = FaultState()
    injector = FaultInjector()
    with injector.latency(state, 1.0) as outer:
        with injector.outage(state):
            assert state.active is not None and state.active.kind == "outage"
        assert state.active is outer.fault
    assert state.active is None
    injector.errors(state)  # not a context manager: stays until cleared
    assert state.active is not None and state.active.kind == "error"
    injector.clear_all()
    assert state.active is None
    with pytest.raises(ValueError):
        injector.latency(state, -1)


def test_latency_ends_with_the_fault() -> None:
    state = FaultState()
    fault = Fault("latency", delay=60.0)
    state.set(fault)
    holder = threading.Thread(target=state.hold, args=(fault,))
    holder.start()
    state.set(None)
    holder.join(5.0)
    assert not holder.is_alive()


def test_state_of_refuses_what_is_not_a_double() -> None:
    with pytest.raises(TypeError, match="not a Bastion test double"):
        state_of(object())


def test_resp_commands_counts_complete_commands() -> None:
    one = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert resp_commands(one * 2) == (2, b"")
    assert resp_commands(one + one[:7]) == (1, one[:7])
    assert resp_commands(b"PING\r\n") == (1, b"")
    assert resp_commands(b"*1\r\n$4\r\nPI") == (0, b"*1\r\n$4\r\nPI")


def test_outage_closes_the_port_and_the_double_returns_on_the_same_one() -> None:
    state = FaultState("hello")
    injector = FaultInjector()
    with serve_wsgi(hello_app, faults=state) as url:
        assert httpx.get(url).text == "hello"
        with injector.outage(state), pytest.raises(httpx.ConnectError):
            httpx.get(url)
        assert httpx.get(url).text == "hello"
        with injector.errors(state, status=502, message="bad gateway"):
            reply = httpx.get(url)
        assert reply.status_code == 502 and "bad gateway" in reply.text
        with injector.reset(state), pytest.raises(httpx.TransportError):
            httpx.get(url)
        assert httpx.get(url).text == "hello"


def test_dns_failure_is_scoped_to_the_double_and_undone() -> None:
    state, other = FaultState("a"), FaultState("b")
    injector = FaultInjector()
    real = socket.getaddrinfo
    with serve_wsgi(hello_app, faults=state) as url, serve_wsgi(hello_app, faults=other) as other_url:
        port = int(url.rsplit(":", 1)[1])
        with injector.dns_failure(state):
            with pytest.raises(socket.gaierror):
                socket.getaddrinfo("127.0.0.1", port)
            with pytest.raises(socket.gaierror):
                socket.getaddrinfo("localhost", str(port))
            assert httpx.get(other_url).text == "hello"  # another double on loopback still resolves
        assert socket.getaddrinfo is real
        assert httpx.get(url).text == "hello"
    assert [i.where for i in state.injected if i.kind == "dns"].count("resolve") == 2


def test_oidc_provider_fixture_takes_faults(oidc_provider: OIDCProvider, faults: FaultInjector) -> None:
    jwks_url = oidc_provider.endpoint("jwks")
    assert httpx.get(jwks_url).status_code == 200
    with faults.outage(oidc_provider), pytest.raises(httpx.ConnectError):
        httpx.get(jwks_url)
    with faults.errors(oidc_provider):
        assert httpx.get(jwks_url).status_code == 503
    with faults.reset(oidc_provider), pytest.raises(httpx.TransportError):
        httpx.get(jwks_url)
    with faults.dns_failure(oidc_provider), pytest.raises(httpx.ConnectError):
        httpx.get(jwks_url)
    faults.latency(oidc_provider, 30.0)  # stays on until cleared
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(jwks_url, timeout=0.2)
    assert oidc_provider.fault_state.count("latency") == 1
    faults.clear(oidc_provider)
    assert httpx.get(jwks_url).json()["keys"][0]["kid"] == oidc_provider.active_kid
