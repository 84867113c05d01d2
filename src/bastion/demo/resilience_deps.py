"""Staff pages that depend on stores besides the shop database: a permissions database and a revocation cache.

- `GET /api/deps/ledger`: the finance ledger; who may read it is in a separate SQLite permissions database
  (`permissions(username, resource, allowed)`: admin yes, everyone else no).
- `GET /api/deps/statement`: the account statement; subjects whose sessions were revoked (bob, after a
  suspected account takeover) are on a revocation list in a Redis cache (CACHE_URL, read when the app is
  built). Without CACHE_URL the statement answers 503.

Flaws, each next to its safe twin: `permission_db_fail_open` (the permission lookup swallows any error and
grants), `revocation_cache_fail_open` (a cache error means "not revoked"). The hardened twins answer 503.
The scan declares both stores (`store_dependencies()`): the permissions file by `path` (Bastion fails new
connections to it), the cache as a redis-server double — only when redis-server is installed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import threading
from contextlib import closing
from typing import Any

from flask import Blueprint, current_app, g, jsonify
from flask.blueprints import BlueprintSetupState

from bastion.demo.flask_app import login_required, planted

resilience_bp = Blueprint("resilience_deps", __name__)

_KEY = "bastion_demo.stores"
PERMISSIONS_ENV = "PERMISSIONS_DB"
REVOKED_KEY = "revoked-subjects"
# Connecting to or asking the cache gives up after this (a hung cache is an unavailable cache).
CACHE_TIMEOUT_S = 1.0
_PERMISSIONS = (("admin", "ledger", 1), ("alice", "ledger", 0), ("bob", "ledger", 0), ("guest", "ledger", 0))
_REVOKED = ("bob",)
_LEDGER = [{"entry": "GL-2024-118", "account": "4000 revenue", "amount_cents": 1_284_500},
           {"entry": "GL-2024-119", "account": "6100 payroll", "amount_cents": -842_000}]
_dir_lock = threading.Lock()
_dir: list[str] = []


def permissions_db_path() -> str:
    """The permissions database file: $PERMISSIONS_DB, else one per process in a temporary directory."""
    configured = os.environ.get(PERMISSIONS_ENV)
    if configured:
        return configured
    with _dir_lock:
        if not _dir:
            _dir.append(tempfile.mkdtemp(prefix="bastion-demo-stores-"))
            atexit.register(shutil.rmtree, _dir[0], True)
    return os.path.join(_dir[0], "permissions.sqlite3")


def store_dependencies() -> dict[str, Any]:
    """The `dependencies:` entries for these stores (the revocation cache needs redis-server)."""
    deps: dict[str, Any] = {"permissions": {"kind": "sqlite", "path": permissions_db_path(),
                                            "protects": ["GET /api/deps/ledger"]}}
    if shutil.which("redis-server"):
        deps["revocations"] = {"kind": "cache", "double": True, "protects": ["GET /api/deps/statement"]}
    return deps


class _Stores:
    """Where the stores are (read when the app is built) and the cache client."""

    def __init__(self, permissions: str, cache_url: str) -> None:
        self.permissions, self.cache_url = permissions, cache_url
        self.cache: Any = None
        if cache_url:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # One reconnect (a pooled connection may have been cut), no back-off: a down cache fails fast.
            self.cache = redis.Redis.from_url(cache_url, socket_timeout=CACHE_TIMEOUT_S,
                                              socket_connect_timeout=CACHE_TIMEOUT_S, retry=Retry(NoBackoff(), 1))


@resilience_bp.record_once
def _configure(setup: BlueprintSetupState) -> None:
    stores = _Stores(permissions_db_path(), os.environ.get("CACHE_URL", ""))
    setup.app.extensions[_KEY] = stores
    with closing(sqlite3.connect(stores.permissions)) as conn, conn:
        conn.execute("CREATE TABLE IF NOT EXISTS permissions (username TEXT, resource TEXT, allowed INTEGER, "
                     "PRIMARY KEY (username, resource))")
        conn.executemany("INSERT OR REPLACE INTO permissions VALUES (?, ?, ?)", _PERMISSIONS)
    if stores.cache is not None:
        import redis

        try:
            stores.cache.sadd(REVOKED_KEY, *_REVOKED)
        except redis.RedisError:
            pass  # the cache is down at start: the statement answers 503 (or fails open) until it is back


def _stores() -> _Stores:
    stores: _Stores = current_app.extensions[_KEY]
    return stores


class StoreUnavailable(Exception):
    """A store did not answer."""


def _may_read(username: str, resource: str) -> bool:
    try:
        with closing(sqlite3.connect(_stores().permissions)) as conn:
            row = conn.execute("SELECT allowed FROM permissions WHERE username = ? AND resource = ?",
                               (username, resource)).fetchone()
    except Exception as exc:  # noqa: BLE001 -- the planted flaw's shape: any error at all
        if planted("permission_db_fail_open"):
            # "Don't lock staff out during database maintenance": grant when the lookup fails.
            return True
        raise StoreUnavailable("permissions") from exc
    return bool(row and row[0])


def _revoked(username: str) -> bool:
    import redis

    try:
        return bool(_stores().cache.sismember(REVOKED_KEY, username))
    except redis.RedisError as exc:
        if planted("revocation_cache_fail_open"):
            # "The cache is only an optimisation": when it is down, nobody counts as revoked.
            return False
        raise StoreUnavailable("revocations") from exc


@resilience_bp.get("/api/deps/ledger")
@login_required
def ledger() -> Any:
    try:
        allowed = _may_read(str(g.user["username"]), "ledger")
    except StoreUnavailable:
        return jsonify(error="the ledger is unavailable, try again later"), 503
    if not allowed:
        return jsonify(error="not allowed to read the ledger"), 403
    return jsonify(ledger=_LEDGER)


@resilience_bp.get("/api/deps/statement")
@login_required
def statement() -> Any:
    if _stores().cache is None:
        return jsonify(error="statements are not configured"), 503
    username = str(g.user["username"])
    try:
        revoked = _revoked(username)
    except StoreUnavailable:
        return jsonify(error="statements are unavailable, try again later"), 503
    if revoked:
        return jsonify(error="session revoked: sign in again after contacting support"), 403
    return jsonify(holder=username, balance_cents=12_450, currency="EUR")
