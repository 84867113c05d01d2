"""Demo e-mail signature settings: a cookie-authenticated HTML form, with and without an anti-CSRF token.

Flaw planted here (next to its safe twin): `csrf_signature_update` (POST /account/signature changes the
signed-in user's signature with no token and no Origin check, so any site can submit it). The hardened
twin renders a per-session token in a hidden field and rejects a POST without the matching one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, g, render_template_string, request
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup

from bastion.demo import flask_app as core

csrf_bp = Blueprint("demo_csrf", __name__)

CSRF_KEY = "bastion_demo.csrf_key"
SIGNATURES = "bastion_demo.signatures"
MAX_SIGNATURE = 200
CSRF_FIELD = "csrf_token"
_PAGE = """<!doctype html><html><head><title>Signature</title></head><body>
<h1>E-mail signature</h1>
<p class="current">Current signature: {{ signature }}</p>
{% if error %}<p class="error">{{ error }}</p>{% endif %}
<form method="post" action="/account/signature">
{{ token_field }}<label>Signature <input name="signature" value=""></label>
<button type="submit">Save</button>
</form></body></html>"""


@csrf_bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    """One token key and one signature store per app instance."""
    state.app.extensions[CSRF_KEY] = secrets.token_bytes(32)
    state.app.extensions[SIGNATURES] = {}


def _signed_in(view: Any) -> Any:
    """flask_app.login_required, looked up per call (flask_app imports this module while loading)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return core.login_required(view)(*args, **kwargs)

    return wrapper


def _session_token() -> str:
    """The anti-CSRF token bound to the session: an HMAC of the session id under the app's key."""
    sid = (g.get("session_id") or "").encode()
    return hmac.new(current_app.extensions[CSRF_KEY], sid, hashlib.sha256).hexdigest()


def _token_ok() -> bool:
    sent = request.form.get(CSRF_FIELD, "")
    return bool(g.get("session_id")) and hmac.compare_digest(sent.encode(), _session_token().encode())


def _page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    signature = current_app.extensions[SIGNATURES].get(core.current_user_id(), "")
    field = "" if core.planted("csrf_signature_update") else \
        Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, _session_token())
    return render_template_string(_PAGE, signature=signature, error=error, token_field=field), status


@csrf_bp.get("/account/signature")
@_signed_in
def signature_page() -> tuple[str, int]:
    return _page()


@csrf_bp.post("/account/signature")
@_signed_in
def signature_update() -> tuple[str, int]:
    if not core.planted("csrf_signature_update") and not _token_ok():
        return _page("The form expired: reload the page and try again.", 400)
    signature = request.form.get("signature", "")[:MAX_SIGNATURE]
    current_app.extensions[SIGNATURES][core.current_user_id()] = signature
    return _page()
