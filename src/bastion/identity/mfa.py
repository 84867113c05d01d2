"""The second login step: find where the one-time code goes, submit the role's TOTP code, verify it took.

After the primary login of a role with `mfa:`, the step is found generically: the configured
`mfa.path`/`field`, else the page the login redirected to (or `mfa.form_page`) holding a form with one
visible input named like otp/code/totp/token, else a path named in the JSON login response. The code
is `pyotp.TOTP(secret)` at Bastion's clock (`now()`; tests pin it with `pinned_clock`).

Servers that reject a reused code (as they should) accept each time step once per user, and a scan
logs roles in many times: the current step is used first, then the following ones (servers tolerate
some clock drift). When the server refuses a code ahead of its clock, the step waits for the next
time step and tries once more.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any
from urllib.parse import urljoin, urlsplit

import pyotp

from bastion.errors import ConfigError
from bastion.identity.login import token_from_json, update_cookies
from bastion.identity.matrix import is_login_redirect
from bastion.identity.session import RoleSession
from bastion.model.schema import RoleConfig
from bastion.target.client import ProbeClient
from bastion.target.exchange import Exchange
from bastion.target.html import parse_html

TIME_STEP = 30
# Time steps around the clock a server with a generous drift window may accept (a scan re-logs its
# roles in dozens of times a minute, each login with the next unspent step); the MFA checks never
# use a code of this span as a "wrong" code.
MAX_STEPS_AHEAD = 120
# Field names of one-time-code inputs, and of JSON keys that point at the MFA step.
OTP_FIELD = re.compile(r"otp|code|totp|token|mfa|2fa|passcode|pin|verification", re.IGNORECASE)
_MFA_KEY = re.compile(r"mfa|otp|2fa|totp|second|verify|challenge|next", re.IGNORECASE)
_TEXT_INPUTS = ("text", "number", "tel", "password", "")
_REDIRECTS = (301, 302, 303, 307, 308)

_clock: Callable[[], float] = time.time
_sleep: Callable[[float], Any] = asyncio.sleep
# Time steps each target accepted per secret (keyed by id(target), dropped with the target).
_ACCEPTED: dict[int, set[tuple[str, int]]] = {}


def now() -> float:
    """Bastion's clock for one-time codes (epoch seconds)."""
    return _clock()


@contextmanager
def pinned_clock(at: float | Callable[[], float]) -> Iterator[None]:
    """Pin the TOTP clock (a fixed time or a callable) for the duration of the block."""
    global _clock
    previous = _clock
    _clock = at if callable(at) else (lambda: float(at))
    try:
        yield
    finally:
        _clock = previous


