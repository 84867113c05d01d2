"""The demo's account API for API clients: sign-up and password change, each with a flaw and its safe twin.

- `POST /api/register` (`signup_role_from_body`): a JSON twin of the HTML `/signup`; the flaw copies the
  client's `role` (or `admin: true`) into the new account, the twin always creates a plain user.
- `PUT /api/users/{username}/password` (`password_change_by_path`): the flaw changes the password of
  whichever account the path names, the twin only the caller's own.
Validation, password policy and audit are the same as `/signup` (demo/accounts.py).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from flask import Blueprint, g, jsonify, request

from bastion.demo import flask_app as core
from bastion.demo.accounts import password_problem
from bastion.demo.db import hash_password
from bastion.demo.policy import EMAIL

signup_bp = Blueprint("signup_flaws", __name__)
ROLES = ("user", "admin")
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")  # the rule /signup applies


@signup_bp.post("/api/register")
def api_register() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="expected a JSON object"), 400
    username = str(body.get("username", "")).strip()
    email = str(body.get("email", "")).strip().lower()
    password = str(body.get("password", ""))
    if not USERNAME.match(username):
        return jsonify(error="choose a username of 3 to 32 letters, digits, '.', '_' or '-'"), 400
    if not EMAIL.match(email):
        return jsonify(error="give a valid email address"), 400
    problem = password_problem(password, username)
    if problem:
        return jsonify(error=problem), 400
    role = "user"
    if core.planted("signup_role_from_body"):
        # FLAW signup_role_from_body: the whole body is trusted, the role (or an admin flag) included.
        asked = body.get("role")
        if asked in ROLES:
            role = str(asked)
        elif body.get("admin") is True:
            role = "admin"
    try:
        cur = core.db().execute(
            "INSERT INTO users (username, email, password_hash, role, display_name) VALUES (?,?,?,?,?)",
            (username, email, hash_password(password), role, username))
    except sqlite3.IntegrityError:
        return jsonify(error="that username is taken"), 409
    core.audit("signup", f"user_id={cur.lastrowid}")
    return jsonify(id=cur.lastrowid, username=username), 201


@signup_bp.put("/api/users/<username>/password")
@core.login_required
def api_set_password(username: str) -> Any:
    """Set an account's password (an API client's own: the twin compares the path with the session)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="expected a JSON object"), 400
    password = str(body.get("password", ""))
    # FLAW password_change_by_path: the path, not the session, says whose password changes.
    if not core.planted("password_change_by_path") and username != g.user["username"]:
        return jsonify(error="you can only change your own password"), 403
    problem = password_problem(password, username)
    if problem:
        return jsonify(error=problem), 400
    cur = core.db().execute("UPDATE users SET password_hash = ? WHERE username = ?",
                            (hash_password(password), username))
    if cur.rowcount == 0:
        return jsonify(error="no such user"), 404
    core.audit("password.change", f"username={username}")
    return "", 204
