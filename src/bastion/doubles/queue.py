"""A message queue with a dead-letter queue, in memory or on Redis streams, behind one interface.

    queue = InMemoryQueue(max_deliveries=3)         # or RedisStreamQueue(host, port, ...)
    mid = queue.publish("orders", b'{"id": 1}', trace_id="t-1")
    [d] = queue.consume("orders", consumer="worker-1")
    queue.nack(d)                                   # redelivered; after max_deliveries -> dead letter
    queue.dead_letters("orders")                    # each keeps its id, headers (trace-id) and reason
    queue.replay("orders")                          # dead letters back onto the queue

Redis backend: one stream per topic (`<prefix>:<topic>`), one consumer group, XREADGROUP/XACK;
a nack marks the entry idle so XAUTOCLAIM hands it out again (Redis counts the deliveries), and an
entry delivered `max_deliveries` times goes to the `<prefix>:<topic>:dlq` stream. `RedisServer` runs a
throw-away `redis-server` on 127.0.0.1 for tests. Both backends honour bastion.doubles.faults: the
in-memory one in-process, the Redis one through a FaultProxy in front of the server. Every broker
failure reaches the caller as `QueueUnavailable`.
"""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from bastion.doubles.faults import FaultState, InjectedError

TRACE_HEADER = "trace-id"
DEFAULT_MAX_DELIVERIES = 3
GROUP = "bastion"
# A consumer that holds a delivery this long without ack/nack is presumed dead; its message is handed out again.
VISIBILITY_S = 30.0
REDIS_START_TIMEOUT_S = 10.0
REDIS_STOP_TIMEOUT_S = 5.0
REDIS_PORT_TRIES = 5
# An entry a nack marks idle for this long is past any visibility timeout, so XAUTOCLAIM takes it at once.
_NACK_IDLE_MS = 10 ** 12


class QueueUnavailable(ConnectionError):
    """The broker failed an operation (down, reset, unresolvable, or answered with an error)."""


@dataclass(frozen=True)
class Message:
    """A message as stored: id, topic, body, headers (always with a trace id)."""

    id: str
    topic: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def trace_id(self) -> str:
        return self.headers.get(TRACE_HEADER, "")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Delivery:
    """A message handed to a consumer; `attempt` counts deliveries including this one."""

    message: Message
    consumer: str
    attempt: int

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def headers(self) -> dict[str, str]:
        return self.message.headers


@dataclass(frozen=True)
class DeadLetter:
    """A message that could not be processed: the original message, why, and after how many deliveries."""

    id: str
    message: Message
    reason: str
    deliveries: int


class MessageQueue(Protocol):
    """What both backends offer; tests written against it run on either."""

    fault_state: FaultState
    max_deliveries: int

    def publish(self, topic: str, body: bytes | str | Mapping[str, Any], headers: Mapping[str, str] | None = None,
                trace_id: str | None = None) -> str: ...

    def consume(self, topic: str, consumer: str = "consumer", count: int = 1) -> list[Delivery]: ...

    def ack(self, delivery: Delivery) -> None: ...

    def nack(self, delivery: Delivery, reason: str = "rejected") -> None: ...

    def release(self, topic: str, consumer: str) -> int: ...

    def dead_letters(self, topic: str) -> list[DeadLetter]: ...

    def replay(self, topic: str, ids: list[str] | None = None) -> list[str]: ...

    def pending(self, topic: str) -> int: ...

    def close(self) -> None: ...


