"""Demo privacy area: saved payment methods, their CSV export and export archive, retention purge, audit seals.

Flaws (bastion/demo/flaws.py, privacy area):
- `pii_in_export`: the payment-methods CSV carries full card numbers and IBANs (twin: masked).
- `purge_misses_exports`: the retention purge deletes expired payment methods but not the archived
  exports holding them (twin: archived exports of the purged period go too).
- `audit_log_editable`: audit records are not sealed and the verification endpoint only counts them
  (twin: an HMAC chain over every record, keyed outside the database, checked by the endpoint).
- `audit_log_has_passwords` lives in flask_app.login (the failed-login record).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify

from bastion.demo.flask_app import admin_required, audit, csv_cell, db, login_required, planted
from bastion.demo.privacy_model import PAYMENT_RETENTION_DAYS

privacy_bp = Blueprint("demo_privacy", __name__)

# Retention of saved payment methods (the model's `retention:` says the same: bastion.demo.demo_config).
_TABLES = """
CREATE TABLE IF NOT EXISTS payment_methods (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL,
    holder TEXT NOT NULL, card_number TEXT NOT NULL, iban TEXT NOT NULL, age_days INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS export_archive (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL,
    age_days INTEGER NOT NULL, content TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_seals (audit_id INTEGER PRIMARY KEY, mac TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS privacy_seeded (done INTEGER NOT NULL);
"""
# (owner, holder, card number, IBAN, age in days): published test numbers, not real accounts.
_PAYMENT_METHODS: tuple[tuple[str, str, str, str, int], ...] = (
    ("alice", "Alice Liddell", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", 30),
    ("bob", "Bob Builder", "5500 0000 0000 0004", "DE89 3704 0044 0532 0130 00", 90),
)
_KEY = "bastion_demo.audit_key"


@privacy_bp.record_once
def _setup(state: Any) -> None:
    app: Flask = state.app
    # The seal key lives in the process, not in the database an insider could edit.
    app.extensions[_KEY] = secrets.token_bytes(32)
    with app.extensions["bastion_demo"].workspace.db.connect() as conn:
        conn.executescript(_TABLES)


def _ensure_seeded(conn: sqlite3.Connection) -> None:
    """Seed this area after the database was created or reset (reset empties every table)."""
    if conn.execute("SELECT 1 FROM privacy_seeded").fetchone():
        return
    conn.execute("INSERT INTO privacy_seeded (done) VALUES (1)")
    ids = {r["username"]: r["id"] for r in conn.execute("SELECT id, username FROM users")}
    for owner, holder, card, iban, age in _PAYMENT_METHODS:
        conn.execute("INSERT INTO payment_methods (owner_id, holder, card_number, iban, age_days) "
                     "VALUES (?,?,?,?,?)", (ids[owner], holder, card, iban, age))


@privacy_bp.before_request
def _seed_on_first_use() -> None:
    _ensure_seeded(db())


def _mask(number: str) -> str:
    digits = number.replace(" ", "")
    return "*" * (len(digits) - 4) + digits[-4:]


def _export_csv(owner_id: int, masked: bool) -> str:
    rows = db().execute("SELECT holder, card_number, iban FROM payment_methods WHERE owner_id = ? ORDER BY id",
                        (owner_id,)).fetchall()
    lines = ["holder,card,iban"]
    for r in rows:
        card, iban = (_mask(r["card_number"]), _mask(r["iban"])) if masked else (r["card_number"], r["iban"])
        lines.append(",".join(csv_cell(v) for v in (r["holder"], card, iban)))
    return "\n".join(lines) + "\n"


@privacy_bp.get("/api/payment-methods/export")
@login_required
def export_payment_methods() -> Response:
    content = _export_csv(int(g.user["id"]), masked=not planted("pii_in_export"))
    # Every export is archived for the user's download history (a copy the purge must cover).
    db().execute("INSERT INTO export_archive (owner_id, age_days, content) VALUES (?,?,?)",
                 (g.user["id"], 0, content))
    audit("payment_methods.export", f"user_id={g.user['id']}")
    return Response(content, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=payment-methods.csv"})


@privacy_bp.get("/api/exports")
@login_required
def export_history() -> Response:
    rows = db().execute("SELECT id, age_days, content FROM export_archive WHERE owner_id = ? ORDER BY id",
                        (g.user["id"],)).fetchall()
    return jsonify(exports=[{"id": r["id"], "age_days": r["age_days"], "content": r["content"]} for r in rows])


@privacy_bp.post("/admin/privacy/purge")
@admin_required
def purge() -> Response:
    conn = db()
    expired = conn.execute("SELECT id, holder FROM payment_methods WHERE age_days > ?",
                           (PAYMENT_RETENTION_DAYS,)).fetchall()
    conn.execute("DELETE FROM payment_methods WHERE age_days > ?", (PAYMENT_RETENTION_DAYS,))
    if not planted("purge_misses_exports"):
        # Exports are derived copies: those of the expired period and those holding purged records go too.
        conn.execute("DELETE FROM export_archive WHERE age_days > ?", (PAYMENT_RETENTION_DAYS,))
        for row in expired:
            conn.execute("DELETE FROM export_archive WHERE instr(content, ?) > 0", (row["holder"],))
    removed = len(expired)
    audit("privacy.purge", f"removed={removed}")
    return jsonify(removed=removed)


# --- audit trail seals ----------------------------------------------------------------------------


def _mac(key: bytes, previous: str, row: sqlite3.Row) -> str:
    record = "\x1f".join((previous, str(row["id"]), row["actor"], row["action"], row["detail"]))
    return hmac.new(key, record.encode(), hashlib.sha256).hexdigest()


def seal_pending(conn: sqlite3.Connection, key: bytes) -> None:
    """Seal audit records written since the last seal, each chained to the one before.

    Concurrent requests may seal the same records: they compute the same MACs, the second insert is ignored.
    """
    last = conn.execute("SELECT audit_id, mac FROM audit_seals ORDER BY audit_id DESC LIMIT 1").fetchone()
    previous, after = (last["mac"], last["audit_id"]) if last else ("", 0)
    for row in conn.execute("SELECT * FROM audit_log WHERE id > ? ORDER BY id", (after,)).fetchall():
        previous = _mac(key, previous, row)
        conn.execute("INSERT OR IGNORE INTO audit_seals (audit_id, mac) VALUES (?,?)", (row["id"], previous))


def seal_after_audit() -> None:
    """Called by flask_app.audit after each record (the hardened twin seals at write time)."""
    if not planted("audit_log_editable"):
        seal_pending(db(), current_app.extensions[_KEY])


def _chain_intact(conn: sqlite3.Connection, key: bytes) -> bool:
    seal_pending(conn, key)  # records written before the first seal (the seed) join the chain now
    seals = {r["audit_id"]: r["mac"] for r in conn.execute("SELECT audit_id, mac FROM audit_seals")}
    previous = ""
    for row in conn.execute("SELECT * FROM audit_log ORDER BY id").fetchall():
        expected = _mac(key, previous, row)
        if not hmac.compare_digest(seals.get(row["id"], ""), expected):
            return False
        previous = expected
    return len(seals) == conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]


@privacy_bp.get("/admin/audit/verify")
@admin_required
def verify_audit() -> Any:
    if planted("audit_log_editable"):
        # "Verification" that only checks the trail is not empty.
        count = db().execute("SELECT count(*) FROM audit_log").fetchone()[0]
        return jsonify(valid=count > 0, records=count)
    if _chain_intact(db(), current_app.extensions[_KEY]):
        return jsonify(valid=True)
    return jsonify(valid=False, error="audit chain broken"), 409


# --- hooks the demo's threat model names (bastion.demo.demo_config) --------------------------------


def tamper_audit(app: Flask) -> str:
    """Edit the newest audit record directly in the database, as an insider would; returns what changed."""
    with app.extensions["bastion_demo"].workspace.db.connect() as conn:
        row = conn.execute("SELECT id FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
        conn.execute("UPDATE audit_log SET detail = ? WHERE id = ?", ("edited by bastion", row["id"]))
    return f"audit_log record {row['id']}: detail rewritten"


def seed_expired_payment_method(app: Flask, days: int) -> list[str]:
    """Store a payment method (and an export of it) older than `days`; returns the holder name marking it."""
    marker = "Expired Holder " + secrets.token_hex(4)
    with app.extensions["bastion_demo"].workspace.db.connect() as conn:
        _ensure_seeded(conn)
        owner = conn.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()["id"]
        conn.execute("INSERT INTO payment_methods (owner_id, holder, card_number, iban, age_days) VALUES "
                     "(?,?,?,?,?)", (owner, marker, "4012 8888 8888 1881", "FR14 2004 1010 0505 0001 3M02 606",
                                     days + 30))
        conn.execute("INSERT INTO export_archive (owner_id, age_days, content) VALUES (?,?,?)",
                     (owner, days + 30, f"holder,card\n{csv_cell(marker)},\"************1881\"\n"))
    return [marker]


__all__ = ["privacy_bp", "seal_after_audit", "seed_expired_payment_method", "tamper_audit", "verify_audit"]
