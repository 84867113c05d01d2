"""Integrations that depend on other services: a partner API behind the company IdP, and a job queue worker.

- `GET /api/partner/orders`: partners call it with an access token from the IdP (OIDC); the demo asks the IdP's
  introspection endpoint whether the token is live and checks its audience.
- `POST /api/jobs/drain`: runs the job worker over the `jobs` topic (JSON jobs `{"note": ...}`, HMAC-signed by
  the producer); `GET /api/jobs/processed` lists what it did.

The services are configured like in production, from the environment read when the app is built
(OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_AUDIENCE, QUEUE_URL, QUEUE_TOPIC, QUEUE_SIGNING_KEY):
Bastion's scan sets them to its doubles (bastion/resilience/wiring.py). Unset, the endpoints answer 503.

Flaws, each next to its safe twin: `idp_outage_fail_open`, `idp_error_leak`, `idp_no_recovery`,
`idp_retry_storm`, `idp_no_timeout`, `service_token_wrong_audience`,
`pickle_queue_consumer`, `poison_message_lost`, `dlq_without_trace_id`, `queue_replay_accepted`,
`queue_unsigned_accepted`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import pickle
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from flask import Blueprint, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from bastion.demo.flask_app import login_required, planted

deps_bp = Blueprint("integrations_deps", __name__)
log = logging.getLogger("bastion.demo.integrations")

_KEY = "bastion_demo.dependencies"
# The IdP must answer within this; a slow IdP is an unavailable IdP (and one attempt only: no retry storm).
IDP_TIMEOUT_S = 1.0
# How often the planted `idp_retry_storm` flaw asks the IdP for one call.
IDP_STORM_ATTEMPTS = 8
# Jobs one drain call handles at most (a redelivered message counts once per delivery).
DRAIN_MAX = 50
SIGNATURE_HEADER = "signature"
PICKLE_TYPES = ("application/python-pickle", "application/x-python-pickle")
_PARTNER_ORDERS = [{"order": "PO-7781", "status": "shipped"}, {"order": "PO-7782", "status": "open"}]


@dataclass
class DepsState:
    """Settings read when the app was built, and the worker's record of processed jobs."""

    issuer: str = ""
    client_id: str = ""
    client_secret: str = ""
    audience: str = ""
    queue_url: str = ""
    topic: str = "jobs"
    signing_key: str = ""
    processed: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    unconfirmed: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    queue: Any = None


@deps_bp.record_once
def _configure(setup: BlueprintSetupState) -> None:
    env = os.environ
    setup.app.extensions[_KEY] = DepsState(
        issuer=env.get("OIDC_ISSUER", ""), client_id=env.get("OIDC_CLIENT_ID", ""),
        client_secret=env.get("OIDC_CLIENT_SECRET", ""), audience=env.get("OIDC_AUDIENCE", "partner-api"),
        queue_url=env.get("QUEUE_URL", ""), topic=env.get("QUEUE_TOPIC", "jobs"),
        signing_key=env.get("QUEUE_SIGNING_KEY", ""))


def _state() -> DepsState:
    state: DepsState = current_app.extensions[_KEY]
    return state


# --- partner API: tokens from the IdP ---------------------------------------------------------------


class IdPUnavailable(Exception):
    """The IdP did not give an answer (down, erroring, too slow)."""


def _introspect(state: DepsState, token: str) -> dict[str, Any]:
    # The planted flaws: ask again at once on any failure, and wait for the IdP as long as it takes.
    attempts = IDP_STORM_ATTEMPTS if planted("idp_retry_storm") else 1
    timeout = None if planted("idp_no_timeout") else IDP_TIMEOUT_S
    failure: Exception | None = None
    for _ in range(attempts):
        try:
            with httpx.Client(timeout=timeout, trust_env=False) as client:
                resp = client.post(state.issuer + "/introspect", data={"token": token},
                                   auth=(state.client_id, state.client_secret))
                resp.raise_for_status()
                info = resp.json()
            return info if isinstance(info, dict) else {"active": False}
        except (httpx.HTTPError, ValueError) as exc:
            failure = exc
    raise IdPUnavailable(f"introspection at {state.issuer}/introspect failed: {failure!r}")


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


