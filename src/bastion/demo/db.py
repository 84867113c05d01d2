"""The demo's SQLite database: one fresh, deterministically seeded file per app instance."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import time
from functools import cache
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

_MD5_PREFIX = "md5$"
# A time-based SQL injection payload must not be able to stall a worker for longer than this.
MAX_SLEEP_PER_CONNECTION = 3.0

_SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT NOT NULL,
                    password_hash TEXT NOT NULL, role TEXT NOT NULL, display_name TEXT NOT NULL,
                    bio TEXT NOT NULL DEFAULT '', city TEXT NOT NULL DEFAULT '');
CREATE TABLE sessions (sid TEXT PRIMARY KEY, user_id INTEGER, mfa_pending INTEGER NOT NULL DEFAULT 0,
                       created_at REAL NOT NULL DEFAULT 0, seen_at REAL NOT NULL DEFAULT 0);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
                       price_cents INTEGER NOT NULL, description TEXT NOT NULL);
CREATE TABLE invoices (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, number TEXT NOT NULL,
                       customer TEXT NOT NULL, amount_cents INTEGER NOT NULL, status TEXT NOT NULL,
                       shared INTEGER NOT NULL DEFAULT 0);
CREATE TABLE tenants (id INTEGER PRIMARY KEY, slug TEXT UNIQUE NOT NULL, name TEXT NOT NULL);
CREATE TABLE tenant_usage (tenant_id INTEGER NOT NULL, hits INTEGER NOT NULL DEFAULT 0);
CREATE TABLE guestbook (id INTEGER PRIMARY KEY, name TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE password_resets (token TEXT PRIMARY KEY, user_id INTEGER NOT NULL, used INTEGER DEFAULT 0);
CREATE TABLE outbox (id INTEGER PRIMARY KEY, recipient TEXT NOT NULL, subject TEXT NOT NULL,
                     body TEXT NOT NULL);
CREATE TABLE webhooks (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, url TEXT NOT NULL,
                       events TEXT NOT NULL);
CREATE TABLE imports (id INTEGER PRIMARY KEY, owner_id INTEGER, records INTEGER NOT NULL,
                      summary TEXT NOT NULL);
CREATE TABLE newsletter (email TEXT PRIMARY KEY);
CREATE TABLE mfa_users (user_id INTEGER PRIMARY KEY, totp_secret TEXT NOT NULL,
                        failures INTEGER NOT NULL DEFAULT 0);
CREATE TABLE otp_used (user_id INTEGER NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (user_id, step));
CREATE TABLE trusted_devices (token TEXT PRIMARY KEY, user_id INTEGER NOT NULL);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, actor TEXT NOT NULL, action TEXT NOT NULL,
                        detail TEXT NOT NULL);
CREATE TABLE login_failures (username TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0,
                             locked_until REAL NOT NULL DEFAULT 0);
CREATE TABLE reset_requests (address TEXT NOT NULL, at REAL NOT NULL);
"""

# (username, email, password, role, display name)
USERS: tuple[tuple[str, str, str, str, str], ...] = (
    ("admin", "admin@democorp.example", "admin-Corr3ct-Horse", "admin", "Site Admin"),
    ("alice", "alice@democorp.example", "alice-Wonder1and", "user", "Alice Liddell"),
    ("bob", "bob@democorp.example", "bob-Bu1lder-42", "user", "Bob Builder"),
    # The public demo account the login page advertises.
    ("guest", "guest@democorp.example", "guest", "user", "Guest"),
)

# TOTP seeds (base32) of the accounts with a second factor (bastion/demo/mfa.py).
TOTP_SECRETS: dict[str, str] = {
    "admin": "4AKVZXVJOUCBNBS7BQBPUFXZ7DCJORHX",
    "alice": "OVEUMLQITZCHD2SOBLQUR45DR4SVS4ZB",
}

PRODUCTS: tuple[tuple[str, str, int, str], ...] = (
    ("Pocket Guide to Threat Modelling", "books", 1999, "A short field guide."),
    ("Secure Coding in Python", "books", 3499, "Patterns for safer services."),
    ("Incident Response Handbook", "books", 2899, "What to do at 3 a.m."),
    ("Torx Screwdriver Set", "tools", 2450, "Eight bits, one handle."),
    ("Digital Multimeter", "tools", 4999, "Auto-ranging, with probes."),
    ("Cable Tester", "tools", 1899, "RJ45 and RJ11."),
    ("Raised Garden Bed", "garden", 8900, "Untreated larch."),
    ("Watering Can", "garden", 1200, "Ten litres."),
    ("Lock-picking Practice Kit", "toys", 2999, "Transparent padlocks."),
    ("Cipher Wheel", "toys", 799, "Caesar, Vigenere and friends."),
)

