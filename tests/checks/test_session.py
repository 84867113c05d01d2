"""Session checks: fixation, logout, lifetime, id entropy and cookie scope (demo oracle, portal, helpers)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bastion.checks.session import broader_domain, estimate_entropy, lifetime_problem
from bastion.engine.runner import ScanResult
from bastion.target.exchange import Exchange, SentRequest
from bastion.testing import findings_of

from .mfa_portal import PASSWORD, SECRETS, portal_findings_without, safeguards_caught_by, scan_portal

DEMO_FLAWS = {
    "session_fixation": "session.fixation",
    "logout_not_server_side": "session.logout",
    "session_no_expiry": "session.expiry",
    "session_weak_id": "session.entropy",
    "session_cookie_broad_domain": "session.cookie-scope",
}
SESSION = sorted(DEMO_FLAWS.values())
PORTAL_WEAKENED = safeguards_caught_by("session")


# --- the demo oracle ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("flaw", "check_id"), sorted(DEMO_FLAWS.items()))
def test_each_session_check_fires_on_its_demo_flaw(scan_demo: Callable[..., ScanResult], flaw: str,
                                                   check_id: str) -> None:
    found = findings_of(scan_demo(flaws=flaw, checks=[check_id]), check_id)
    assert len(found) == 1
    assert found[0].location.input is None or found[0].location.input.name == "session_id"


def test_session_checks_are_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=SESSION)
    assert findings_of(result, "session.fixation") == [] and result.findings == []
    assert {c.check_id for c in result.checks} == set(SESSION)


def test_live_session_ids_are_redacted(scan_demo: Callable[..., ScanResult]) -> None:
    import re

    result = scan_demo(flaws=",".join(DEMO_FLAWS), checks=SESSION)
    assert {f.check_id for f in result.findings} == set(DEMO_FLAWS.values())
    dumped = "".join(f.model_dump_json(exclude={"fingerprint"}) for f in result.findings)
    # The weak ids are unix time plus a counter: not one may be readable in a finding.
    assert re.search(r"\d{13,}", dumped) is None


# --- a third-party-style portal -------------------------------------------------------------------------


@pytest.mark.parametrize("guard", sorted(PORTAL_WEAKENED))
def test_each_session_check_fires_on_the_portal_without_its_safeguard(guard: str) -> None:
    assert portal_findings_without(guard) == [PORTAL_WEAKENED[guard]]


def test_no_logout_probe_without_write_permission() -> None:
    from bastion.engine.writes import WritePolicy

    result = scan_portal(["session.logout"], writes=WritePolicy("none"), logout_server=False)
    assert findings_of(result, "session.logout") == [] and result.checks[0].requests == 0


def test_the_safe_portal_scans_clean() -> None:
    result = scan_portal(SESSION)
    assert findings_of(result, "session.fixation") == [] and result.findings == []
    assert all(c.requests for c in result.checks)  # every check did probe


def test_portal_secrets_stay_out_of_session_findings() -> None:
    result = scan_portal(SESSION, rotate=False, logout_server=False, strong_ids=False)
    dumped = "".join(f.model_dump_json() for f in result.findings)
    assert PASSWORD not in dumped and not [s for s in SECRETS.values() if s in dumped]
    assert "ps50" not in dumped  # the sequential session ids themselves


# --- helpers --------------------------------------------------------------------------------------------


def test_entropy_estimate_on_synthetic_ids() -> None:
    import random

    rng = random.Random(4)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    strong = ["".join(rng.choice(alphabet) for _ in range(32)) for _ in range(24)]
    assert estimate_entropy(strong)[1] is None and estimate_entropy(strong)[0] >= 128
    counter = [f"1764110000{n}" for n in range(100_000, 100_024)]
    assert estimate_entropy(counter)[1] == "ids increase like a counter"
    assert estimate_entropy(["abc", "abd", "abc"])[1] == "the same id was issued twice"
    # Hex with a long constant prefix and 8 random characters: 32 bits.
    weak = [f"deadbeefdeadbeef{rng.getrandbits(32):08x}" for _ in range(24)]
    bits, why = estimate_entropy(weak)
    assert why is not None and bits == 32
    uuid4s = [__import__("uuid").UUID(int=rng.getrandbits(128), version=4).hex for _ in range(24)]
    assert estimate_entropy(uuid4s)[1] is None


def test_cookie_domain_judgement() -> None:
    assert broader_domain(".example.com", "app.example.com")
    assert broader_domain("example.com", "app.example.com")
    assert not broader_domain("app.example.com", "app.example.com")
    assert not broader_domain("", "app.example.com")
    assert not broader_domain("other.com", "app.example.com")
    assert not broader_domain("ample.com", "app.example.com")


def _response(date: str = "Wed, 01 Jan 2025 00:00:00 GMT") -> Exchange:
    return Exchange(SentRequest("POST", "https://h/login", []), status=302, headers=[("Date", date)])


def test_lifetime_judgement() -> None:
    assert lifetime_problem("sid=abc; Path=/; HttpOnly", _response()) is None
    assert lifetime_problem("sid=abc; Max-Age=3600", _response()) is None
    assert lifetime_problem("sid=abc; Max-Age=315360000", _response()) == \
        "a persistent cookie kept for more than a year"
    assert lifetime_problem("sid=abc; Max-Age=3456000", _response()) == "a persistent cookie kept for 40 days"
    assert lifetime_problem("sid=abc; Expires=Thu, 01 Jan 2026 00:00:00 GMT", _response()) is not None
    assert lifetime_problem("sid=abc; Expires=Thu, 02 Jan 2025 00:00:00 GMT", _response()) is None
    # JWT session cookies: {"sub": "a"} has no exp; {"sub": "a", "iat": 0, "exp": 3600} is bounded.
    assert lifetime_problem("s=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiAiYSJ9.c2ln", _response()) == "a JWT without an exp claim"
    assert lifetime_problem("s=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiAiYSIsICJpYXQiOiAwLCAiZXhwIjogMzYwMH0.c2ln",
                            _response()) is None


@pytest.mark.parametrize(("flaws", "kept"), [("none", False), ("session_no_expiry", True)])
def test_demo_sessions_expire_server_side_unless_planted(flaws: str, kept: bool) -> None:
    """What the scan cannot observe without waiting: the hardened demo ends idle and too-old sessions."""
    import httpx

    from bastion.demo import create_app

    app = create_app(flaws)
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="https://demo.bastion.local")
    assert client.post("/login", data={"username": "bob", "password": "bob-Bu1lder-42"}).status_code == 302
    sid = client.cookies["session_id"]
    with app.extensions["bastion_demo"].workspace.db.connect() as conn:
        conn.execute("UPDATE sessions SET seen_at = seen_at - 31 * 60 WHERE sid = ?", (sid,))
    assert (client.get("/account").status_code == 200) is kept


# --- signed client-side sessions ------------------------------------------------------------------------


def _flask_signed_session_app() -> object:
    """A plain Flask app with the default signed-cookie session: same user, same second, same cookie."""
    from flask import Flask, redirect, request, session

    app = Flask(__name__)
    app.secret_key = "a-long-random-key-from-the-environment"

    @app.route("/login", methods=["GET", "POST"])
    def login():  # type: ignore[no-untyped-def]
        if request.method == "POST" and request.form.get("pw") == PASSWORD:
            session["user"] = request.form.get("user")
            return redirect("/home")
        return '<form method="post"><input name="user"><input type="password" name="pw"></form>'

    @app.route("/home")
    def home():  # type: ignore[no-untyped-def]
        if "user" not in session:
            return redirect("/login")
        return f"<p>Hello {session['user']}</p>"

    return app


def test_signed_client_side_sessions_are_not_judged_by_entropy() -> None:
    from bastion.engine.runner import ScanOptions, run_scan
    from bastion.identity.login import login_roles_sync
    from bastion.model.schema import RoleConfig
    from bastion.session import discover
    from bastion.target.target import Target

    target = Target.from_app(_flask_signed_session_app())
    roles = {name: RoleConfig.model_validate({"login": {"path": "/login", "form": {"user": name, "pw": PASSWORD}}})
             for name in ("ann", "ben")}
    options = ScanOptions(checks=["session.entropy"], roles=login_roles_sync(target, roles), role_configs=roles,
                          secrets=[PASSWORD])
    result = run_scan(target, discover(target, crawl=False), options)
    assert result.findings == [] and result.checks[0].requests > 0


def test_signed_client_value_formats() -> None:
    from bastion.checks.session import signed_client_value

    assert signed_client_value("eyJ1c2VyIjoibWlyYSJ9.aweRVw.CJJii_O2XTvyJlDyek-GDPnta4E")  # Flask
    assert signed_client_value(".eJyrViotTi1SslLKzSxKHMWDByvVAgDsDql-.aweRVw.zRBDn9vbUqMllPLAcTBSFOMTzWg")
    assert signed_client_value("eyJ1c2VyIjogIm1pcmEifQ==.aweRVw.CJJii_O2XTvyJlDyek-GDPnta4E")  # Starlette
    assert signed_client_value("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiAiYSJ9.c2ln")  # JWT
    # Opaque ids (even signed ones, like express-session's) keep being judged.
    assert not signed_client_value("s:abcdefghij.CJJii_O2XTvyJlDyek-GDPnta4E")
    assert not signed_client_value("ps50000017") and not signed_client_value("abcd.efgh.ijklmnopqrstuvwxyz0123")
