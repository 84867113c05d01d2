"""The demo's second factor: TOTP after the password, remember-this-device, session rotation at each step.

    POST /login  (password ok, account has TOTP) -> pending session; 302 /mfa (JSON: {"mfa_required", "mfa_path"})
    GET  /mfa                                     -> the one-time-code form (pending sessions only)
    POST /mfa    code=123456 [remember=1]         -> full session (rotated); optional remember-device cookie

Every flawed path sits next to its safe twin behind `planted("<flaw id>")`.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import sqlite3
import time
from typing import Any

import pyotp
from flask import Blueprint, g, jsonify, redirect, render_template, request

from bastion.demo.flask_app import (
    audit,
    db,
    json_object,
    new_session,
    planted,
    redirect_after_auth,
    set_session_cookie,
)
from bastion.demo.policy import SESSION_COOKIE

mfa_bp = Blueprint("demo_mfa", __name__)

MFA_PATH = "/mfa"
REMEMBER_COOKIE = "mfa_remember"
TIME_STEP = 30
# Accepted clock drift in time steps, behind and ahead. Ahead is generous (an hour) so a scanner that
# logs the same account in dozens of times a minute still finds unused codes; every step stays single-use.
DRIFT_BEHIND, DRIFT_AHEAD = 1, 120
MAX_FAILURES = 5


def totp_secret(user_id: int) -> str | None:
    row = db().execute("SELECT totp_secret FROM mfa_users WHERE user_id = ?", (user_id,)).fetchone()
    return row["totp_secret"] if row else None


def begin_session(user_id: int) -> tuple[str, bool]:
    """After a correct password: (session id, MFA still pending). Rotates the pre-login session."""
    pending = totp_secret(user_id) is not None and _remembered_user() != user_id
    old = g.get("session_id")
    if old and planted("session_fixation"):
        # The visitor's pre-login session is simply promoted: whoever planted that id is now logged in.
        db().execute("UPDATE sessions SET user_id = ?, mfa_pending = ? WHERE sid = ?", (user_id, int(pending), old))
        return old, pending
    if old:
        db().execute("DELETE FROM sessions WHERE sid = ?", (old,))
    return new_session(user_id, pending=pending), pending


def challenge_response(next_url: str | None) -> Any:
    """Where a password-only login goes next: the one-time-code step."""
    if request.is_json:
        return jsonify(ok=True, mfa_required=True, mfa_path=MFA_PATH)
    return redirect(MFA_PATH + ("?next=" + next_url if isinstance(next_url, str) and next_url else ""))


def _pending_user() -> int | None:
    return g.get("mfa_pending_user")


@mfa_bp.get(MFA_PATH)
def mfa_form() -> Any:
    if _pending_user() is None:
        return redirect("/login")
    return render_template("mfa.html", title="Two-step verification", next_url=request.args.get("next", "/account"),
                           error=None)


@mfa_bp.post(MFA_PATH)
def mfa_submit() -> Any:
    body = json_object() if request.is_json else request.form
    code, next_url = str(body.get("code", "")).strip(), body.get("next")
    user_id = _pending_user()
    if user_id is None:
        return _refuse("no login in progress", 400, next_url)
    failures = db().execute("SELECT failures FROM mfa_users WHERE user_id = ?", (user_id,)).fetchone()["failures"]
    if failures >= MAX_FAILURES and not planted("otp_unlimited_guesses"):
        return _refuse("too many wrong codes; log in again later", 429, next_url)
    step = _verify(user_id, code)
    if step is None:
        db().execute("UPDATE mfa_users SET failures = failures + 1 WHERE user_id = ?", (user_id,))
        audit("mfa.failure", f"user_id={user_id}")
        return _refuse("invalid code", 401, next_url)
    db().execute("UPDATE mfa_users SET failures = 0 WHERE user_id = ?", (user_id,))
    db().execute("INSERT OR IGNORE INTO otp_used (user_id, step) VALUES (?, ?)", (user_id, step))
    audit("mfa.success", f"user_id={user_id}")
    return _finish(user_id, next_url, remember=bool(body.get("remember")))


def _refuse(message: str, status: int, next_url: Any) -> Any:
    if request.is_json:
        return jsonify(error=message), status
    return render_template("mfa.html", title="Two-step verification", next_url=next_url or "/account",
                           error=message), status


def _verify(user_id: int, code: str) -> int | None:
    """The time step `code` belongs to, if it is valid for this user and not spent; else None."""
    if not (len(code) == 6 and code.isdigit()):
        return None
    owners = [user_id]
    if planted("otp_not_bound"):
        # Any enrolled account's current code passes: the check never asks whose code it is.
        owners = [int(r["user_id"]) for r in db().execute("SELECT user_id FROM mfa_users")]
    now_step = int(time.time() // TIME_STEP)
    for owner in owners:
        totp = pyotp.TOTP(totp_secret(owner) or "")
        for step in range(now_step - DRIFT_BEHIND, now_step + DRIFT_AHEAD + 1):
            if secrets.compare_digest(totp.at(step * TIME_STEP), code):
                spent = db().execute("SELECT 1 FROM otp_used WHERE user_id = ? AND step = ?",
                                     (user_id, step)).fetchone()
                if spent is None or planted("otp_reuse"):
                    return step
    return None


def _finish(user_id: int, next_url: Any, *, remember: bool) -> Any:
    """Promote the pending session (rotated on the hardened twin) and answer like a login."""
    sid = g.session_id
    if planted("session_fixation"):
        db().execute("UPDATE sessions SET mfa_pending = 0 WHERE sid = ?", (sid,))
    else:
        db().execute("DELETE FROM sessions WHERE sid = ?", (sid,))
        sid = new_session(user_id)
    resp = jsonify(ok=True) if request.is_json else redirect_after_auth(next_url, "/account")
    set_session_cookie(resp, SESSION_COOKIE, sid)
    if remember:
        set_session_cookie(resp, REMEMBER_COOKIE, _remember_token(user_id))
    return resp


# --- remember this device ---------------------------------------------------------------------------


def _remember_token(user_id: int) -> str:
    if planted("remember_device_forgeable"):
        username = db().execute("SELECT username FROM users WHERE id = ?", (user_id,)).fetchone()["username"]
        return base64.urlsafe_b64encode(json.dumps({"user": username}).encode()).decode()
    token = secrets.token_urlsafe(32)
    db().execute("INSERT INTO trusted_devices (token, user_id) VALUES (?, ?)", (token, user_id))
    return token


def _remembered_user() -> int | None:
    """The account this browser's remember-device cookie vouches for, if any."""
    token = request.cookies.get(REMEMBER_COOKIE)
    if not token:
        return None
    row: sqlite3.Row | None
    if planted("remember_device_forgeable"):
        try:
            username = json.loads(base64.urlsafe_b64decode(token.encode())).get("user")
        except (ValueError, binascii.Error, AttributeError):
            return None
        row = db().execute("SELECT id FROM users WHERE username = ?", (str(username),)).fetchone()
        return int(row["id"]) if row else None
    row = db().execute("SELECT user_id FROM trusted_devices WHERE token = ?", (token,)).fetchone()
    return int(row["user_id"]) if row else None
