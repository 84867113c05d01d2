"""Redirects (loops, endless chains, out-of-scope hops), the scope guard and the budgets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bastion.errors import BudgetExhausted, ScopeError
from bastion.target import Budget, Limits, ProbeClient, Target

Server = Any  # conftest.LocalServer: .url, .hits


def redirect_app(location: Callable[[str], str]) -> Callable[..., Any]:
    """A WSGI app answering every path with a 302 to `location(path)`."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("302 Found", [("Location", location(environ["PATH_INFO"])), ("Content-Length", "0")])
        return [b""]

    return app


def ok_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from " + environ["PATH_INFO"].encode()]


def follow(url: str, path: str, limits: Limits | None = None):
    async def go():
        async with ProbeClient(Target.from_url(url), limits=limits) as client:
            ex = await client.request("GET", path, follow_redirects=True)
            return ex, client.budget.requests

    return asyncio.run(go())


def test_redirect_loop_is_detected(wsgi_server: Callable[..., Server]) -> None:
    server = wsgi_server(redirect_app(lambda p: "/b" if p == "/a" else "/a"))
    ex, sent = follow(server.url, "/a")
    assert "redirect-loop" in ex.events
    assert ex.status == 302
    assert sent == 2 and len(server.hits) == 2
    assert [h.request.url for h in ex.history] == [server.url + "/a"]


def test_endless_redirect_chain_stops_at_max_redirects(wsgi_server: Callable[..., Server]) -> None:
    server = wsgi_server(redirect_app(lambda p: f"/hop/{int(p.rsplit('/', 1)[-1] or 0) + 1}"))
    ex, sent = follow(server.url, "/hop/0", Limits(max_redirects=5))
    assert "too-many-redirects" in ex.events
    assert sent == 6 and len(server.hits) == 6
    assert len(ex.history) == 5


def test_redirect_within_scope_is_followed(wsgi_server: Callable[..., Server]) -> None:
    server = wsgi_server(lambda e, s: (redirect_app(lambda p: "/end")(e, s) if e["PATH_INFO"] != "/end"
                                      else ok_app(e, s)))
    ex, _ = follow(server.url, "/start")
    assert ex.status == 200 and ex.text == "hello from /end"
    assert ex.events == []


def test_redirect_out_of_scope_is_refused_and_the_other_host_never_contacted(
        wsgi_server: Callable[..., Server]) -> None:
    # Scope is by host: 127.0.0.2 is a different host than 127.0.0.1 even on the loopback interface.
    other = wsgi_server(ok_app, host="127.0.0.2")
    server = wsgi_server(redirect_app(lambda p: other.url + "/stolen"))
    ex, sent = follow(server.url, "/go")
    assert "out-of-scope-redirect" in ex.events
    assert other.url in (ex.error or "")
    assert ex.status == 302 and not ex.ok
    assert sent == 1
    assert other.hits == []
    # The other server is reachable: the zero above is the scope guard's doing, not a dead socket.
    assert httpx.get(other.url + "/probe", trust_env=False).status_code == 200
    assert other.hits == ["/probe"]


def test_redirect_to_non_http_scheme_is_refused(wsgi_server: Callable[..., Server]) -> None:
    server = wsgi_server(redirect_app(lambda p: "file:///etc/passwd"))
    ex, sent = follow(server.url, "/")
    assert "out-of-scope-redirect" in ex.events
    assert sent == 1


def test_direct_request_out_of_scope_raises_scope_error(wsgi_server: Callable[..., Server]) -> None:
    other = wsgi_server(ok_app, host="127.0.0.2")
    server = wsgi_server(ok_app)

    async def go():
        async with ProbeClient(Target.from_url(server.url)) as client:
            await client.request("GET", other.url + "/x")

    with pytest.raises(ScopeError, match="127.0.0.2"):
        asyncio.run(go())
    assert other.hits == []


def test_request_budget_raises_on_request_n_plus_one(wsgi_server: Callable[..., Server]) -> None:
    server = wsgi_server(ok_app)

    async def go():
        async with ProbeClient(Target.from_url(server.url), limits=Limits(max_requests=3)) as client:
            for _ in range(3):
                assert (await client.request("GET", "/")).status == 200
            with pytest.raises(BudgetExhausted, match="request budget of 3"):
                await client.request("GET", "/")
            return client.budget

    budget = asyncio.run(go())
    assert budget.requests == 3
    assert budget.exhausted
    assert len(server.hits) == 3


def test_redirect_hops_spend_the_request_budget(wsgi_server: Callable[..., Server]) -> None:
    server = wsgi_server(redirect_app(lambda p: f"/hop/{int(p.rsplit('/', 1)[-1] or 0) + 1}"))
    with pytest.raises(BudgetExhausted):
        follow(server.url, "/hop/0", Limits(max_requests=3, max_redirects=10))
    assert len(server.hits) == 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_total_time_budget_with_a_fake_clock() -> None:
    clock = FakeClock()
    limits = Limits(total_time=60.0)
    budget = Budget(limits, clock=clock)

    async def go():
        async with ProbeClient(Target.from_app(ok_app), limits=limits, budget=budget) as client:
            assert (await client.request("GET", "/")).status == 200
            clock.now += 59.5
            assert budget.remaining_time() == pytest.approx(0.5)
            assert (await client.request("GET", "/")).status == 200
            clock.now += 0.5
            with pytest.raises(BudgetExhausted, match="time budget of 60s"):
                await client.request("GET", "/")

    asyncio.run(go())
    assert budget.requests == 2
    assert budget.exhausted == "time budget of 60s spent"


def test_budget_stays_exhausted_once_spent() -> None:
    budget = Budget(Limits(max_requests=1))
    budget.spend()
    for _ in range(2):
        with pytest.raises(BudgetExhausted):
            budget.spend()
    assert budget.requests == 1


def test_scope_entries_with_a_port_allow_only_that_port() -> None:
    from bastion.target.scope import Scope

    scope = Scope.for_base_url("http://127.0.0.1:8000", ["api.internal.test:8443", "[::1]:9000"])
    assert scope.allows("http://127.0.0.1:1234/")  # the target's host: any port
    assert scope.allows("https://api.internal.test:8443/x")
    assert not scope.allows("https://api.internal.test/x")
    assert scope.allows("http://[::1]:9000/") and not scope.allows("http://[::1]:9001/")
    assert not scope.allows("ftp://127.0.0.1/")


def test_unparseable_location_header_keeps_the_response() -> None:
    """`Location: https:evil.example` is what redirect probes provoke: record it, don't fail the request."""
    import asyncio

    from bastion.target import ProbeClient, Target

    def app(environ, start_response):  # raw WSGI: werkzeug would rewrite the odd Location
        start_response("302 Found", [("Location", "https:evil.example"), ("Content-Length", "0")])
        return [b""]

    async def fetch():
        async with ProbeClient(Target.from_app(app, spec="t:app", base_url="https://shop.test")) as client:
            return await client.request("GET", "/go")

    ex = asyncio.run(fetch())
    assert ex.status == 302 and ex.error is None and ex.header("location") == "https:evil.example"
