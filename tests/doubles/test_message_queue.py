"""The message queue and its dead-letter queue: the same tests on the in-memory and the Redis-streams backend,
redis-py against the served redis-server, and every fault seen by the queue's clients."""

from __future__ import annotations

import socket

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bastion.doubles.faults import FaultInjector, FaultState, fronted
from bastion.doubles.queue import (
    TRACE_HEADER,
    InMemoryQueue,
    MessageQueue,
    QueueUnavailable,
    RedisServer,
    RedisStreamQueue,
    queue_from_url,
)


def test_publish_consume_ack(message_queue: MessageQueue) -> None:
    first = message_queue.publish("orders", {"id": 1}, trace_id="trace-1")
    second = message_queue.publish("orders", b"raw", headers={"source": "shop"})
    assert first != second
    got = message_queue.consume("orders", consumer="w1", count=5)
    assert [d.id for d in got] == [first, second]
    assert got[0].message.json() == {"id": 1} and got[1].body == b"raw"
    assert got[0].headers[TRACE_HEADER] == "trace-1"
    assert got[1].message.trace_id and got[1].headers["source"] == "shop"  # a trace id is always set
    assert [d.attempt for d in got] == [1, 1]
    assert message_queue.pending("orders") == 2
    for delivery in got:
        message_queue.ack(delivery)
    assert message_queue.pending("orders") == 0
    assert message_queue.consume("orders", consumer="w1") == []


def test_nack_redelivers_then_dead_letters_with_trace_id(message_queue: MessageQueue) -> None:
    mid = message_queue.publish("jobs", "poison", trace_id="trace-poison")
    attempts = []
    for _ in range(message_queue.max_deliveries):
        [delivery] = message_queue.consume("jobs", consumer="w1")
        assert delivery.id == mid
        attempts.append(delivery.attempt)
        message_queue.nack(delivery, reason="cannot parse")
    assert attempts == list(range(1, message_queue.max_deliveries + 1))
    assert message_queue.consume("jobs", consumer="w1") == []
    [dead] = message_queue.dead_letters("jobs")
    assert dead.message.id == mid and dead.message.body == b"poison"
    assert dead.message.trace_id == "trace-poison"
    assert dead.reason == "cannot parse" and dead.deliveries == message_queue.max_deliveries
    assert message_queue.pending("jobs") == 0


def test_replay_puts_dead_letters_back(message_queue: MessageQueue) -> None:
    mid = message_queue.publish("jobs", "retry me", trace_id="trace-r")
    for _ in range(message_queue.max_deliveries):
        message_queue.nack(message_queue.consume("jobs")[0])
    [new_id] = message_queue.replay("jobs")
    assert new_id != mid and message_queue.dead_letters("jobs") == []
    [again] = message_queue.consume("jobs")
    assert again.id == new_id and again.attempt == 1 and again.body == b"retry me"
    assert again.headers["replayed-from"] == mid and again.message.trace_id == "trace-r"


def test_a_dead_consumers_messages_are_handed_out_again(message_queue: MessageQueue) -> None:
    mid = message_queue.publish("jobs", "work")
    assert message_queue.consume("jobs", consumer="crashed")[0].id == mid
    assert message_queue.consume("jobs", consumer="w2") == []  # still held by the crashed consumer
    assert message_queue.release("jobs", "crashed") == 1
    [delivery] = message_queue.consume("jobs", consumer="w2")
    assert delivery.id == mid and delivery.attempt == 2 and delivery.consumer == "w2"


def test_topics_are_separate(message_queue: MessageQueue) -> None:
    message_queue.publish("a", "for a")
    assert message_queue.consume("b") == []
    assert message_queue.consume("a")[0].body == b"for a"


def test_every_fault_reaches_the_queue_client_and_heals(message_queue: MessageQueue,
                                                        faults: FaultInjector) -> None:
    message_queue.publish("jobs", "before")
    for switch in (faults.outage, faults.reset, faults.errors, faults.dns_failure):
        with switch(message_queue), pytest.raises(QueueUnavailable):
            message_queue.publish("jobs", "during")
    with faults.latency(message_queue, 0.01):
        message_queue.publish("jobs", "slow")  # held back, then delivered
    kinds = {i.kind for i in message_queue.fault_state.injected}
    assert kinds == {"outage", "reset", "error", "dns", "latency"}
    assert [d.body for d in message_queue.consume("jobs", count=5)] == [b"before", b"slow"]


def test_in_memory_queue_validates_max_deliveries() -> None:
    with pytest.raises(ValueError, match="max_deliveries"):
        InMemoryQueue(max_deliveries=0)


def test_queue_from_url(redis_server: RedisServer) -> None:
    assert isinstance(queue_from_url("memory://"), InMemoryQueue)
    queue = queue_from_url(f"redis://{redis_server.host}:{redis_server.port}/0?prefix=url-test")
    assert isinstance(queue, RedisStreamQueue) and queue.prefix == "url-test"
    assert queue.url == f"redis://{redis_server.host}:{redis_server.port}/0?prefix=url-test"
    queue.close()
    with pytest.raises(ValueError, match="scheme"):
        queue_from_url("amqp://127.0.0.1")


# --- redis-py against the served redis-server, through the fault proxy --------------------------------------


@pytest.fixture
def redis_front(redis_server: RedisServer):
    state = FaultState("redis")
    with fronted((redis_server.host, redis_server.port), "resp", state) as proxy:
        yield proxy


def test_redis_server_speaks_redis(redis_server: RedisServer) -> None:
    with redis.Redis(redis_server.host, redis_server.port) as client:
        assert client.ping()
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}


def no_retry_client(address: tuple[str, int], timeout: float = 5.0) -> redis.Redis:
    """redis-py retries with backoff by default; the test wants to see each fault once, at once."""
    return redis.Redis(*address, socket_timeout=timeout, retry=Retry(NoBackoff(), 0))


def test_redis_py_sees_each_fault_and_recovers(redis_front, faults: FaultInjector) -> None:
    client = no_retry_client(redis_front.address)
    client.set("bastion-fault-key", "v")
    with faults.errors(redis_front, message="injected"), pytest.raises(redis.ResponseError, match="bastion fault"):
        client.get("bastion-fault-key")
    with faults.outage(redis_front), pytest.raises(redis.ConnectionError):
        client.get("bastion-fault-key")
    with faults.reset(redis_front), pytest.raises(redis.ConnectionError):
        client.get("bastion-fault-key")
    with faults.dns_failure(redis_front):
        with pytest.raises(redis.ConnectionError) as failed:
            no_retry_client(redis_front.address).get("bastion-fault-key")
        assert isinstance(failed.value.__context__ or failed.value.__cause__, socket.gaierror) or \
            "Name or service not known" in str(failed.value)
    slow = no_retry_client(redis_front.address, timeout=0.2)
    slow.ping()
    with faults.latency(redis_front, 30.0), pytest.raises(redis.TimeoutError):
        slow.get("bastion-fault-key")
    assert redis_front.state.count("latency") >= 1
    assert client.get("bastion-fault-key") == b"v"  # healed, same address
    client.delete("bastion-fault-key")
    client.close()
    slow.close()
