"""Where the demo's credentials leak: request logging, reset links in logs and Referers, IdP token expiry.

- every `/api/` request is logged (`api request GET /api/me`); the planted `token_logged` flaw adds the
  Authorization header to the record;
- `log_reset_issued` is called when a reset token is made (demo/accounts.py): the planted
  `reset_token_logged` flaw logs the whole reset link, the safe twin only the user id;
- `GET /password-reset/new?token=...`: the page the reset e-mail links to (new-password form, a link to the
  help centre); the planted `reset_token_referer` flaw sets `<meta name="referrer" content="unsafe-url">`
  (for the analytics funnel), the safe twin `no-referrer`;
- `GET /api/partner/catalog`: partners call it with an access token from the IdP, verified locally
  against the IdP's JWKS; the planted `idp_token_expiry_unchecked` flaw allows two days of leeway
  ("partners' clocks drift"), so expired and not-yet-valid tokens pass.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import jwt
from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from markupsafe import escape

from bastion.demo.flask_app import planted

leaks_bp = Blueprint("identity_leaks", __name__)
log = logging.getLogger("bastion.demo.api")

_KEY = "bastion_demo.identity_leaks"
JWKS_TIMEOUT_S = 1.0
# The planted flaw's leeway: "partners' clocks drift" (the safe twin allows seconds, not days).
FLAWED_LEEWAY = timedelta(days=2)
SAFE_LEEWAY = timedelta(seconds=30)
HELP_CENTRE = "https://support.democorp.example/password-help"
_CATALOG = [{"sku": "DC-100", "name": "Desk lamp"}, {"sku": "DC-200", "name": "Monitor arm"}]


@dataclass
class LeaksState:
    issuer: str = ""
    audience: str = ""
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> public key (the IdP's JWKS, cached)
    lock: threading.Lock = field(default_factory=threading.Lock)


@leaks_bp.record_once
def _configure(setup: BlueprintSetupState) -> None:
    env = os.environ
    setup.app.extensions[_KEY] = LeaksState(issuer=env.get("OIDC_ISSUER", "").rstrip("/"),
                                            audience=env.get("OIDC_AUDIENCE", "partner-api"))


def _state() -> LeaksState:
    state: LeaksState = current_app.extensions[_KEY]
    return state


# --- request logging ------------------------------------------------------------------------------------


@leaks_bp.before_app_request
def _log_api_request() -> None:
    if not request.path.startswith("/api/"):
        return
    auth = request.headers.get("Authorization")
    # The route template, not the path: path values are the caller's data (ids, names).
    route = request.url_rule.rule if request.url_rule is not None else "(no route)"
    if auth and planted("token_logged"):
        # "Needed to debug partner integrations": every proxy of the log pipeline now holds live tokens.
        log.info("api request %s %s authorization=%s", request.method, route, auth)
    else:
        log.info("api request %s %s", request.method, route)


def log_reset_issued(user_id: int, token: str) -> None:
    """Log that a reset token was issued (the planted flaw logs the link that carries it)."""
    if planted("reset_token_logged"):
        log.info("password reset for user %s: %spassword-reset/new?token=%s", user_id, request.host_url, token)
    else:
        log.info("password reset requested for user %s", user_id)


# --- the reset link's landing page --------------------------------------------------------------------------


@leaks_bp.get("/password-reset/new")
def choose_new_password() -> Response:
    token = request.args.get("token", "")
    policy = "unsafe-url" if planted("reset_token_referer") else "no-referrer"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="{policy}">
<title>Choose a new password · DemoCorp</title></head>
<body><main><h1>Choose a new password</h1>
<form method="post" action="/password-reset/confirm">
<input type="hidden" name="token" value="{escape(token)}">
<label>New password <input type="password" name="password" value=""></label>
<button type="submit">Set password</button>
</form>
<p>Trouble? <a href="{HELP_CENTRE}">Visit the help centre</a>.</p>
</main></body></html>"""
    resp = Response(page, mimetype="text/html")
    if not planted("reset_token_referer"):
        resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


# --- partner catalog: IdP tokens verified locally ---------------------------------------------------------


def _public_key(state: LeaksState, kid: str) -> Any:
    with state.lock:
        if kid not in state.keys:
            # Unknown kid: the IdP rotated its keys; fetch the JWKS again.
            resp = httpx.get(state.issuer + "/jwks", timeout=JWKS_TIMEOUT_S, trust_env=False)
            resp.raise_for_status()
            state.keys = {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(resp.json()).keys if k.key_id}
        return state.keys.get(kid)


@leaks_bp.get("/api/partner/catalog")
def partner_catalog() -> Any:
    state = _state()
    if not state.issuer:
        return jsonify(error="partner access is not configured"), 503
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not token:
        return jsonify(error="partner token required"), 401
    try:
        key = _public_key(state, str(jwt.get_unverified_header(token).get("kid", "")))
        if key is None:
            return jsonify(error="invalid partner token"), 401
        leeway = FLAWED_LEEWAY if planted("idp_token_expiry_unchecked") else SAFE_LEEWAY
        claims = jwt.decode(token, key, algorithms=["RS256"], audience=state.audience, issuer=state.issuer,
                            leeway=leeway, options={"require": ["exp", "sub"]})
    except (jwt.PyJWTError, httpx.HTTPError, ValueError):
        return jsonify(error="invalid partner token"), 401
    return jsonify(partner=str(claims.get("sub", "")), catalog=_CATALOG)
