"""Demo accounts: sign-up, password reset, password change, and the login lockout bookkeeping.

Flaws planted here (each next to its safe twin): `login_no_lockout`, `login_user_enumeration`,
`reset_user_enumeration`, `reset_no_rate_limit`, `reset_token_in_response`, `reset_token_reuse`,
`weak_password_policy`. `login()` in flask_app.py calls the bookkeeping helpers below.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
import sqlite3
import time
from functools import cache, wraps
from typing import Any

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request

from bastion.demo import flask_app as core
from bastion.demo.db import hash_password, verify_password
from bastion.demo.policy import EMAIL
from bastion.demo.privacy_mail import send_welcome_mail

bp = Blueprint("demo_accounts", __name__)

MAX_LOGIN_FAILURES = 5
LOCKOUT_SECONDS = 900
MAX_RESETS_PER_ADDRESS = 5
RESET_WINDOW_SECONDS = 3600
MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
# A short deny-list stands in for a breached-password corpus (e.g. the "Have I Been Pwned" range API).
_COMMON_PASSWORDS = frozenset({"password", "123456", "12345678", "123456789", "qwerty", "letmein", "admin",
                               "welcome", "password1", "iloveyou", "1234567890", "qwertyuiop"})
LOCKED_MESSAGE = "Too many failed attempts. Try again later."
GENERIC_LOGIN_FAILURE = "Invalid username or password."
RESET_NOTICE = "If an account exists for that address, we have emailed a reset link."


def _wants_json() -> bool:
    return request.is_json or request.path.startswith("/api/")


def _field(name: str) -> str:
    """A string field from a JSON or form body."""
    if request.is_json:
        body = request.get_json(silent=True)
        return str(body.get(name, "")) if isinstance(body, dict) else ""
    return request.form.get(name, "")


# --- password policy ----------------------------------------------------------------------------------


def password_problem(password: str, username: str = "") -> str | None:
    """Why a new password is refused, or None (the planted flaw accepts anything non-empty)."""
    if not password:
        return "a password is required"
    if core.planted("weak_password_policy"):
        return None
    lowered = password.lower()
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"use at least {MIN_PASSWORD_LENGTH} characters"
    if lowered in _COMMON_PASSWORDS or len(set(password)) < 4:
        return "this password is too common"
    if username and username.lower() in lowered:
        return "the password must not contain the username"
    return None


# --- login bookkeeping (called from flask_app.login) ----------------------------------------------------


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def password_matches(user: sqlite3.Row | None, password: str) -> bool:
    """Verify a login; unknown users cost the same hash work (the planted enumeration flaw is in the message,
    so the scan's oracle never depends on response times)."""
    if user is None:
        verify_password(_dummy_hash(), password)
        return False
    return verify_password(user["password_hash"], password)


def login_failure_message(user: sqlite3.Row | None) -> str:
    if core.planted("login_user_enumeration"):
        return "No account with that username." if user is None else "Incorrect password."
    return GENERIC_LOGIN_FAILURE


def login_blocked(username: str) -> Any | None:
    """A 429 response while `username` is locked out (known or not: the lock must not enumerate)."""
    if core.planted("login_no_lockout"):
        return None
    row = core.db().execute("SELECT locked_until FROM login_failures WHERE username = ?",
                            (username.lower(),)).fetchone()
    if row is None or row["locked_until"] <= time.time():
        return None
    return _too_many(LOCKOUT_SECONDS, "login")


def login_failed(username: str) -> None:
    """Count a failed login; the fifth in a row locks the name for LOCKOUT_SECONDS."""
    if core.planted("login_no_lockout"):
        return
    key = username.lower()
    conn = core.db()
    conn.execute("INSERT INTO login_failures (username, failures, locked_until) VALUES (?, 1, 0) "
                 "ON CONFLICT(username) DO UPDATE SET failures = failures + 1", (key,))
    row = conn.execute("SELECT failures FROM login_failures WHERE username = ?", (key,)).fetchone()
    if row["failures"] >= MAX_LOGIN_FAILURES:
        conn.execute("UPDATE login_failures SET locked_until = ?, failures = 0 WHERE username = ?",
                     (time.time() + LOCKOUT_SECONDS, key))


def login_succeeded(username: str) -> None:
    core.db().execute("DELETE FROM login_failures WHERE username = ?", (username.lower(),))


def _too_many(retry_after: int, page: str) -> Any:
    if _wants_json():
        resp = jsonify(error=LOCKED_MESSAGE)
    else:
        template = "login.html" if page == "login" else "reset.html"
        resp = Response(render_template(template, title="Too many attempts", next_url="/account", notice=None,
                                        error=LOCKED_MESSAGE))
    resp.status_code = 429
    resp.headers["Retry-After"] = str(retry_after)
    return resp


# --- sign-up ------------------------------------------------------------------------------------------


@bp.get("/signup")
def signup_form() -> str:
    return render_template("signup.html", title="Sign up", error=None)


@bp.post("/signup")
def signup() -> Any:
    username, email, password = _field("username").strip(), _field("email").strip().lower(), _field("password")
    problem = None
    if not _USERNAME.match(username):
        problem = "choose a username of 3 to 32 letters, digits, '.', '_' or '-'"
    elif not EMAIL.match(email):
        problem = "give a valid email address"
    else:
        problem = password_problem(password, username)
    if problem:
        return _signup_error(problem, 400)
    try:
        cur = core.db().execute(
            "INSERT INTO users (username, email, password_hash, role, display_name) VALUES (?,?,?,?,?)",
            (username, email, hash_password(password), "user", username))
    except sqlite3.IntegrityError:
        return _signup_error("that username is taken", 409)
    core.audit("signup", f"user_id={cur.lastrowid}")
    send_welcome_mail(username, email, password)  # the password_in_welcome_mail flaw and its twin
    if _wants_json():
        return jsonify(id=cur.lastrowid, username=username), 201
    return redirect("/login", code=303)


def _signup_error(problem: str, status: int) -> Any:
    if _wants_json():
        return jsonify(error=problem), status
    return render_template("signup.html", title="Sign up", error=problem), status


def _signed_in(view: Any) -> Any:
    """flask_app.login_required, looked up per call (flask_app imports this module while loading)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return core.login_required(view)(*args, **kwargs)

    return wrapper


# --- password change ----------------------------------------------------------------------------------


@bp.get("/account/password")
@_signed_in
def password_form() -> str:
    return render_template("password.html", title="Change password", notice=None, error=None)


@bp.post("/account/password")
@_signed_in
def password_change() -> Any:
    current, new = _field("current_password"), _field("new_password")
    if not verify_password(g.user["password_hash"], current):
        return _password_page(None, "The current password is wrong.", 400)
    problem = password_problem(new, g.user["username"])
    if problem:
        return _password_page(None, problem, 400)
    core.db().execute("UPDATE users SET password_hash = ? WHERE id = ?", (hash_password(new), g.user["id"]))
    core.audit("password.change", f"user_id={g.user['id']}")
    return _password_page("Password changed.", None, 200)


def _password_page(notice: str | None, error: str | None, status: int) -> Any:
    if _wants_json():
        return (jsonify(message=notice) if notice else jsonify(error=error)), status
    return render_template("password.html", title="Change password", notice=notice, error=error), status


# --- password reset -----------------------------------------------------------------------------------


_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_reset_token() -> str:
    """A fresh reset token (the one place tokens are made)."""
    if core.planted("random_reset_tokens"):
        # Mersenne Twister: 624 observed outputs predict every later token.
        return "".join(random.choice(_TOKEN_ALPHABET) for _ in range(32))  # noqa: S311 -- planted flaw
    return secrets.token_urlsafe(32)


def _token_key(token: str) -> str:
    # Only a hash is stored: a database leak must not hand out working reset links.
    return hashlib.sha256(token.encode()).hexdigest()


def _reset_limited(address: str) -> bool:
    """Record a reset request for `address`; True once it has asked too often (known or not)."""
    if core.planted("reset_no_rate_limit"):
        return False
    conn = core.db()
    since = time.time() - RESET_WINDOW_SECONDS
    count = conn.execute("SELECT count(*) FROM reset_requests WHERE address = ? AND at > ?",
                         (address, since)).fetchone()[0]
    if count >= MAX_RESETS_PER_ADDRESS:
        return True
    conn.execute("INSERT INTO reset_requests (address, at) VALUES (?, ?)", (address, time.time()))
    return False


def _reset_page(notice: str | None, error: str | None, status: int = 200, link: str | None = None) -> Any:
    return render_template("reset.html", title="Password reset", notice=notice, error=error,
                           reset_link=link), status


@bp.route("/password-reset", methods=["GET", "POST"])
def password_reset() -> Any:
    if request.method == "GET":
        return _reset_page(None, None)
    email = _field("email").strip().lower()
    if _reset_limited(email):
        return _too_many(RESET_WINDOW_SECONDS, "reset")
    user = core.db().execute("SELECT id, email FROM users WHERE email = ?", (email,)).fetchone()
    if user is None and core.planted("reset_user_enumeration"):
        message = "No account is registered with that email address."
        return (jsonify(error=message), 404) if _wants_json() else _reset_page(None, message, 404)
    token = None
    if user is not None:
        token = new_reset_token()
        core.db().execute("INSERT INTO password_resets (token, user_id) VALUES (?, ?)",
                          (_token_key(token), user["id"]))
        core.db().execute("INSERT INTO outbox (recipient, subject, body) VALUES (?,?,?)",
                          (user["email"], "Reset your password", f"Your password reset token: {token}"))
        core.audit("password.reset-requested", f"user_id={user['id']}")
        from bastion.demo.identity_leaks import log_reset_issued  # the reset_token_logged flaw and its twin

        log_reset_issued(user["id"], token)
    leaked = token if token and core.planted("reset_token_in_response") else None
    if _wants_json():
        return jsonify(message=RESET_NOTICE, **({"reset_token": leaked} if leaked else {}))
    return _reset_page(RESET_NOTICE, None, link=f"/password-reset?token={leaked}" if leaked else None)


@bp.post("/password-reset/confirm")
def password_reset_confirm() -> Any:
    token, password = _field("token"), _field("password")
    reusable = core.planted("reset_token_reuse")
    used_clause = "" if reusable else " AND used = 0"
    row = core.db().execute(f"SELECT r.user_id, u.username FROM password_resets r JOIN users u ON u.id = r.user_id "
                            f"WHERE r.token = ?{used_clause}", (_token_key(token),)).fetchone()
    if row is None:
        return _reset_confirm_error("Invalid or expired token.")
    problem = password_problem(password, row["username"])
    if problem:
        return _reset_confirm_error(problem)
    core.db().execute("UPDATE users SET password_hash = ? WHERE id = ?", (hash_password(password), row["user_id"]))
    if not reusable:
        core.db().execute("UPDATE password_resets SET used = 1 WHERE token = ?", (_token_key(token),))
    core.audit("password.reset", f"user_id={row['user_id']}")
    if _wants_json():
        return jsonify(message="Password changed.")
    return _reset_page("Password changed. You can log in now.", None)


def _reset_confirm_error(problem: str) -> Any:
    if _wants_json():
        return jsonify(error=problem), 400
    return _reset_page(None, problem, 400)