def encode_body(body: bytes | str | Mapping[str, Any]) -> bytes:
    """Bytes as given, text as UTF-8, a mapping as JSON."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(dict(body), sort_keys=True).encode("utf-8")


def with_trace(headers: Mapping[str, str] | None, trace_id: str | None) -> dict[str, str]:
    """Headers with a trace id: the given one, the one already in the headers, or a new one."""
    out = {str(k): str(v) for k, v in (headers or {}).items()}
    out[TRACE_HEADER] = trace_id or out.get(TRACE_HEADER) or uuid.uuid4().hex
    return out


# --- in memory ------------------------------------------------------------------------------------------------


@dataclass
class _InFlight:
    consumer: str
    attempt: int


@dataclass
class _Topic:
    ready: deque[str] = field(default_factory=deque)
    messages: dict[str, Message] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, _InFlight] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)


class InMemoryQueue:
    """A broker in this process: at-least-once delivery, nack/redelivery, dead-letter queue, replay."""

    def __init__(self, max_deliveries: int = DEFAULT_MAX_DELIVERIES) -> None:
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be >= 1")
        self.max_deliveries = max_deliveries
        self.fault_state = FaultState("queue")
        self.url = "memory://"
        self._topics: dict[str, _Topic] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _check(self, operation: str) -> None:
        try:
            self.fault_state.check(operation)
        except (OSError, InjectedError) as exc:
            raise QueueUnavailable(f"queue {operation}: {exc}") from exc

    def _topic(self, name: str) -> _Topic:
        return self._topics.setdefault(name, _Topic())

    def publish(self, topic: str, body: bytes | str | Mapping[str, Any], headers: Mapping[str, str] | None = None,
                trace_id: str | None = None) -> str:
        """Enqueue a message; returns its id. A trace id header is always set."""
        self._check("publish")
        with self._lock:
            mid = f"{next(self._ids)}-0"
            self._topic(topic).messages[mid] = Message(mid, topic, encode_body(body), with_trace(headers, trace_id))
            self._topic(topic).ready.append(mid)
        return mid

    def consume(self, topic: str, consumer: str = "consumer", count: int = 1) -> list[Delivery]:
        """Up to `count` messages for `consumer` (redeliveries first); empty when none is ready."""
        self._check("consume")
        out: list[Delivery] = []
        with self._lock:
            state = self._topic(topic)
            while state.ready and len(out) < count:
                mid = state.ready.popleft()
                attempt = state.attempts.get(mid, 0) + 1
                state.attempts[mid] = attempt
                state.in_flight[mid] = _InFlight(consumer, attempt)
                out.append(Delivery(state.messages[mid], consumer, attempt))
        return out

    def ack(self, delivery: Delivery) -> None:
        """Processing succeeded: the message is gone."""
        self._check("ack")
        with self._lock:
            state = self._topic(delivery.message.topic)
            state.in_flight.pop(delivery.id, None)
            state.messages.pop(delivery.id, None)
            state.attempts.pop(delivery.id, None)

    def nack(self, delivery: Delivery, reason: str = "rejected") -> None:
        """Processing failed: redeliver, or dead-letter once it was delivered `max_deliveries` times."""
        self._check("nack")
        with self._lock:
            state = self._topic(delivery.message.topic)
            if state.in_flight.pop(delivery.id, None) is None:
                return
            if state.attempts[delivery.id] >= self.max_deliveries:
                self._dead_letter(state, delivery.id, reason)
            else:
                state.ready.appendleft(delivery.id)

    def _dead_letter(self, state: _Topic, mid: str, reason: str) -> None:
        message = state.messages.pop(mid)
        deliveries = state.attempts.pop(mid, 0)
        state.dead.append(DeadLetter(f"{next(self._ids)}-0", message, reason, deliveries))

    def release(self, topic: str, consumer: str) -> int:
        """`consumer` died: its unacknowledged deliveries are handed out again (or dead-lettered)."""
        self._check("release")
        with self._lock:
            state = self._topic(topic)
            mids = [mid for mid, f in state.in_flight.items() if f.consumer == consumer]
            for mid in mids:
                del state.in_flight[mid]
                if state.attempts[mid] >= self.max_deliveries:
                    self._dead_letter(state, mid, "consumer died")
                else:
                    state.ready.appendleft(mid)
            return len(mids)

    def dead_letters(self, topic: str) -> list[DeadLetter]:
        self._check("dead_letters")
        with self._lock:
            return list(self._topic(topic).dead)

    def replay(self, topic: str, ids: list[str] | None = None) -> list[str]:
        """Put dead letters (all, or those with `ids`) back on the queue as new messages; returns their ids."""
        self._check("replay")
        with self._lock:
            state = self._topic(topic)
            chosen = [d for d in state.dead if ids is None or d.id in ids]
            state.dead = [d for d in state.dead if d not in chosen]
            new_ids = []
            for dead in chosen:
                mid = f"{next(self._ids)}-0"
                headers = {**dead.message.headers, "replayed-from": dead.message.id}
                state.messages[mid] = replace(dead.message, id=mid, headers=headers)
                state.ready.append(mid)
                new_ids.append(mid)
            return new_ids

    def pending(self, topic: str) -> int:
        """Deliveries handed out and not yet acknowledged."""
        self._check("pending")
        with self._lock:
            return len(self._topic(topic).in_flight)

    def close(self) -> None:
        """Nothing to release (the interface's counterpart of closing a broker connection)."""


# --- Redis streams ----------------------------------------------------------------------------------------------


class RedisStreamQueue:
    """The same queue on Redis streams (consumer groups, XACK, XAUTOCLAIM, a DLQ stream per topic)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 6379, *, db: int = 0, prefix: str = "bastion",
                 max_deliveries: int = DEFAULT_MAX_DELIVERIES, visibility: float = VISIBILITY_S,
                 timeout: float = 5.0, fault_state: FaultState | None = None) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if max_deliveries < 1:
            raise ValueError("max_deliveries must be >= 1")
        self.host, self.port, self.db, self.prefix = host, port, db, prefix
        self.max_deliveries = max_deliveries
        self.visibility_ms = int(visibility * 1000)
        self.fault_state = fault_state if fault_state is not None else FaultState("redis")
        # One immediate retry (a pooled connection the broker closed); no backoff: a fault must surface at once.
        self.redis = redis.Redis(host=host, port=port, db=db, socket_timeout=timeout,
                                 socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1))
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._groups: set[str] = set()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}?prefix={self.prefix}"

    def _key(self, topic: str) -> str:
        return f"{self.prefix}:{topic}"

    @contextmanager
    def _op(self, operation: str) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise QueueUnavailable(f"redis {operation} on {self.host}:{self.port}: {exc}") from exc

    def _group(self, topic: str) -> str:
        key = self._key(topic)
        if key not in self._groups:
            import redis

            try:
                self.redis.xgroup_create(key, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._groups.add(key)
        return key

    def publish(self, topic: str, body: bytes | str | Mapping[str, Any], headers: Mapping[str, str] | None = None,
                trace_id: str | None = None) -> str:
        with self._op("publish"):
            key = self._group(topic)
            fields = {"body": encode_body(body), "headers": json.dumps(with_trace(headers, trace_id))}
            return _text(self.redis.xadd(key, fields))  # type: ignore[arg-type]

    def consume(self, topic: str, consumer: str = "consumer", count: int = 1) -> list[Delivery]:
        with self._op("consume"):
            key = self._group(topic)
            out = self._reclaim(topic, key, consumer, count)
            if len(out) < count:
                reply: Any = self.redis.xreadgroup(GROUP, consumer, {key: ">"}, count=count - len(out))
                for _stream, entries in reply or []:
                    out.extend(Delivery(self._message(topic, mid, fields), consumer, 1)
                               for mid, fields in entries)
            return out

    def _reclaim(self, topic: str, key: str, consumer: str, count: int) -> list[Delivery]:
        """Entries nacked, or held past the visibility timeout, go to `consumer` (or to the DLQ if spent)."""
        out: list[Delivery] = []
        reply = self.redis.xautoclaim(key, GROUP, consumer, self.visibility_ms, start_id="0-0", count=count)
        for mid, fields in reply[1]:
            if fields is None:  # deleted meanwhile
                continue
            attempt = self._attempts(key, mid)
            message = self._message(topic, mid, fields)
            if attempt > self.max_deliveries:
                self._dead_letter(key, message, "consumer died", attempt - 1)
            else:
                out.append(Delivery(message, consumer, attempt))
        return out

    def _attempts(self, key: str, mid: Any) -> int:
        info = self.redis.xpending_range(key, GROUP, min=mid, max=mid, count=1)
        return int(info[0]["times_delivered"]) if info else 1

    def _message(self, topic: str, mid: Any, fields: Mapping[Any, Any]) -> Message:
        decoded = {_text(k): v for k, v in fields.items()}
        headers = json.loads(_text(decoded.get("headers", b"{}")))
        return Message(_text(mid), topic, bytes(decoded.get("body", b"")), headers)

    def _dead_letter(self, key: str, message: Message, reason: str, deliveries: int) -> None:
        fields = {"body": message.body, "headers": json.dumps(message.headers), "original-id": message.id,
                  "reason": reason, "deliveries": str(deliveries)}
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(f"{key}:dlq", fields)  # type: ignore[arg-type]
        pipe.xack(key, GROUP, message.id)
        pipe.xdel(key, message.id)
        pipe.execute()

    def ack(self, delivery: Delivery) -> None:
        with self._op("ack"):
            key = self._key(delivery.message.topic)
            pipe = self.redis.pipeline(transaction=True)
            pipe.xack(key, GROUP, delivery.id)
            pipe.xdel(key, delivery.id)
            pipe.execute()

    def nack(self, delivery: Delivery, reason: str = "rejected") -> None:
        with self._op("nack"):
            key = self._key(delivery.message.topic)
            if delivery.attempt >= self.max_deliveries:
                self._dead_letter(key, delivery.message, reason, delivery.attempt)
            else:
                # Idle "forever" and JUSTID (no delivery counted): the next consume reclaims it at once.
                self.redis.xclaim(key, GROUP, delivery.consumer, 0, [delivery.id], idle=_NACK_IDLE_MS,
                                  justid=True)

    def release(self, topic: str, consumer: str) -> int:
        with self._op("release"):
            key = self._group(topic)
            entries = self.redis.xpending_range(key, GROUP, min="-", max="+", count=10_000, consumername=consumer)
            ids: Any = [e["message_id"] for e in entries]
            if ids:
                self.redis.xclaim(key, GROUP, consumer, 0, ids, idle=_NACK_IDLE_MS, justid=True)
            return len(ids)

    def dead_letters(self, topic: str) -> list[DeadLetter]:
        with self._op("dead_letters"):
            out = []
            entries: Any = self.redis.xrange(f"{self._key(topic)}:dlq")
            for did, raw in entries:
                fields = {_text(k): v for k, v in raw.items()}
                message = Message(_text(fields["original-id"]), topic, bytes(fields["body"]),
                                  json.loads(_text(fields["headers"])))
                out.append(DeadLetter(_text(did), message, _text(fields["reason"]), int(fields["deliveries"])))
            return out

    def replay(self, topic: str, ids: list[str] | None = None) -> list[str]:
        with self._op("replay"):
            key = self._group(topic)
            new_ids = []
            for dead in self.dead_letters(topic):
                if ids is not None and dead.id not in ids:
                    continue
                headers = {**dead.message.headers, "replayed-from": dead.message.id}
                pipe = self.redis.pipeline(transaction=True)
                pipe.xadd(key, {"body": dead.message.body, "headers": json.dumps(headers)})  # type: ignore[arg-type]
                pipe.xdel(f"{key}:dlq", dead.id)
                new_ids.append(_text(pipe.execute()[0]))
            return new_ids

    def pending(self, topic: str) -> int:
        with self._op("pending"):
            key = self._group(topic)
            return int(self.redis.xpending(key, GROUP)["pending"])

    def close(self) -> None:
        self.redis.close()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# --- a throw-away redis-server ----------------------------------------------------------------------------------


class RedisUnavailable(RuntimeError):
    """redis-server is not installed or would not start."""


def _free_port() -> int:
    # redis-server cannot listen on port 0; a port free now is very likely still free a moment later.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """`redis-server` on 127.0.0.1 in a temporary directory, no persistence; stopped by `stop()`."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise RedisUnavailable("redis-server is not installed (Debian: apt-get install redis-server)")
        self.binary = found
        self.host, self.port = "127.0.0.1", 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> RedisServer:
        self._dir = tempfile.TemporaryDirectory(prefix="bastion-redis-")
        problem = ""
        for _ in range(REDIS_PORT_TRIES):
            self.port = _free_port()
            problem = self._launch(Path(self._dir.name))
            if not problem:
                return self
        self.stop()
        raise RedisUnavailable(f"redis-server did not start: {problem}")

    def _launch(self, workdir: Path) -> str:
        log = workdir / f"redis-{self.port}.log"
        args = [self.binary, "--port", str(self.port), "--bind", self.host, "--save", "", "--appendonly", "no",
                "--dir", str(workdir), "--logfile", str(log), "--daemonize", "no", "--protected-mode", "yes"]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return log.read_text(errors="replace")[-500:] if log.exists() else "exited"
            if self._ping():
                return ""
            threading.Event().wait(0.02)  # bounded: the server is coming up
        self._terminate()
        return f"no answer to PING within {REDIS_START_TIMEOUT_S}s"

    def _ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(REDIS_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(REDIS_STOP_TIMEOUT_S)

    def stop(self) -> None:
        self._terminate()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def queue_from_url(url: str, **kwargs: Any) -> MessageQueue:
    """A queue client from a URL: `memory://` or `redis://host:port/db?prefix=p` (apps under test use this)."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    if parts.scheme == "memory":
        return InMemoryQueue(**kwargs)
    if parts.scheme == "redis":
        prefix = parse_qs(parts.query).get("prefix", ["bastion"])[0]
        db = int(parts.path.strip("/") or 0)
        return RedisStreamQueue(parts.hostname or "127.0.0.1", parts.port or 6379, db=db, prefix=prefix, **kwargs)
    raise ValueError(f"queue URL {url!r}: scheme must be memory:// or redis://")
