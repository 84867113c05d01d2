"""The demo's operations API: a dashboard feed for administrators, authenticated by bearer token only.

    GET /api/admin/metrics   -> user and session counts (admins only)

Planted flaw `jwt_role_claim_trusted`: the view reads the role from the token payload decoded with
`verify_signature` off ("the gateway already checked it"), while every other route verifies. The safe
twin takes the user from the verified token and the role from the database.
"""

from __future__ import annotations

from typing import Any

import jwt as pyjwt
from flask import Blueprint, jsonify, request

ops_bp = Blueprint("demo_ops", __name__)


def _bearer_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _caller_role(token: str) -> str | None:
    """The caller's role: from the unverified payload (planted flaw) or the verified user's record."""
    from bastion.demo.flask_app import planted  # flask_app imports the blueprints
    from bastion.demo.tokens import bearer_user

    if planted("jwt_role_claim_trusted"):
        try:
            claims = pyjwt.decode(token, options={"verify_signature": False, "verify_exp": True})
        except pyjwt.PyJWTError:
            return None
        return str(claims.get("role", "")) if claims.get("typ") == "access" else None
    user = bearer_user()
    return None if user is None else str(user["role"])


@ops_bp.get("/api/admin/metrics")
def metrics() -> Any:
    token = _bearer_token()
    role = _caller_role(token) if token else None
    if role is None:
        return jsonify(error="bearer token required"), 401
    if role != "admin":
        return jsonify(error="administrators only"), 403
    from bastion.demo.flask_app import db

    users = db().execute("SELECT COUNT(*) FROM users").fetchone()[0]
    sessions = db().execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    return jsonify(users=users, sessions=sessions)
