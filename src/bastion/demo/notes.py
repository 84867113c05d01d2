"""Demo notes and preferences: private notes stored encrypted (AES-GCM) and a display-currency preference.

Flaws planted here (each next to its safe twin): `aes_gcm_static_nonce` (every note sealed under one
key with the same nonce) and `session_trust_boundary` (the raw `currency` query value stored in the
session). `md5_password_hashes` lives in db.py, `random_reset_tokens` in accounts.py and
`password_logged_at_login` in flask_app.login.
"""

from __future__ import annotations

import os
import secrets
from functools import wraps
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Blueprint, current_app, g, jsonify, request, session
from flask.blueprints import BlueprintSetupState

from bastion.demo import flask_app as core

notes_bp = Blueprint("demo_notes", __name__)

NOTES_KEY = "bastion_demo.notes_key"
NONCE_BYTES = 12
# The "deterministic" nonce someone chose so that notes could be compared by ciphertext.
STATIC_NONCE = bytes(NONCE_BYTES)
CURRENCIES = ("EUR", "USD", "GBP", "CHF")
MAX_TITLE = 120
MAX_NOTE = 5_000
_SCHEMA = ("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, "
           "title TEXT NOT NULL, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL)")


@notes_bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    """One notes key per app instance; a session signing key for the preferences cookie."""
    app = state.app
    app.extensions[NOTES_KEY] = AESGCM.generate_key(bit_length=256)
    if not app.secret_key:
        app.secret_key = secrets.token_bytes(32)
    app.config["SESSION_COOKIE_SAMESITE"] = app.config["SESSION_COOKIE_SAMESITE"] or "Lax"


def _signed_in(view: Any) -> Any:
    """flask_app.login_required, looked up per call (flask_app imports this module while loading)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return core.login_required(view)(*args, **kwargs)

    return wrapper


def seal(plaintext: str) -> tuple[bytes, bytes]:
    """(nonce, ciphertext) of a note under the app's notes key."""
    key = current_app.extensions[NOTES_KEY]
    nonce = STATIC_NONCE if core.planted("aes_gcm_static_nonce") else os.urandom(NONCE_BYTES)
    return nonce, AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), None)


def unseal(nonce: bytes, ciphertext: bytes) -> str:
    return AESGCM(current_app.extensions[NOTES_KEY]).decrypt(nonce, ciphertext, None).decode("utf-8")


def _db() -> Any:
    conn = core.db()
    conn.execute(_SCHEMA)
    return conn


@notes_bp.get("/api/notes")
@_signed_in
def list_notes() -> Any:
    rows = _db().execute("SELECT id, title, nonce, ciphertext FROM notes WHERE owner_id = ? ORDER BY id",
                         (g.user["id"],)).fetchall()
    return jsonify(notes=[{"id": r["id"], "title": r["title"], "body": unseal(r["nonce"], r["ciphertext"])}
                          for r in rows])


@notes_bp.post("/api/notes")
@_signed_in
def create_note() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="expected a JSON object"), 400
    title, text = str(body.get("title", "")).strip(), str(body.get("body", ""))
    if not title or len(title) > MAX_TITLE or len(text) > MAX_NOTE:
        return jsonify(error=f"a title (up to {MAX_TITLE} characters) and a body up to {MAX_NOTE}"), 400
    nonce, ciphertext = seal(text)
    cur = _db().execute("INSERT INTO notes (owner_id, title, nonce, ciphertext) VALUES (?,?,?,?)",
                        (g.user["id"], title, nonce, ciphertext))
    return jsonify(id=cur.lastrowid, title=title), 201


@notes_bp.get("/preferences")
def preferences() -> Any:
    """Show (and with ?currency=, change) the visitor's display currency, kept in the session."""
    wanted = request.args.get("currency")
    if wanted is not None:
        if core.planted("session_trust_boundary"):
            session["currency"] = wanted  # later code formats prices with whatever is in here
        elif wanted.upper() in CURRENCIES:
            session["currency"] = wanted.upper()
        else:
            return jsonify(error=f"currency must be one of {', '.join(CURRENCIES)}"), 400
    return jsonify(currency=session.get("currency", CURRENCIES[0]))
