"""Demo right-to-erasure: the customer search index and the erasure job that removes a user everywhere.

Flaw (bastion/demo/flaws.py, privacy area):
- `erasure_misses_search_index`: the erasure job deletes the account and what it owns but leaves the
  user's entry in the customer search index (twin: the index entry goes too).
The model's `erasure:` (bastion.demo.privacy_model) names the job and the stores Bastion re-reads.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, Flask, Response, jsonify

from bastion.demo.flask_app import admin_required, db

erasure_bp = Blueprint("demo_privacy_erasure", __name__)

_TABLES = """
CREATE TABLE IF NOT EXISTS search_index (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS search_index_built (done INTEGER NOT NULL);
"""
# Tables holding rows a user owns (column naming the user): the erasure job empties them for the user.
_OWNED = (("sessions", "user_id"), ("mfa_users", "user_id"), ("invoices", "owner_id"), ("webhooks", "owner_id"),
          ("payment_methods", "owner_id"), ("export_archive", "owner_id"))


@erasure_bp.record_once
def _setup(state: Any) -> None:
    app: Flask = state.app
    with app.extensions["bastion_demo"].workspace.db.connect() as conn:
        conn.executescript(_TABLES)


def _ensure_index(conn: sqlite3.Connection) -> None:
    """Build the index after the database was created or reset (reset empties every table)."""
    if conn.execute("SELECT 1 FROM search_index_built").fetchone():
        return
    conn.execute("INSERT INTO search_index_built (done) VALUES (1)")
    for row in conn.execute("SELECT id, username, email, display_name FROM users ORDER BY id").fetchall():
        conn.execute("INSERT INTO search_index (user_id, document) VALUES (?,?)",
                     (row["id"], f"{row['display_name']} {row['username']} {row['email']}"))


@erasure_bp.get("/admin/search-index")
@admin_required
def search_index() -> Response:
    conn = db()
    _ensure_index(conn)
    rows = conn.execute("SELECT id, user_id, document FROM search_index ORDER BY id").fetchall()
    return jsonify(entries=[{"id": r["id"], "user_id": r["user_id"], "document": r["document"]} for r in rows])


def erase_user(app: Flask, username: str) -> int:
    """The erasure job (GDPR art. 17) the model's `erasure.request` names; returns the rows deleted."""
    flaws = app.extensions["bastion_demo"].flaws
    with app.extensions["bastion_demo"].workspace.db.connect() as conn:
        _ensure_index(conn)
        tables = {r["name"] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        user = conn.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
        if user is None:
            return 0
        deleted = 0
        for table, column in _OWNED:
            if table in tables:
                deleted += conn.execute(f"DELETE FROM {table} WHERE {column} = ?",  # noqa: S608 -- fixed names
                                        (user["id"],)).rowcount
        if "erasure_misses_search_index" not in flaws:
            # The index is a derived copy of the account: it goes with it.
            deleted += conn.execute("DELETE FROM search_index WHERE user_id = ?", (user["id"],)).rowcount
        deleted += conn.execute("DELETE FROM users WHERE id = ?", (user["id"],)).rowcount
    return deleted


__all__ = ["erase_user", "erasure_bp", "search_index"]