# (owner username, number, customer, amount in cents, status, shared with the public)
INVOICES: tuple[tuple[str, str, str, int, str, int], ...] = (
    ("alice", "INV-1001", "Acme Corp", 125000, "paid", 1),
    ("alice", "INV-1002", "Globex", 98000, "open", 0),
    ("alice", "INV-1003", "Initech", 45050, "overdue", 0),
    ("bob", "INV-2001", "Umbrella plc", 310000, "paid", 0),
    ("bob", "INV-2002", "Hooli", 7700, "open", 1),
    ("guest", "INV-3001", "Example Ltd", 1000, "paid", 1),
    ("guest", "INV-3002", "Sample GmbH", 2500, "draft", 0),
    ("admin", "INV-9001", "Internal", 1, "void", 0),
)

TENANTS: tuple[tuple[str, str], ...] = (("acme", "Acme Corp"), ("globex", "Globex"))

GUESTBOOK: tuple[tuple[str, str], ...] = (
    ("Alice", "Lovely shop, fast delivery."),
    ("Bob", "The multimeter works great."),
)


def _md5_planted() -> bool:
    """Whether the Flask demo serving this request plants `md5_password_hashes` (bastion/demo/notes.py area)."""
    from flask import current_app, has_app_context

    state = current_app.extensions.get("bastion_demo") if has_app_context() else None
    return state is not None and "md5_password_hashes" in state.flaws


def hash_password(password: str) -> str:
    if _md5_planted():
        # "Fast logins": one unsalted MD5 round for new and changed passwords.
        return _MD5_PREFIX + hashlib.md5(password.encode()).hexdigest()  # noqa: S324 -- planted flaw
    return generate_password_hash(password, method="pbkdf2:sha256:60000")


@cache
def _seed_password_hash(password: str) -> str:
    """Hash once per process: seeding many apps must stay fast."""
    return hash_password(password)


def verify_password(stored_hash: str, password: str) -> bool:
    if stored_hash.startswith(_MD5_PREFIX):
        # Only an app planting the flaw issues these (a cached dummy hash may carry one into another app).
        return _md5_planted() and hmac.compare_digest(
            stored_hash[len(_MD5_PREFIX):], hashlib.md5(password.encode()).hexdigest())  # noqa: S324
    return check_password_hash(stored_hash, password)


class Database:
    """A SQLite file in `directory`; every `connect()` returns a new connection (one per request)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "demo.sqlite3"
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            _seed(conn)

    def reset(self) -> None:
        """Back to the seeded data; sessions survive so logged-in clients stay logged in."""
        with self.connect() as conn:
            tables = [row["name"] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
            conn.execute("BEGIN")
            for table in tables:
                if table != "sessions":
                    conn.execute(f"DELETE FROM {table}")  # noqa: S608 -- names from sqlite_master
            conn.execute("COMMIT")
            _seed(conn)

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=10000")
        _register_sleep(conn)
        return conn


def _register_sleep(conn: sqlite3.Connection) -> None:
    """Give SQLite a MySQL-like sleep(seconds), capped per connection (a request uses one connection)."""
    budget = [MAX_SLEEP_PER_CONNECTION]

    def sleep(seconds: object) -> int:
        try:
            wanted = float(seconds)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return 0
        delay = max(0.0, min(wanted, budget[0]))
        budget[0] -= delay
        if delay:
            time.sleep(delay)
        return 0

    conn.create_function("sleep", 1, sleep)


def _seed(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    for username, email, password, role, display in USERS:
        conn.execute("INSERT INTO users (username, email, password_hash, role, display_name) "
                     "VALUES (?,?,?,?,?)", (username, email, _seed_password_hash(password), role, display))
    conn.executemany("INSERT INTO products (name, category, price_cents, description) VALUES (?,?,?,?)",
                     PRODUCTS)
    ids = {row["username"]: row["id"] for row in conn.execute("SELECT id, username FROM users")}
    conn.executemany("INSERT INTO mfa_users (user_id, totp_secret) VALUES (?,?)",
                     [(ids[name], secret) for name, secret in TOTP_SECRETS.items()])
    conn.executemany(
        "INSERT INTO invoices (owner_id, number, customer, amount_cents, status, shared) "
        "VALUES (?,?,?,?,?,?)",
        [(ids[owner], *rest) for owner, *rest in INVOICES])
    conn.executemany("INSERT INTO tenants (slug, name) VALUES (?,?)", TENANTS)
    conn.executemany("INSERT INTO guestbook (name, message) VALUES (?,?)", GUESTBOOK)
    conn.execute("INSERT INTO audit_log (actor, action, detail) VALUES (?,?,?)",
                 ("system", "seed", "database created"))
    conn.execute("COMMIT")
