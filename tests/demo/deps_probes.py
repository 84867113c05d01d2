"""Probes for the demo's dependency flaws (bastion/demo/integrations_deps.py), for PROBES.

These flaws only show with the app wired to Bastion's doubles (IdP, job queue), as `bastion scan --demo` does:
each probe rebuilds the app it was handed (same flaws) with the demo's declared dependencies wired, then
breaks or feeds the dependency and watches the answer, the IdP's fault log or the broker's dead letters.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bastion.demo import create_app, demo_config
from bastion.doubles.faults import FaultInjector
from bastion.identity.jwt import forge
from bastion.resilience import WiredDoubles, wire_dependencies

from .clients import flask_client

AUDIENCE = "partner-api"
PARTNER = "/api/partner/orders"
# The latency probe releases the hung IdP after this; the hardened app gives up before (1 s timeout).
RELEASE_S = 2.5


@dataclass
class Wired:
    client: httpx.Client
    doubles: WiredDoubles

    @property
    def idp(self) -> Any:
        return self.doubles.deps["idp"].double

    @property
    def queue(self) -> Any:
        return self.doubles.deps["jobs"].double

    def token(self, audience: str = AUDIENCE) -> str:
        return str(self.idp.issue("partner-1", audience=audience))

    def partner(self, token: str) -> httpx.Response:
        return self.client.get(PARTNER, headers={"Authorization": f"Bearer {token}"})

    def publish(self, body: bytes, *, signed: bool = True, **kwargs: Any) -> str:
        headers = dict(kwargs.pop("headers", {}))
        if signed:
            key = self.doubles.deps["jobs"].raw["QUEUE_SIGNING_KEY"].encode()
            headers["signature"] = hmac.new(key, body, hashlib.sha256).hexdigest()
        return str(self.queue.publish("jobs", body, headers=headers, **kwargs))

    def drain(self) -> None:
        assert self.client.post("/api/jobs/drain").status_code == 200

    def processed(self) -> str:
        return self.client.get("/api/jobs/processed").text


@contextmanager
def wired(c: httpx.Client) -> Iterator[Wired]:
    """The handed app's flaws, rebuilt with the demo's dependencies wired to doubles; bob logged in."""
    app = c._transport.app  # type: ignore[attr-defined]  # the WSGI app flask_client wraps
    flaws = ",".join(sorted(app.extensions["bastion_demo"].flaws)) or "none"
    doubles = wire_dependencies(demo_config().dependencies)
    assert doubles is not None
    try:
        rebuilt = create_app(flaws)
        doubles.restore_environment()
        client = flask_client(rebuilt)
        from bastion.demo.db import USERS

        password = next(pw for name, _, pw, _, _ in USERS if name == "bob")
        assert client.post("/login", data={"username": "bob", "password": password}).status_code == 302
        yield Wired(client, doubles)
    finally:
        doubles.close()


def _idp_outage_fail_open(c: httpx.Client) -> bool:
    with wired(c) as w, FaultInjector().outage(w.idp):
        forged = forge({"sub": "intruder", "aud": AUDIENCE}, alg="none")
        return w.partner(forged).status_code == 200


def _idp_error_leak(c: httpx.Client) -> bool:
    with wired(c) as w, FaultInjector().outage(w.idp):
        r = w.partner("not-a-token")
        return r.status_code == 503 and w.idp.issuer.split("//")[1] in r.text


def _idp_no_recovery(c: httpx.Client) -> bool:
    with wired(c) as w:
        token = w.token()
        with FaultInjector().errors(w.idp):
            w.partner(token)
        return w.partner(token).status_code != 200


def _idp_retry_storm(c: httpx.Client) -> bool:
    with wired(c) as w, FaultInjector().errors(w.idp):
        w.partner(w.token())
        return w.idp.fault_state.count("error") >= 8


def _idp_no_timeout(c: httpx.Client) -> bool:
    """Judged by the fault log, not a clock: did the app answer only once the hung IdP was released?"""
    with wired(c) as w:
        token = w.token()
        handle = FaultInjector().latency(w.idp, 30.0)
        timer = threading.Timer(RELEASE_S, handle.restore)
        timer.start()
        try:
            w.partner(token)
            answered_while_hung = handle.state.active is handle.fault
        finally:
            timer.cancel()
            handle.restore()
        return not answered_while_hung


def _service_token_wrong_audience(c: httpx.Client) -> bool:
    with wired(c) as w:
        assert w.partner(w.token()).status_code == 200
        return w.partner(w.token(audience="billing")).status_code == 200


def _pickle_queue_consumer(c: httpx.Client) -> bool:
    with wired(c) as w:
        w.publish(pickle.dumps({"note": "pickled-job"}), headers={"content-type": "application/python-pickle"})
        w.drain()
        return "pickled-job" in w.processed()


def _poison_message_lost(c: httpx.Client) -> bool:
    with wired(c) as w:
        mid = w.publish(b"\xff\xfe not a job")
        w.drain()
        return mid not in [d.message.id for d in w.queue.dead_letters("jobs")]


def _dlq_without_trace_id(c: httpx.Client) -> bool:
    with wired(c) as w:
        w.publish(json.dumps({"kind": "unknown"}).encode(), trace_id="trace-42")
        w.drain()
        [dead] = w.queue.dead_letters("jobs")
        return dead.message.trace_id != "trace-42"


def _queue_replay_accepted(c: httpx.Client) -> bool:
    with wired(c) as w:
        body = json.dumps({"note": "pay-once"}).encode()
        w.publish(body)
        w.publish(body)
        w.drain()
        return w.processed().count("pay-once") == 2


def _queue_unsigned_accepted(c: httpx.Client) -> bool:
    with wired(c) as w:
        w.publish(json.dumps({"note": "forged-job"}).encode(), signed=False)
        w.drain()
        return "forged-job" in w.processed()


DEPS_PROBES: dict[str, Callable[..., bool]] = {
    "idp_outage_fail_open": _idp_outage_fail_open, "idp_error_leak": _idp_error_leak,
    "idp_no_recovery": _idp_no_recovery, "idp_retry_storm": _idp_retry_storm, "idp_no_timeout": _idp_no_timeout,
    "service_token_wrong_audience": _service_token_wrong_audience, "pickle_queue_consumer": _pickle_queue_consumer,
    "poison_message_lost": _poison_message_lost, "dlq_without_trace_id": _dlq_without_trace_id,
    "queue_replay_accepted": _queue_replay_accepted, "queue_unsigned_accepted": _queue_unsigned_accepted,
}
