"""Each planted flaw is observable on the Flask demo, and absent from its hardened twin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pyotp
import pytest

from bastion.demo import FLAWS, create_app
from bastion.demo.workspace import OUTSIDE_SECRET, OUTSIDE_SECRET_TEXT

from .account_probes import ACCOUNT_PROBES
from .authz_probes import AUTHZ_PROBES
from .clients import flask_client
from .crypto_probes import CRYPTO_PROBES
from .csrf_probes import CSRF_PROBES
from .deps_probes import DEPS_PROBES
from .fuzz_probes import FUZZ_PROBES
from .identity_leak_probes import IDENTITY_LEAK_PROBES
from .privacy_erasure_probes import PRIVACY_ERASURE_PROBES
from .privacy_probes import PRIVACY_PROBES
from .recovery_probes import RECOVERY_PROBES
from .runtime_probes import RUNTIME_PROBES
from .session3_probes import SESSION3_PROBES
from .session_probes import SESSION_PROBES
from .signup_probes import SIGNUP_PROBES
from .teams_probes import TEAMS_PROBES
from .token_probes import TOKEN_PROBES

Probe = Callable[[httpx.Client], bool]


def _debug_console(c: httpx.Client) -> bool:
    r = c.get("/console")
    return r.status_code == 200 and "Werkzeug Debugger" in r.text and "__debugger__" in r.text


def _verbose_errors(c: httpx.Client) -> bool:
    r = c.get("/invoices", params={"page": "two"})
    return "Traceback (most recent call last)" in r.text


def _version_banner(c: httpx.Client) -> bool:
    r = c.get("/")
    return "1.4.2" in r.headers.get("server", "") and "Flask/" in r.headers.get("x-powered-by", "")


def _exposed_files(c: httpx.Client) -> bool:
    env, git = c.get("/.env"), c.get("/.git/config")
    bak, tilde = c.get("/app.py.bak"), c.get("/settings.py~")
    listing = c.get("/backup/")
    return (env.status_code == 200 and env.text.count("=") >= 2 and "[core]" in git.text
            and "import" in bak.text and "DEBUG" in tilde.text and "Index of /backup/" in listing.text)


def _missing_security_headers(c: httpx.Client) -> bool:
    h = c.get("/").headers
    return not any(n in h for n in ("content-security-policy", "x-content-type-options", "x-frame-options",
                                    "referrer-policy"))


def _missing_hsts(c: httpx.Client) -> bool:
    return "strict-transport-security" not in c.get("/").headers


def _session_cookie(c: httpx.Client) -> str:
    return next(v for v in c.get("/").headers.get_list("set-cookie") if v.startswith("session_id="))


def _insecure_session_cookie(c: httpx.Client) -> bool:
    cookie = _session_cookie(c).lower()
    return "httponly" not in cookie and "secure" not in cookie and "samesite" not in cookie


def _cors_reflect_origin(c: httpx.Client) -> bool:
    r = c.get("/api/products", headers={"Origin": "https://attacker.example"})
    return (r.headers.get("access-control-allow-origin") == "https://attacker.example"
            and r.headers.get("access-control-allow-credentials") == "true")


def _cors_null_origin(c: httpx.Client) -> bool:
    r = c.get("/api/products", headers={"Origin": "null"})
    return (r.headers.get("access-control-allow-origin") == "null"
            and r.headers.get("access-control-allow-credentials") == "true")


def _sqli_error(c: httpx.Client) -> bool:
    r = c.get("/products", params={"category": "books'"})
    return r.status_code == 500 and "sqlite3.OperationalError" in r.text


def _invoice_count(c: httpx.Client, status: str) -> int:
    r = c.post("/api/invoices/search", json={"filter": {"status": status}})
    assert r.status_code == 200
    return len(r.json()["invoices"])


def _sqli_boolean(c: httpx.Client) -> bool:
    true_rows, false_rows = _invoice_count(c, "x' OR '1'='1"), _invoice_count(c, "x' OR '1'='2")
    # Errors are swallowed: a broken query looks like an empty result.
    broken = c.post("/api/invoices/search", json={"filter": {"status": "x'"}})
    assert broken.status_code == 200 and "sqlite" not in broken.text.lower()
    return true_rows > 0 and false_rows == 0


def _sqli_time(c: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> bool:
    slept: list[float] = []
    monkeypatch.setattr("bastion.demo.db.time.sleep", slept.append)
    r = c.get("/api/stats", headers={"X-Tenant": "x' OR sleep(2)--"})
    baseline = c.get("/api/stats", headers={"X-Tenant": "acme"})
    assert r.status_code == 200 and r.json() == baseline.json()  # no output difference
    return bool(slept)


def _xss_reflected(c: httpx.Client) -> bool:
    return "<bstq1>" in c.get("/search", params={"q": "<bstq1>"}).text


def _xss_upload_filename(c: httpx.Client) -> bool:
    r = c.post("/upload", files={"document": ("<bstu1>.txt", b"hello", "text/plain")})
    assert r.status_code == 200
    return "Uploaded <bstu1>.txt" in r.text


def _xss_stored(c: httpx.Client) -> bool:
    r = c.post("/guestbook", data={"name": "x", "message": "<bsts1>"})
    assert r.status_code == 303
    return "<bsts1>" in c.get("/guestbook").text


def _path_traversal(c: httpx.Client) -> bool:
    assert c.get("/files/welcome.txt").status_code == 200
    r = c.get("/files/..%2F" + OUTSIDE_SECRET)
    return r.status_code == 200 and OUTSIDE_SECRET_TEXT in r.text


def _command_injection(c: httpx.Client) -> bool:
    ok = c.post("/tools/ping", data={"host": "127.0.0.1"})
    assert ok.status_code == 200 and "pinging 127.0.0.1" in ok.text
    r = c.post("/tools/ping", json={"host": "x; echo bst$((6*7))end"})
    return r.status_code == 200 and "bst42end" in r.json()["output"]


def _ssti(c: httpx.Client) -> bool:
    return "1337" in c.get("/", headers={"Cookie": "display_name={{7*191}}"}).text


def _code_injection(c: httpx.Client) -> bool:
    assert "<output>42</output>" in c.get("/tools/calc", params={"expr": "6*7"}).text
    return "bstcalc" in c.get("/tools/calc", params={"expr": "'bst'+'calc'"}).text


def _xxe(c: httpx.Client, secret: Path) -> bool:
    doc = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
           "<invoices><invoice><customer>&x;</customer></invoice></invoices>")
    r = c.post("/api/import", content=doc, headers={"content-type": "application/xml"})
    return r.status_code == 200 and OUTSIDE_SECRET_TEXT.strip() in r.text


def _open_redirect(c: httpx.Client) -> bool:
    out = c.get("/logout", params={"next": "https://evil.example/"})
    login = c.post("/login", data={"username": "guest", "password": "guest", "next": "//evil.example/"})
    assert out.status_code == login.status_code == 302
    return (out.headers["location"] == "https://evil.example/"
            and login.headers["location"] == "//evil.example/")


def _crlf_injection(c: httpx.Client) -> bool:
    r = c.get("/set-language", params={"lang": "fr\r\nX-Bst-Crlf: 1"})
    assert r.status_code == 302
    return any("X-Bst-Crlf" in value for value in r.headers.get_list("set-cookie"))


def _login_as(c: httpx.Client, username: str) -> None:
    from bastion.demo.db import TOTP_SECRETS, USERS

    password = next(pw for name, _, pw, _, _ in USERS if name == username)
    assert c.post("/login", data={"username": username, "password": password}).status_code == 302
    if username in TOTP_SECRETS:  # the second factor (bastion/demo/mfa.py)
        assert c.post("/mfa", data={"code": pyotp.TOTP(TOTP_SECRETS[username]).now()}).status_code == 302


def _invoice_bola(c: httpx.Client) -> bool:
    _login_as(c, "bob")
    r = c.get("/api/invoices/2")  # alice's unshared INV-1002
    return r.status_code == 200 and "INV-1002" in r.text


def _admin_export_bfla(c: httpx.Client) -> bool:
    _login_as(c, "alice")
    r = c.get("/admin/export")
    return r.status_code == 200 and "admin@democorp.example" in r.text


PROBES: dict[str, Callable[..., bool]] = {
    "debug_console": _debug_console, "verbose_errors": _verbose_errors, "version_banner": _version_banner,
    "exposed_files": _exposed_files, "missing_security_headers": _missing_security_headers,
    "missing_hsts": _missing_hsts, "insecure_session_cookie": _insecure_session_cookie,
    "cors_reflect_origin": _cors_reflect_origin, "cors_null_origin": _cors_null_origin,
    "sqli_error": _sqli_error, "sqli_boolean": _sqli_boolean, "sqli_time": _sqli_time,
    "xss_reflected": _xss_reflected, "xss_upload_filename": _xss_upload_filename, "xss_stored": _xss_stored,
    "path_traversal": _path_traversal, "command_injection": _command_injection, "ssti": _ssti,
    "code_injection": _code_injection, "xxe": _xxe, "open_redirect": _open_redirect,
    "crlf_injection": _crlf_injection, "invoice_bola": _invoice_bola, "admin_export_bfla": _admin_export_bfla,
}
PROBES.update(TOKEN_PROBES)  # the token/JWT flaws (tests/demo/token_probes.py)
PROBES.update(ACCOUNT_PROBES)  # the account flaws (tests/demo/account_probes.py)
PROBES.update(AUTHZ_PROBES)  # the authorization flaws (tests/demo/authz_probes.py)
PROBES.update(SESSION_PROBES)  # the session and MFA flaws (tests/demo/session_probes.py)
PROBES.update(RUNTIME_PROBES)  # the runtime-injection flaws (tests/demo/runtime_probes.py)
PROBES.update(CRYPTO_PROBES)  # the runtime crypto, log and session-trust flaws (tests/demo/crypto_probes.py)
PROBES.update(DEPS_PROBES)  # the IdP and job-queue flaws (tests/demo/deps_probes.py)
PROBES.update(RECOVERY_PROBES)  # the TLS and backup flaws (tests/demo/recovery_probes.py)
PROBES.update(PRIVACY_PROBES)  # the privacy and audit-trail flaws (tests/demo/privacy_probes.py)
PROBES.update(PRIVACY_ERASURE_PROBES)  # erasure and audited-event flaws (tests/demo/privacy_erasure_probes.py)
PROBES.update(FUZZ_PROBES)  # the basket-report fuzzing flaws (tests/demo/fuzz_probes.py)
PROBES.update(SESSION3_PROBES)  # alerting, store outages, response schema (tests/demo/session3_probes.py)
PROBES.update(IDENTITY_LEAK_PROBES)  # token and reset-link leaks, IdP expiry (tests/demo/identity_leak_probes.py)
PROBES.update(TEAMS_PROBES)  # team membership and role flaws (tests/demo/teams_probes.py)
PROBES.update(CSRF_PROBES)  # the cross-site request forgery flaw (tests/demo/csrf_probes.py)
PROBES.update(SIGNUP_PROBES)  # the API sign-up that trusts the role (tests/demo/signup_probes.py)


def test_every_flaw_has_a_probe() -> None:
    assert set(PROBES) == set(FLAWS)


def _observe(flaw_id: str, flaws: str, monkeypatch: pytest.MonkeyPatch) -> bool:
    app = create_app(flaws)
    client = flask_client(app)
    probe = PROBES[flaw_id]
    if flaw_id == "sqli_time":
        return probe(client, monkeypatch)
    if flaw_id == "xxe":
        return probe(client, app.extensions["bastion_demo"].workspace.root / OUTSIDE_SECRET)
    return probe(client)


@pytest.mark.parametrize("flaw_id", sorted(FLAWS))
def test_flaw_observable_when_planted_alone(flaw_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _observe(flaw_id, flaw_id, monkeypatch)


@pytest.mark.parametrize("flaw_id", sorted(FLAWS))
def test_flaw_absent_from_hardened_twin(flaw_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _observe(flaw_id, "none", monkeypatch)


@pytest.mark.parametrize("flaw_id", ["sqli_boolean", "xss_stored", "exposed_files", "cors_null_origin"])
def test_flaw_observable_with_all_planted(flaw_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _observe(flaw_id, "all", monkeypatch)


def test_sleep_is_capped_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("bastion.demo.db.time.sleep", slept.append)
    client = flask_client(create_app("sqli_time"))
    client.get("/api/stats", headers={"X-Tenant": "x' OR sleep(100)--"})
    assert sum(slept) == 3.0
    slept.clear()
    client.get("/api/stats", headers={"X-Tenant": "x' OR sleep(2)--"})
    assert 2.0 <= sum(slept) <= 3.0  # one call per tenant row, still within the per-request budget