def current_step(at: float | None = None) -> int:
    return int((now() if at is None else at) // TIME_STEP)


def code_at_step(secret: str, step: int) -> str:
    """The TOTP code of `secret` for time step `step`."""
    return pyotp.TOTP(secret.replace(" ", "")).at(step * TIME_STEP)


def totp_code(secret: str, at: float | None = None) -> str:
    """The TOTP code of `secret` now (or at epoch `at`)."""
    return code_at_step(secret, current_step(at))


def _accepted(target: object) -> set[tuple[str, int]]:
    key = id(target)
    if key not in _ACCEPTED:
        _ACCEPTED[key] = set()
        weakref.finalize(target, _ACCEPTED.pop, key, None)
    return _ACCEPTED[key]


def next_code(client: ProbeClient, secret: str) -> tuple[str, int]:
    """(code, step): the earliest step from now on whose code this target has not accepted yet."""
    used = _accepted(client.target)
    step = current_step()
    while (secret, step) in used:
        step += 1
    return code_at_step(secret, step), step


def mark_accepted(client: ProbeClient, secret: str, step: int) -> None:
    """Remember that the target accepted (and so spent) the code of `step`."""
    _accepted(client.target).add((secret, step))


@dataclass
class MfaStep:
    """Where and how the one-time code is submitted."""

    method: str
    path: str
    field: str
    as_json: bool = False
    hidden: dict[str, str] = default(default_factory=dict)
    # Checkboxes of the form (e.g. "remember this device"), not sent unless asked.
    options: dict[str, str] = default(default_factory=dict)
    page: str | None = None


def _path(url: str, base: str) -> str:
    return urlsplit(urljoin(base, url)).path or "/"


def _otp_form(html: str, page_url: str, wanted: str | None) -> MfaStep | None:
    """The form with exactly one visible text-like input named like a one-time code (or `wanted`)."""
    for form in parse_html(html).iter("form"):
        hidden: dict[str, str] = {}
        options: dict[str, str] = {}
        visible: list[str] = []
        for el in form.iter("input"):
            name, kind = el.get("name"), (el.get("type") or "").lower()
            if not name:
                continue
            if kind == "hidden":
                hidden[name] = el.get("value") or ""
            elif kind == "checkbox":
                options[name] = el.get("value") or "on"
            elif kind in _TEXT_INPUTS:
                visible.append(name)
        if len(visible) != 1 or (wanted or "") not in ("", visible[0]):
            continue
        if wanted is None and not OTP_FIELD.search(visible[0]):
            continue
        action = form.get("action") or page_url
        return MfaStep(method=(form.get("method") or "POST").upper(), path=_path(action, page_url),
                       field=visible[0], hidden=hidden, options=options, page=_path(page_url, page_url))
    return None


def _json_hint(ex: Exchange) -> str | None:
    """A path the JSON login response points at for the second factor (e.g. {"mfa_path": "/mfa"})."""
    if "json" not in ex.content_type:
        return None
    try:
        body = json.loads(ex.text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    for key, value in body.items():
        if _MFA_KEY.search(str(key)) and isinstance(value, str) and value.startswith("/"):
            return urlsplit(value).path
    return None


def _fail(name: str, what: str) -> ConfigError:
    return ConfigError(f"role {name!r}: MFA step failed: {what} (check roles.{name}.mfa: totp_secret, "
                       f"path, field)", key=f"roles.{name}.mfa")


async def find_mfa_step(client: ProbeClient, name: str, role: RoleConfig, session: RoleSession,
                        login_ex: Exchange) -> MfaStep:
    """Locate the one-time-code step after `login_ex` (the primary login's response)."""
    assert role.mfa is not None and role.login is not None
    mfa = role.mfa
    page = mfa.form_page
    if page is None and login_ex.status in _REDIRECTS and login_ex.header("location"):
        if not is_login_redirect(login_ex, (role.login.path,)):
            page = login_ex.header("location")
    json_hint = _json_hint(login_ex)
    page = page or (json_hint if role.login.form is not None else None)
    found: MfaStep | None = None
    if page is not None:
        ex = await client.request("GET", page, **session.apply({}), follow_redirects=True)
        update_cookies(session.cookies, ex)
        if ex.ok and ex.status < 400 and ex.is_html:
            found = _otp_form(ex.text, ex.request.url, mfa.field)
    if found is None:
        path = mfa.path or json_hint
        if path is None:
            where = f"no one-time-code form on {page}" if page else "the login response names no MFA step"
            raise _fail(name, f"{where}; set mfa.path (and mfa.field)")
        found = MfaStep(method="POST", path=path, field=mfa.field or "code",
                        as_json=role.login.json_body is not None, page=page)
    if mfa.path:
        found.path = mfa.path
    if mfa.method:
        found.method = mfa.method
    return found


async def submit_code(client: ProbeClient, step: MfaStep, session: RoleSession, code: str, *,
                      options: bool = False, cookies: dict[str, str] | None = None) -> Exchange:
    """Send `code` to the step with the session's credentials; the response's cookies/token update it."""
    body = {**step.hidden, **(step.options if options else {}), step.field: code}
    kwargs: dict[str, Any] = {"json": body} if step.as_json else {"data": body}
    sent = session.apply({"cookies": cookies} if cookies else {})
    ex = await client.request(step.method, step.path, **sent, **kwargs)
    update_cookies(session.cookies, ex)
    if "json" in ex.content_type:
        try:
            token = token_from_json(json.loads(ex.text), None)
        except ValueError:
            token = None
        if token is not None:
            header = next((k for k in session.headers if k.lower() == "authorization"), "Authorization")
            session.headers[header] = f"Bearer {token}"
            session.secrets.add(token)
    return ex


def mfa_completed(ex: Exchange, step: MfaStep, login_path: str | None) -> bool:
    """Whether the code was accepted: no error, no bounce to the login or MFA page, no code form again."""
    if not ex.ok or not 200 <= ex.status < 400:
        return False
    if ex.status in _REDIRECTS:
        target = urlsplit(ex.header("location") or "").path.rstrip("/")
        bounced = {p.rstrip("/") for p in (step.path, step.page, login_path) if p}
        return target not in bounced and not is_login_redirect(ex, (login_path,) if login_path else ())
    if ex.is_html and _otp_form(ex.text, ex.request.url, step.field) is not None:
        return False
    if "json" in ex.content_type:
        try:
            body = json.loads(ex.text)
        except ValueError:
            return True
        # {"mfa_required": true} / {"ok": false} style answers.
        if isinstance(body, dict) and (body.get("ok") is False or body.get("error")
                                       or any(_MFA_KEY.search(str(k)) and v is True for k, v in body.items())):
            return False
    return True


async def complete_mfa(client: ProbeClient, name: str, role: RoleConfig, session: RoleSession,
                       login_ex: Exchange) -> None:
    """Submit the role's current TOTP code after the primary login; ConfigError when it is refused."""
    assert role.mfa is not None
    secret = role.mfa.totp_secret
    session.secrets.add(secret)
    step = await find_mfa_step(client, name, role, session, login_ex)
    for attempt in range(2):
        code, at_step = next_code(client, secret)
        session.secrets.add(code)
        ex = await submit_code(client, step, session, code)
        if mfa_completed(ex, step, session.login_path):
            mark_accepted(client, secret, at_step)
            return
        if attempt or at_step <= current_step():
            break
        # The server refuses codes ahead of its clock: wait for the next time step, then try once more.
        await _sleep(TIME_STEP - now() % TIME_STEP + 0.5)
    raise _fail(name, f"{step.method} {step.path} (field {step.field!r}) answered "
                      f"{ex.status or ex.error} and did not complete the login")
