"""A small third-party-style Flask service for the breach-drill tests (not the demo): form login, a members
page, a CSV export, an audit list; with `alerting=True` it posts to the webhook in $SEC_ALERT_URL after five
failed logins from one address (read once, when the app is built)."""

from __future__ import annotations

import os
import secrets
from typing import Any

import httpx
from flask import Flask, Response, jsonify, request

USERS = {"carol": "Carol-Pass-2024!", "dave": "Dave-Pass-2024!"}
THRESHOLD = 5


def create_app(alerting: bool = True) -> Flask:
    app = Flask(__name__)
    sessions: dict[str, str] = {}
    failures: dict[str, int] = {}
    trail: list[dict[str, Any]] = []
    hook = os.environ.get("SEC_ALERT_URL", "")

    def user() -> str | None:
        return sessions.get(request.cookies.get("sid", ""))

    @app.post("/signin")
    def signin() -> Any:
        name, password = request.form.get("login", ""), request.form.get("password", "")
        if USERS.get(name) != password:
            trail.append({"actor": name, "event": "login_failure"})
            client = request.remote_addr or "?"
            failures[client] = failures.get(client, 0) + 1
            if alerting and hook and failures[client] >= THRESHOLD:
                failures[client] = 0
                httpx.post(hook, json={"text": f"brute force from {client}"}, timeout=2.0)
            return jsonify(error="bad credentials"), 401
        sid = secrets.token_hex(16)
        sessions[sid] = name
        trail.append({"actor": name, "event": "login_success"})
        resp = jsonify(ok=True)
        resp.set_cookie("sid", sid, httponly=True)
        return resp

    @app.get("/me")
    def me() -> Any:
        name = user()
        return (jsonify(user=name), 200) if name else (jsonify(error="login required"), 401)

    @app.get("/reports/export.csv")
    def export() -> Any:
        name = user()
        if not name:
            return jsonify(error="login required"), 401
        trail.append({"actor": name, "event": "export"})
        return Response("id,amount\n1,10\n", mimetype="text/csv")

    @app.get("/audit")
    def audit() -> Any:
        return jsonify(records=trail[-200:])

    return app
