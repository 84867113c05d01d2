"""Session refresh: expiry from JWT `exp`, `expires_in` and cookie lifetimes; renewal before a request once
expired (refresh_token grant, else a new login), never because of a 401. A fake clock, never sleep."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest

from bastion.doubles import OIDCProvider
from bastion.engine.context import CheckContext, CheckStats
from bastion.identity.login import login_role
from bastion.identity.refresh import cookie_expiry, jwt_expiry, response_expiry
from bastion.identity.session import RoleSession
from bastion.model.schema import RoleConfig
from bastion.target.client import ProbeClient
from bastion.target.exchange import Exchange, SentRequest
from bastion.target.target import Target

from .oidc_rp import ALICE_PASSWORD, CLIENT_ID, Clock, RelyingParty, register, rp_target

NOW = 1_700_000_000.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def idp(clock: Clock) -> Iterator[OIDCProvider]:
    with OIDCProvider(access_ttl=1, now=clock).serve() as provider:
        register(provider)
        yield provider


def _response(*set_cookies: str) -> Exchange:
    return Exchange(SentRequest("POST", "http://x.test/login", []), status=200,
                    headers=[("Set-Cookie", c) for c in set_cookies])


def test_expiry_sources() -> None:
    token = OIDCProvider(now=lambda: NOW, access_ttl=60).issue("alice")
    assert jwt_expiry(token) == NOW + 60
    assert jwt_expiry("not-a-jwt") is None
    assert response_expiry({"access_token": "t", "expires_in": 3600}, NOW) == NOW + 3600
    assert response_expiry({"expires_in": "120"}, NOW) == NOW + 120
    assert response_expiry({"expires_in": True}, NOW) is None and response_expiry([], NOW) is None
    ex = _response("sid=abc; Max-Age=900; HttpOnly", "pre=; Max-Age=0", "lang=en",
                   "remember=1; Expires=Wed, 15 Nov 2023 00:00:00 GMT")
    assert cookie_expiry(ex, NOW - 10_000) == NOW - 10_000 + 900  # earliest live one; the deletion is not a lifetime
    assert cookie_expiry(_response("lang=en"), NOW) is None


def test_session_expired_and_margin() -> None:
    clock = Clock(NOW)
    session = RoleSession("alice", clock=clock)
    assert not session.expired()
    session.set_expiry(NOW + 100)
    assert not session.expired()
    clock.t = NOW + 95  # inside the margin: renew a little early
    assert session.expired()
    session.set_expiry(NOW + 1)  # a one-second token is not renewed before it is even used
    clock.t = NOW + 0.5
    assert not session.expired()


def ctx_for(client: ProbeClient, roles: dict[str, RoleSession]) -> CheckContext:
    return CheckContext(spec=None, client=client, surface=None, payloads=None,  # type: ignore[arg-type]
                        rng=random.Random(0), stats=CheckStats("test.refresh"), roles=roles)


def cli_role(idp: OIDCProvider) -> RoleConfig:
    return RoleConfig.model_validate({"oidc": {"issuer": idp.issuer, "client_id": "bastion-cli", "username": "alice",
                                               "password": ALICE_PASSWORD,
                                               "redirect_uri": "http://127.0.0.1/bastion-callback"}})


def run_in_scan(target: Target, role: RoleConfig, clock: Clock, steps: int = 1,
                advance: float = 5.0) -> list[Exchange]:
    """Log in, then send /api/whoami `steps` times, moving the clock past the expiry before each."""

    async def run() -> list[Exchange]:
        out = []
        async with ProbeClient(target) as client:
            session = await login_role(client, "alice", role)
            session.clock = clock
            session.set_expiry(session.expires_at)
            ctx = ctx_for(client, {"alice": session})
            out.append(await ctx.send("GET", "/api/whoami", as_role="alice"))
            for _ in range(steps):
                clock.t += advance
                out.append(await ctx.send("GET", "/api/whoami", as_role="alice"))
        return out

    return asyncio.run(run())


def test_expired_tokens_are_renewed_with_the_refresh_token_before_sending(idp: OIDCProvider, clock: Clock) -> None:
    rp = RelyingParty(idp.issuer, clock)
    answers = run_in_scan(rp_target(idp, rp), cli_role(idp), clock, steps=2)
    assert [a.status for a in answers] == [200, 200, 200]
    assert idp.token_requests == ["authorization_code", "refresh_token", "refresh_token"]
    assert len(set(rp.seen_tokens)) == 3  # each request carried a fresh token


def test_without_a_refresh_token_the_role_logs_in_again(idp: OIDCProvider, clock: Clock) -> None:
    role = RoleConfig.model_validate({"oidc": {"issuer": idp.issuer, "client_id": "reporting-job",
                                               "client_secret": "job-secret", "flow": "client_credentials"}})
    rp = RelyingParty(idp.issuer, clock)
    answers = run_in_scan(rp_target(idp, rp), role, clock)
    assert [a.status for a in answers] == [200, 200]
    assert idp.token_requests == ["client_credentials", "client_credentials"]


def test_a_revoked_refresh_token_falls_back_to_a_new_login(idp: OIDCProvider, clock: Clock) -> None:
    rp = RelyingParty(idp.issuer, clock)

    async def run() -> list[int]:
        async with ProbeClient(rp_target(idp, rp)) as client:
            session = await login_role(client, "alice", cli_role(idp))
            session.clock = clock
            idp.revoke(session.renewer.refresh_token)  # type: ignore[union-attr]
            clock.t += 5
            ex = await ctx_for(client, {"alice": session}).send("GET", "/api/whoami", as_role="alice")
            return [ex.status]

    assert asyncio.run(run()) == [200]
    assert idp.token_requests == ["authorization_code", "refresh_token", "authorization_code"]


def test_a_401_alone_does_not_refresh(idp: OIDCProvider, clock: Clock) -> None:
    rp = RelyingParty(idp.issuer, clock)

    async def run() -> int:
        async with ProbeClient(rp_target(idp, rp)) as client:
            session = await login_role(client, "alice", cli_role(idp))
            session.clock = clock
            # The bearer token is valid but this page wants a cookie session: 401, as for a denied role.
            return (await ctx_for(client, {"alice": session}).send("GET", "/me", as_role="alice")).status

    assert asyncio.run(run()) == 401
    assert idp.token_requests == ["authorization_code"]


def test_concurrent_requests_share_one_renewal(idp: OIDCProvider, clock: Clock) -> None:
    rp = RelyingParty(idp.issuer, clock)

    async def run() -> list[int]:
        async with ProbeClient(rp_target(idp, rp)) as client:
            session = await login_role(client, "alice", cli_role(idp))
            session.clock = clock
            ctx = ctx_for(client, {"alice": session})
            clock.t += 5
            answers = await asyncio.gather(*(ctx.send("GET", "/api/whoami", as_role="alice") for _ in range(5)))
            return [a.status for a in answers]

    assert asyncio.run(run()) == [200] * 5
    assert idp.token_requests == ["authorization_code", "refresh_token"]  # refresh tokens are single-use


def test_cookie_session_lifetime_is_recorded_and_renewed_by_logging_in_again(idp: OIDCProvider,
                                                                            clock: Clock) -> None:
    target = rp_target(idp, RelyingParty(idp.issuer, clock), session_max_age=600)
    role = RoleConfig.model_validate({"oidc": {"issuer": idp.issuer, "client_id": CLIENT_ID, "username": "alice",
                                               "password": ALICE_PASSWORD, "start": "/login/oidc"}})

    async def run() -> tuple[float | None, int]:
        async with ProbeClient(target) as client:
            session = await login_role(client, "alice", role)
            lifetime = session.expires_at
            session.clock = lambda: (lifetime or 0) + 1
            me = await ctx_for(client, {"alice": session}).send("GET", "/me", as_role="alice")
            return lifetime, me.status

    lifetime, status = asyncio.run(run())
    assert lifetime is not None and status == 200
    assert idp.token_requests == ["authorization_code", "authorization_code"]
