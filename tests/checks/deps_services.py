"""Two third-party-style services that depend on other services, for the resilience and queue checks.

`shipments_service` guards its API with tokens checked at an OIDC provider (introspection, client_secret_post);
`audit_worker` consumes signed JSON events from a queue. Each takes keyword switches that plant one weakness;
all switches off is the safe near-miss. Both read their settings from the environment, like in production,
and `scan_service` wires them to Bastion's doubles the way a threat model with `dependencies:` does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable
from typing import Any

import httpx
import yaml
from flask import Flask, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.model import BastionConfig
from bastion.resilience import queue_from_setting, wire_dependencies
from bastion.session import discover
from bastion.target.target import Target

SHIPMENTS_DEPS = {"sso": {"kind": "oidc", "double": True, "audience": "shipments", "protects": ["GET /v1/shipments"]}}
WORKER_DEPS = {"bus": {"kind": "queue", "double": True, "topic": "audit-events", "env": {"QUEUE_URL": "BUS_URL"},
                       "consume": "POST /internal/worker/run", "effect": "GET /internal/worker/log",
                       "sample": {"id": "{canary}", "text": "hello {canary}"}, "signing": {"header": "x-hmac"}}}


def shipments_service(*, fail_open: bool = False, leak: bool = False, retries: int = 1,
                      timeout: float | None = 0.5, sticky: bool = False, any_audience: bool = False) -> Flask:
    """Shipments API; `fail_open`, `leak`, `retries`, `timeout=None`, `sticky` and `any_audience` plant flaws."""
    issuer, audience = os.environ["OIDC_ISSUER"], os.environ["OIDC_AUDIENCE"]
    client = {"client_id": os.environ["OIDC_CLIENT_ID"], "client_secret": os.environ["OIDC_CLIENT_SECRET"]}
    app = Flask("shipments")
    refused: set[str] = set()

    def check_token(token: str) -> tuple[bool | None, str]:
        problem = ""
        for _ in range(retries):
            try:
                reply = httpx.post(f"{issuer}/introspect", data={"token": token, **client}, timeout=timeout)
                reply.raise_for_status()
                info = reply.json()
                aud = info.get("aud")
                return bool(info.get("active")) and (any_audience or aud == audience), ""
            except httpx.HTTPError as exc:
                problem = f"{exc!r} calling {issuer} as {client['client_id']}:{client['client_secret']}"
        return None, problem

    @app.get("/v1/shipments")
    def shipments() -> Any:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token or token in refused:
            return {"message": "unauthorized"}, 401
        ok, problem = check_token(token)
        if ok is None:
            if sticky:
                refused.add(token)
            if fail_open:
                return {"shipments": [{"id": 1, "to": "Lyon"}]}
            return {"message": problem if leak else "try again later"}, 503
        if not ok:
            return {"message": "unauthorized"}, 401
        return {"shipments": [{"id": 1, "to": "Lyon"}]}

    @app.get("/health")
    def health() -> Any:
        return {"ok": True}

    return app


def audit_worker(*, unsafe_yaml: bool = False, drop_poison: bool = False, replay: bool = False,
                 unsigned: bool = False) -> Flask:
    """Audit-event worker; `unsafe_yaml`, `drop_poison`, `replay` and `unsigned` plant flaws."""
    queue = queue_from_setting(os.environ["BUS_URL"])
    topic, key = os.environ["QUEUE_TOPIC"], os.environ["QUEUE_SIGNING_KEY"].encode()
    app = Flask("audit_worker")
    done: list[str] = []
    seen: set[str] = set()

    def load(delivery: Any) -> Any:
        if unsafe_yaml and "yaml" in delivery.headers.get("content-type", ""):
            return yaml.unsafe_load(delivery.body)  # noqa: S506 -- the planted flaw
        return json.loads(delivery.body)

    def authentic(delivery: Any) -> bool:
        sig = delivery.headers.get("x-hmac")
        if sig is None:
            return unsigned
        return hmac.compare_digest(sig, hmac.new(key, delivery.body, hashlib.sha256).hexdigest())

    def handle(delivery: Any) -> None:
        try:
            doc = load(delivery)
        except Exception:
            (queue.ack(delivery) if drop_poison else queue.nack(delivery, "unreadable"))
            return
        if not isinstance(doc, dict) or not isinstance(doc.get("text"), str) or not authentic(delivery):
            queue.nack(delivery, "rejected")
            return
        if replay or doc.get("id") not in seen:
            seen.add(str(doc.get("id")))
            done.append(doc["text"])
        queue.ack(delivery)

    @app.post("/internal/worker/run")
    def run() -> Any:
        for _ in range(40):
            batch = queue.consume(topic, consumer="audit-worker", count=1)
            if not batch:
                break
            handle(batch[0])
        return {"ok": True}

    @app.get("/internal/worker/log")
    def log() -> Any:
        return {"done": done[-50:]}

    return app


def scan_service(factory: Callable[[], Flask], dependencies: dict[str, Any], checks: list[str]) -> ScanResult:
    """Scan the app `factory` builds, wired to the doubles of `dependencies` (started and stopped here)."""
    cfg = BastionConfig.model_validate({"target": {"app": "tests:app"}, "dependencies": dependencies})
    wired = wire_dependencies(cfg.dependencies)
    assert wired is not None
    try:
        target = Target.from_app(factory(), base_url="http://service.test")
        wired.attach(target)
        surface = discover(target, crawl=False)
        return run_scan(target, surface, ScanOptions(checks=checks, config=cfg, secrets=wired.secrets))
    finally:
        wired.close()
