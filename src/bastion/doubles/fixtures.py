"""pytest fixtures for the test doubles: `smtp_outbox`, `message_queue`, `vault`, `redis_server`, `faults`.

    def test_login_fails_closed_when_the_idp_is_down(bastion_client, oidc_provider, faults):
        with faults.outage(oidc_provider):
            assert bastion_client.get("/api/me", headers=...).status == 401

    def test_poison_message_is_dead_lettered(message_queue):   # runs on the in-memory and the Redis queue
        ...

Registered by bastion.pytest_plugin. aiosmtpd and redis (the `doubles` extra) are imported only when a
test asks for a fixture that needs them. Without the `redis-server` binary the Redis-backed tests are
skipped, or fail when the `CI` environment variable is set (CI must run them: .ci/run installs it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bastion.doubles.faults import FaultInjector, FaultState, fronted
from bastion.doubles.vault import SecretsVault

QUEUE_BACKENDS = ("memory", "redis")


@pytest.fixture
def smtp_outbox() -> Iterator[Any]:
    """An SMTP server on 127.0.0.1 capturing mail: `.host`/`.port` for the app, `.messages`, `.find(to=...)`,
    `.links()`, `.wait_for(n)`."""
    from bastion.doubles.smtp import SMTPOutbox

    with SMTPOutbox().serve() as outbox:
        yield outbox


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A throw-away `redis-server` on 127.0.0.1 for the test session (no persistence, temp dir)."""
    from bastion.doubles.queue import RedisServer, RedisUnavailable

    try:
        server = RedisServer().start()
    except RedisUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}; CI must run the Redis queue tests (.ci/run installs redis-server)")
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(params=QUEUE_BACKENDS)
def message_queue(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A message queue with a dead-letter queue; the test runs once in memory and once on Redis streams."""
    from bastion.doubles.queue import InMemoryQueue

    if request.param == "memory":
        queue = InMemoryQueue()
        yield queue
        queue.close()
        return
    yield from _redis_queue(request.getfixturevalue("redis_server"))


def _redis_queue(server: Any) -> Iterator[Any]:
    """A RedisStreamQueue behind its own FaultProxy, on keys of its own, deleted afterwards."""
    import redis

    from bastion.doubles.queue import RedisStreamQueue

    prefix = f"bastion-test-{uuid.uuid4().hex[:12]}"
    state = FaultState("redis")
    with fronted((server.host, server.port), "resp", state) as proxy:
        queue = RedisStreamQueue(proxy.host, proxy.port, prefix=prefix, fault_state=state)
        try:
            yield queue
        finally:
            queue.close()
            # Straight to the server: the proxy may still carry a fault the test left on.
            with redis.Redis(server.host, server.port) as direct:
                keys = list(direct.scan_iter(f"{prefix}:*"))
                if keys:
                    direct.delete(*keys)


@pytest.fixture
def vault() -> Iterator[SecretsVault]:
    """A secrets vault served on 127.0.0.1: `.url`, `.token`, `.put/.get/.rotate/.revoke`, `.audit`."""
    with SecretsVault().serve() as served:
        yield served


@pytest.fixture
def faults() -> Iterator[FaultInjector]:
    """Switch faults on any double: `faults.outage(d)`, `.latency(d, s)`, `.errors(d)`, `.reset(d)`,
    `.dns_failure(d)` — each also a context manager; everything is healed when the test ends."""
    injector = FaultInjector()
    yield injector
    injector.clear_all()
