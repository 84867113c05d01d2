"""Resilience checks with a database or a cache down: the demo's two flaws and third-party services."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.identity.session import RoleSession
from bastion.model import BastionConfig
from bastion.resilience import wire_dependencies
from bastion.session import discover
from bastion.target.target import Target
from bastion.testing import findings_of

RESILIENCE = ["resilience.error-leak", "resilience.fail-open", "resilience.no-recovery", "resilience.retry-storm",
              "resilience.timeout"]
QUEUES = ["queues.dlq-trace", "queues.poison-lost", "queues.replay-accepted", "queues.service-token",
          "queues.unsafe-deserialization", "queues.unsigned-accepted"]
MINE = RESILIENCE + QUEUES  # the same list as tests/checks/test_resilience.py: one cached demo scan per twin
KEYS = {"reader": "key-reader-7f3a", "intern": "key-intern-19bc"}


def needs_redis() -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server missing; CI must run the cache tests (.ci/run installs redis-server)")
        pytest.skip("redis-server is not installed")


# --- the demo ------------------------------------------------------------------------------------------------


def test_permission_db_flaw_is_found(scan_demo: Callable[..., ScanResult]) -> None:
    found = [f for f in findings_of(scan_demo(flaws="all", checks=MINE), "resilience.fail-open")
             if f.location.path == "/api/deps/ledger"]
    assert len(found) == 1
    assert "dependency 'permissions' (sqlite)" in found[0].title and "role alice let in" in found[0].title


def test_revocation_cache_flaw_is_found(scan_demo: Callable[..., ScanResult]) -> None:
    needs_redis()
    found = [f for f in findings_of(scan_demo(flaws="all", checks=MINE), "resilience.fail-open")
             if f.location.path == "/api/deps/statement"]
    assert len(found) == 1
    assert "dependency 'revocations' (cache)" in found[0].title and "role bob let in" in found[0].title
    evidence = " ".join(e.summary + e.content for e in found[0].evidence)
    assert "<revocations double>" in evidence or "127.0.0.1:" not in evidence  # no ephemeral port in findings


def test_hardened_stores_scan_clean(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=MINE)
    assert [f.title for f in result.findings if f.location.path.startswith("/api/deps/")] == []
    assert not [c.errors for c in result.checks if c.errors]


def test_permission_flaw_alone_is_one_finding(scan_demo: Callable[..., ScanResult]) -> None:
    [f] = findings_of(scan_demo(flaws="permission_db_fail_open", checks=["resilience.fail-open"]),
                      "resilience.fail-open")
    assert f.location.path == "/api/deps/ledger" and f.confidence.value == "confirmed"


# --- third-party services ------------------------------------------------------------------------------------


def scan_with_keys(factory: Callable[[], Any], dependencies: dict[str, Any], checks: list[str]) -> ScanResult:
    """Scan the app `factory` builds, wired to `dependencies`, as two API-key roles."""
    cfg = BastionConfig.model_validate({"target": {"app": "svc:app"}, "dependencies": dependencies})
    wired = wire_dependencies(cfg.dependencies)
    assert wired is not None
    try:
        target = Target.from_app(factory(), base_url="http://service.test")
        wired.attach(target)
        roles = {name: RoleSession(name, headers={"X-Api-Key": key}, secrets={key}) for name, key in KEYS.items()}
        return run_scan(target, discover(target, crawl=False),
                        ScanOptions(checks=checks, config=cfg, roles=roles, secrets=wired.secrets))
    finally:
        wired.close()


def reports_service(db: Path, *, fail_open: bool) -> Flask:
    """Quarterly reports; who may read them is in a SQLite grants table, looked up on every call."""
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("CREATE TABLE IF NOT EXISTS grants (api_key TEXT PRIMARY KEY, reports INTEGER)")
        conn.executemany("INSERT OR REPLACE INTO grants VALUES (?, ?)", [(KEYS["reader"], 1), (KEYS["intern"], 0)])
    app = Flask("reports")

    def granted(key: str) -> bool:
        try:
            with closing(sqlite3.connect(db)) as conn:
                row = conn.execute("SELECT reports FROM grants WHERE api_key = ?", (key,)).fetchone()
        except Exception:  # noqa: BLE001 -- the weakness under test
            if fail_open:
                return True
            raise
        return bool(row and row[0])

    @app.get("/v2/reports")
    def reports() -> Any:
        try:
            ok = granted(request.headers.get("X-Api-Key", ""))
        except sqlite3.Error:
            return {"message": "temporarily unavailable"}, 503
        if not ok:
            return {"message": "forbidden"}, 403
        return {"quarter": "Q3", "revenue": 1204}

    return app


@pytest.mark.parametrize("fail_open", [True, False])
def test_third_party_sqlite_permission_lookup(tmp_path: Path, fail_open: bool) -> None:
    db = tmp_path / "grants.sqlite3"
    deps = {"grants": {"kind": "sqlite", "path": str(db), "protects": ["GET /v2/reports"]}}
    result = scan_with_keys(lambda: reports_service(db, fail_open=fail_open), deps, RESILIENCE)
    found = [(f.check_id, f.location.path) for f in result.findings]
    if fail_open:
        assert found == [("resilience.fail-open", "/v2/reports")]
        assert "dependency 'grants' (sqlite)" in result.findings[0].title
    else:
        assert found == []
    assert not [c.errors for c in result.checks if c.errors]
    with closing(sqlite3.connect(db)) as conn:  # the outage is over: the file works for everyone again
        assert conn.execute("SELECT count(*) FROM grants").fetchone()[0] == 2


def sessions_service(*, fail_open: bool) -> Any:
    """A FastAPI service keeping blocked API keys in a Redis cache (CACHE_URL from the environment)."""
    import redis
    from fastapi import FastAPI, Header
    from fastapi.responses import JSONResponse
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    cache = redis.Redis.from_url(os.environ["CACHE_URL"], socket_timeout=1, socket_connect_timeout=1,
                                 retry=Retry(NoBackoff(), 1))
    cache.sadd("blocked-keys", KEYS["intern"])
    app = FastAPI()

    @app.get("/v1/balance")
    def balance(x_api_key: str = Header("")) -> Any:
        if x_api_key not in KEYS.values():
            return JSONResponse({"detail": "unauthorized"}, 401)
        try:
            blocked = bool(cache.sismember("blocked-keys", x_api_key))
        except redis.RedisError:
            if not fail_open:
                return JSONResponse({"detail": "unavailable"}, 503)
            blocked = False
        if blocked:
            return JSONResponse({"detail": "key revoked"}, 403)
        return {"balance": 310, "currency": "EUR"}

    return app


@pytest.mark.parametrize("fail_open", [True, False])
def test_third_party_fastapi_revocation_cache(fail_open: bool) -> None:
    needs_redis()
    deps = {"blocklist": {"kind": "cache", "double": True, "protects": ["GET /v1/balance"]}}
    result = scan_with_keys(lambda: sessions_service(fail_open=fail_open), deps, RESILIENCE)
    found = [(f.check_id, f.location.path) for f in result.findings]
    assert found == ([("resilience.fail-open", "/v1/balance")] if fail_open else [])
    assert not [c.errors for c in result.checks if c.errors]