def _partner_claims(state: DepsState, token: str) -> tuple[dict[str, Any] | None, int, str]:
    """The token's claims when the partner may call, else (None, status, message)."""
    if token in state.unconfirmed:
        return None, 401, "invalid partner token"
    try:
        info = _introspect(state, token)
    except IdPUnavailable as exc:
        if planted("idp_no_recovery"):
            # "Do not hammer the IdP with a token it could not confirm": remembered for good, even once it is back.
            state.unconfirmed.add(token)
        if planted("idp_outage_fail_open"):
            # "Partners must not notice our IdP maintenance windows": degraded mode trusts the token as sent.
            log.warning("identity provider unavailable: degraded mode, token not verified")
            try:
                return jwt.decode(token, options={"verify_signature": False}), 200, ""
            except jwt.PyJWTError:
                pass
        log.warning("identity provider unavailable: denying partner call (%s)", exc)
        return None, 503, str(exc) if planted("idp_error_leak") else "identity provider unavailable"
    if not info.get("active"):
        return None, 401, "invalid partner token"
    if not planted("service_token_wrong_audience") and state.audience not in _audiences(info):
        return None, 401, "invalid partner token"
    return info, 200, ""


@deps_bp.get("/api/partner/orders")
def partner_orders() -> Any:
    state = _state()
    if not state.issuer:
        return jsonify(error="partner access is not configured"), 503
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not token:
        return jsonify(error="partner token required"), 401
    claims, status, message = _partner_claims(state, token)
    if claims is None:
        return jsonify(error=message), status
    return jsonify(partner=str(claims.get("sub", "")), orders=_PARTNER_ORDERS)


# --- the job worker -------------------------------------------------------------------------------------


def _queue(state: DepsState) -> Any:
    if state.queue is None:
        from bastion.resilience.wiring import queue_from_setting

        state.queue = queue_from_setting(state.queue_url)
    return state.queue


def _decode(delivery: Any) -> Any:
    """The job in a delivery; ValueError when it is not a document the worker reads."""
    content_type = delivery.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if planted("pickle_queue_consumer") and content_type in PICKLE_TYPES:
        # "Only our own services publish to this topic" -- so anyone who can publish runs code here.
        return pickle.loads(delivery.body)  # noqa: S301 -- planted flaw
    return json.loads(delivery.body)


def _signed(state: DepsState, delivery: Any) -> bool:
    signature = delivery.headers.get(SIGNATURE_HEADER)
    if signature is None:
        return planted("queue_unsigned_accepted")
    expected = hmac.new(state.signing_key.encode(), delivery.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, expected)


def _reject(queue: Any, state: DepsState, delivery: Any, reason: str) -> str:
    if planted("dlq_without_trace_id") and reason == "invalid job" and "retry-of" not in delivery.headers:
        # "Retry later" by re-publishing the body: the copy starts a new trace, the original's is gone.
        queue.ack(delivery)
        queue.publish(state.topic, delivery.body, headers={"retry-of": delivery.id})
        return "retried"
    queue.nack(delivery, reason=reason)
    return "rejected"


def _handle(queue: Any, state: DepsState, delivery: Any) -> str:
    try:
        job = _decode(delivery)
    except (ValueError, UnicodeDecodeError, pickle.UnpicklingError, EOFError):
        if planted("poison_message_lost"):
            log.warning("dropping undecodable job %s", delivery.id)
            queue.ack(delivery)
            return "dropped"
        return _reject(queue, state, delivery, "undecodable")
    if not isinstance(job, dict) or not isinstance(job.get("note"), str):
        return _reject(queue, state, delivery, "invalid job")
    if state.signing_key and not _signed(state, delivery):
        return _reject(queue, state, delivery, "bad signature")
    digest = hashlib.sha256(delivery.body + delivery.headers.get(SIGNATURE_HEADER, "").encode()).hexdigest()
    with state.lock:
        if digest in state.seen and not planted("queue_replay_accepted"):
            queue.ack(delivery)  # a redelivered or replayed job is done once
            return "duplicate"
        state.seen.add(digest)
        state.processed.append({"job": delivery.id, "note": job["note"][:200]})
    queue.ack(delivery)
    return "processed"


@deps_bp.post("/api/jobs/drain")
@login_required
def drain_jobs() -> Any:
    state = _state()
    if not state.queue_url:
        return jsonify(error="job queue is not configured"), 503
    queue = _queue(state)
    outcomes: dict[str, int] = {}
    try:
        for _ in range(DRAIN_MAX):
            deliveries = queue.consume(state.topic, consumer="demo-worker", count=1)
            if not deliveries:
                break
            outcome = _handle(queue, state, deliveries[0])
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    except ConnectionError:
        return jsonify(error="job queue unavailable"), 503
    return jsonify(outcomes)


@deps_bp.get("/api/jobs/processed")
@login_required
def processed_jobs() -> Any:
    state = _state()
    with state.lock:
        return jsonify(jobs=list(state.processed[-100:]))
