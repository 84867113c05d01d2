"""When a role's credentials expire: JWT `exp`, a token response's `expires_in`, session cookie lifetimes.

The session is renewed before a request once it has expired (see `RoleSession.ensure_fresh`), never on
a 401: authorization checks expect 401s for roles that are denied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import jwt

from bastion.identity.session import RoleSession
from bastion.target.exchange import Exchange


def jwt_expiry(token: str) -> float | None:
    """The `exp` of a JWT (signature not checked: only the lifetime is read), else None."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def response_expiry(body: Any, now: float) -> float | None:
    """`now + expires_in` of an OAuth-style token response (a JSON object), else None."""
    if not isinstance(body, Mapping):
        return None
    value = body.get("expires_in")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return now + float(value)
    return None


def cookie_expiry(ex: Exchange, now: float) -> float | None:
    """Earliest end of life (Max-Age, else Expires) among the cookies the exchange set, else None."""
    from bastion.identity.login import set_cookies  # login imports this module

    ends: list[float] = []
    for morsel in set_cookies(ex):
        end = _morsel_end(morsel["max-age"], morsel["expires"], now)
        # A cookie set to expire now is a deletion, not the lifetime of the session.
        if morsel.value and end is not None and end > now:
            ends.append(end)
    return min(ends) if ends else None


def _morsel_end(max_age: str, expires: str, now: float) -> float | None:
    if max_age.strip().lstrip("-").isdigit():
        return now + int(max_age)
    if expires:
        try:
            return parsedate_to_datetime(expires).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return None


def login_expiry(ex: Exchange | None, token: str | None, body: Any, now: float) -> float | None:
    """Earliest known expiry of what a login produced: the token, the token response, the cookies."""
    ends = [jwt_expiry(token) if token else None, response_expiry(body, now),
            cookie_expiry(ex, now) if ex is not None else None]
    known = [end for end in ends if end is not None]
    return min(known) if known else None


def note_login_expiry(session: RoleSession, ex: Exchange, token: str | None) -> None:
    """Record on `session` when the credentials a login response gave will expire."""
    body: Any = None
    if "json" in ex.content_type:
        try:
            body = json.loads(ex.text)
        except ValueError:
            body = None
    session.set_expiry(login_expiry(ex, token, body, session.clock()))
