"""A small third-party-style portal with cookie sessions and TOTP, every safeguard switchable.

Names differ from the demo on purpose (portal_sid, /signin, /verify-2fa, otp, trust_device, /signout,
/dashboard): the checks must find everything by behaviour. Its TOTP clock is a `StepClock` shared
with Bastion's (`pinned_clock`): it moves one time step after every accepted code, so tests never
wait and never depend on the wall clock.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import pyotp
from flask import Flask, make_response, redirect, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.engine.writes import WritePolicy
from bastion.identity.login import login_roles_sync
from bastion.identity.mfa import pinned_clock
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.target.target import Target
from bastion.testing import findings_of

PASSWORD = "Portal-Passw0rd!"
SECRETS = {"carol": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "dan": "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"}
USERS = ("carol", "dan", "erin")  # erin has no second factor
SID = "portal_sid"
TRUST = "trust_device"
BASE_URL = "https://app.corp.example"


@dataclass
class StepClock:
    """Epoch seconds that advance one TOTP step (30 s) each time the portal accepts a code."""

    at: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.at

    def tick(self) -> None:
        self.at += 30


@dataclass
class Safeguards:
    rotate: bool = True  # new session id at login and at the second factor
    logout_server: bool = True  # logout deletes the session
    strict_pending: bool = True  # a password-only session is not logged in
    bind: bool = True  # the code is checked against the pending user's seed only
    no_replay: bool = True  # a spent time step is refused
    limit: bool = True  # 5 wrong codes lock the step (429)
    random_trust: bool = True  # the trust-device token is random and server-side
    strong_ids: bool = True  # session ids from secrets.token_urlsafe
    host_only: bool = True  # no Domain attribute on the session cookie
    short_lived: bool = True  # session cookie without Max-Age


# The check that must fire on the portal once a safeguard (a `Safeguards` field) is switched off.
CAUGHT_WITHOUT = {
    "rotate": "session.fixation", "logout_server": "session.logout", "short_lived": "session.expiry",
    "strong_ids": "session.entropy", "host_only": "session.cookie-scope",
    "strict_pending": "mfa.skip", "bind": "mfa.otp-not-bound", "no_replay": "mfa.otp-reuse",
    "limit": "mfa.otp-guessing", "random_trust": "mfa.remember-device",
}


def safeguards_caught_by(family: str) -> dict[str, str]:
    """Safeguard -> check id, for the checks of `family` (e.g. "mfa")."""
    return {guard: cid for guard, cid in sorted(CAUGHT_WITHOUT.items()) if cid.startswith(f"{family}.")}


@dataclass
class _State:
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    used: set[tuple[str, int]] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)
    trusted: dict[str, str] = field(default_factory=dict)
    counter: Any = field(default_factory=lambda: itertools.count(5000))


def portal_app(guards: Safeguards, clock: StepClock) -> Flask:
    app = Flask("portal")
    st = _State()

    def new_sid() -> str:
        return secrets.token_urlsafe(24) if guards.strong_ids else f"ps{next(st.counter)}"

    def current() -> dict[str, Any] | None:
        return st.sessions.get(request.cookies.get(SID, ""))

    def user() -> str | None:
        s = current()
        if s is None or s["user"] is None or (s["pending"] and guards.strict_pending):
            return None
        return str(s["user"])

    def with_sid(resp: Any, sid: str) -> Any:
        kwargs: dict[str, Any] = {"httponly": True, "samesite": "Lax"}
        if not guards.host_only:
            kwargs["domain"] = "corp.example"
        if not guards.short_lived:
            kwargs["max_age"] = 400 * 86_400
        resp.set_cookie(SID, sid, **kwargs)
        return resp

    def promote(user_name: str, pending: bool) -> str:
        old = request.cookies.get(SID, "")
        if old in st.sessions and not guards.rotate:
            st.sessions[old].update(user=user_name, pending=pending)
            return old
        st.sessions.pop(old, None)
        sid = new_sid()
        st.sessions[sid] = {"user": user_name, "pending": pending, "csrf": secrets.token_hex(8)}
        return sid

    @app.get("/")
    def home() -> Any:
        resp = make_response("<h1>Portal</h1><a href='/signin'>Sign in</a>")
        if current() is None:
            sid = new_sid()
            st.sessions[sid] = {"user": None, "pending": False, "csrf": secrets.token_hex(8)}
            with_sid(resp, sid)
        return resp

    @app.get("/signin")
    def signin_page() -> Any:
        return ("<form method=post action=/signin><input name=user><input type=password name=pw>"
                "<button>Sign in</button></form>")

    @app.post("/signin")
    def signin() -> Any:
        name, pw = request.form.get("user", ""), request.form.get("pw", "")
        if name not in USERS or pw != PASSWORD:
            return "<p>Wrong credentials</p>", 401
        trusted = st.trusted.get(request.cookies.get(TRUST, "")) if guards.random_trust else \
            _decode_trust(request.cookies.get(TRUST, ""))
        pending = name in SECRETS and trusted != name
        sid = promote(name, pending)
        return with_sid(redirect("/verify-2fa" if pending else "/dashboard"), sid)

    @app.get("/verify-2fa")
    def verify_page() -> Any:
        s = current()
        if s is None or not s["pending"]:
            return redirect("/signin")
        return (f"<form method=post action=/verify-2fa><input type=hidden name=csrf value={s['csrf']}>"
                "<input name=otp autocomplete=one-time-code>"
                "<label><input type=checkbox name=trust_this value=yes> Trust this browser</label>"
                "<button>Verify</button></form>")

    @app.post("/verify-2fa")
    def verify() -> Any:
        s = current()
        if s is None or not s["pending"] or request.form.get("csrf") != s["csrf"]:
            return "<p>Start again</p>", 400
        name = s["user"]
        if guards.limit and st.failures.get(name, 0) >= 5:
            resp = make_response("<p>Too many attempts</p>", 429)
            resp.headers["Retry-After"] = "300"
            return resp
        step = _accepted_step(guards, st, name, request.form.get("otp", ""), clock())
        if step is None:
            st.failures[name] = st.failures.get(name, 0) + 1
            return verify_page(), 401
        st.failures[name] = 0
        st.used.add((name, step))
        clock.tick()
        sid = promote(name, False)
        resp = with_sid(redirect("/dashboard"), sid)
        if request.form.get("trust_this"):
            token = secrets.token_urlsafe(32) if guards.random_trust else \
                base64.b64encode(f"device:{name}".encode()).decode()
            st.trusted[token] = name
            resp.set_cookie(TRUST, token, httponly=True)
        return resp

    @app.get("/dashboard")
    def dashboard() -> Any:
        name = user()
        if name is None:
            return redirect("/signin")
        csrf = current()["csrf"]  # type: ignore[index]
        return (f"<h1>Dashboard of {name}</h1><p>Your projects: apollo, gemini, mercury.</p>"
                f"<form method=post action=/signout><input type=hidden name=csrf value={csrf}>"
                "<button>Sign out</button></form>")

    @app.post("/signout")
    def signout() -> Any:
        s = current()
        if s is None or request.form.get("csrf") != s["csrf"]:
            return "<p>Bad request</p>", 400
        if guards.logout_server:
            st.sessions.pop(request.cookies.get(SID, ""), None)
        resp = redirect("/")
        resp.set_cookie(SID, "", max_age=0)
        return resp

    return app


def _decode_trust(token: str) -> str | None:
    try:
        text = base64.b64decode(token.encode()).decode()
    except ValueError:
        return None
    return text.removeprefix("device:") if text.startswith("device:") else None


def _accepted_step(guards: Safeguards, st: _State, name: str, code: str, now: float) -> int | None:
    owners = [name] if guards.bind else list(SECRETS)
    base = int(now // 30)
    for owner in owners:
        for step in (base - 1, base, base + 1):
            if pyotp.TOTP(SECRETS[owner]).at(step * 30) == code:
                if (name, step) in st.used and guards.no_replay:
                    return None
                return step
    return None


def portal_roles(names: tuple[str, ...] = ("carol", "dan")) -> dict[str, RoleConfig]:
    roles = {}
    for name in names:
        cfg: dict[str, Any] = {"login": {"path": "/signin", "form": {"user": name, "pw": PASSWORD}}}
        if name in SECRETS:
            cfg["mfa"] = {"totp_secret": SECRETS[name]}
        roles[name] = RoleConfig.model_validate(cfg)
    return roles


def scan_portal(checks: list[str], names: tuple[str, ...] = ("carol", "dan"), writes: WritePolicy | None = None,
                **weakened: bool) -> ScanResult:
    """Scan the portal with the given safeguards switched off (`rotate=False`, ...) as the given roles."""
    clock = StepClock()
    target = Target.from_app(portal_app(Safeguards(**weakened), clock), base_url=BASE_URL)
    surface = discover(target, crawl=False)
    roles = portal_roles(names)
    with pinned_clock(clock):
        sessions = login_roles_sync(target, roles)
        options = ScanOptions(checks=checks, roles=sessions, role_configs=roles,
                              secrets=[PASSWORD, *SECRETS.values()], writes=writes)
        return run_scan(target, surface, options)


def portal_findings_without(guard: str) -> list[str]:
    """The check ids reported when only `guard` is off and only the check that should catch it runs."""
    check_id = CAUGHT_WITHOUT[guard]
    return [f.check_id for f in findings_of(scan_portal([check_id], **{guard: False}), check_id)]
