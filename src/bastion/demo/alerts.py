"""Demo security alerting: many failed logins from one client raise an alert (the hardened twin).

The alert is a WARNING on the `shop.security` logger, and a POST to the webhook in $ALERT_WEBHOOK_URL
when that is set; both name the client address. Its blueprint hooks every response (`after_app_request`),
so the login views stay as they are.

Flaw planted here (next to its safe twin): `no_alert_credential_stuffing` — failed logins are counted
nowhere and no alert is raised.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any

import httpx
from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from bastion.demo.flask_app import planted

LOGGER = "shop.security"
WEBHOOK_ENV = "ALERT_WEBHOOK_URL"
# Failed logins from one client within the window that raise an alert (then the count starts over).
ALERT_THRESHOLD = 10
WINDOW_S = 300.0
# Where credentials are checked: the form login and the API token endpoint.
LOGIN_PATHS = ("/login", "/api/auth/token")
FAILED = (401, 423, 429)
_KEY = "bastion_demo.alerts"

alerts_bp = Blueprint("alerts", __name__)
log = logging.getLogger(LOGGER)
log.addHandler(logging.NullHandler())  # the deployment routes it to the SIEM; no stderr fallback here


class FailureWindow:
    """Failed-login times per client within the window (thread-safe)."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def add(self, client: str, now: float) -> int | None:
        """Count one failure; the count when it reaches the threshold (the window then starts over)."""
        with self._lock:
            seen = self._seen.setdefault(client, deque())
            seen.append(now)
            while seen and seen[0] < now - WINDOW_S:
                seen.popleft()
            if len(seen) < ALERT_THRESHOLD:
                return None
            count = len(seen)
            seen.clear()
            return count


def _post_webhook(url: str, payload: dict[str, Any]) -> None:
    try:
        httpx.post(url, json=payload, timeout=2.0)
    except httpx.HTTPError:
        log.error("alert webhook unreachable")


@alerts_bp.record_once
def _configure(setup: BlueprintSetupState) -> None:
    """Per-app failure counts; the webhook URL is read once, when the app is built."""
    setup.app.extensions[_KEY] = FailureWindow()
    setup.app.config[WEBHOOK_ENV] = os.environ.get(WEBHOOK_ENV, "")


@alerts_bp.after_app_request
def _watch_logins(response: Response) -> Response:
    if request.method != "POST" or request.path not in LOGIN_PATHS or response.status_code not in FAILED:
        return response
    if planted("no_alert_credential_stuffing"):
        return response  # failures are not counted anywhere: a stuffing run goes unnoticed
    client = request.remote_addr or "unknown"
    count = current_app.extensions[_KEY].add(client, time.time())
    if count is not None:
        message = (f"credential stuffing suspected: {count} failed logins from client {client} "
                   f"within {int(WINDOW_S)} s")
        log.warning(message)
        url = current_app.config.get(WEBHOOK_ENV)
        if url:
            _post_webhook(url, {"alert": "credential-stuffing", "client": client, "failures": count,
                                "text": message})
    return response
