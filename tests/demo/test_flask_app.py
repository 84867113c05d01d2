"""The Flask demo works as a small shop: same routes in both twins, fresh state per app, safe features."""

from __future__ import annotations

from pathlib import Path

import httpx
import pyotp
import pytest

from bastion.demo import create_app
from bastion.demo.db import TOTP_SECRETS
from bastion.demo.policy import CSP, TRUSTED_ORIGIN

from .clients import flask_client


def _rules(flaws: str) -> set[tuple[str, str]]:
    app = create_app(flaws)
    # The static route moves with the exposed_files flaw (project dir served at /); it is not a view.
    return {(r.rule, ",".join(sorted(r.methods or ()))) for r in app.url_map.iter_rules()
            if r.endpoint != "static"}


def _login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post("/login", json={"username": username, "password": password})


def test_hardened_twin_has_the_same_routes() -> None:
    assert _rules("all") == _rules("none")


def test_each_app_gets_its_own_fresh_database() -> None:
    first, second = create_app("none"), create_app("none")
    c1, c2 = flask_client(first), flask_client(second)
    assert c1.post("/guestbook", data={"name": "Eve", "message": "only-in-first"}).status_code == 303
    assert "only-in-first" in c1.get("/guestbook").text
    assert "only-in-first" not in c2.get("/guestbook").text
    ws1, ws2 = first.extensions["bastion_demo"].workspace, second.extensions["bastion_demo"].workspace
    assert ws1.root != ws2.root
    # Seeded deterministically: both start with the same catalogue.
    assert c1.get("/api/products").json() == c2.get("/api/products").json()


def test_hardened_headers_on_every_response() -> None:
    client = flask_client(create_app("none"))
    for path in ("/", "/api/products", "/does-not-exist", "/static/app.css"):
        h = client.get(path).headers
        assert h["content-security-policy"] == CSP
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "no-referrer"
        assert h["strict-transport-security"].startswith("max-age=63072000")
        assert "server" not in h and "x-powered-by" not in h


def test_hardened_over_http_omits_hsts_and_secure() -> None:
    client = flask_client(create_app("none"), base_url="http://127.0.0.1:5000")
    r = client.get("/")
    assert "strict-transport-security" not in r.headers
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_hardened_cookie_flags_on_https() -> None:
    cookie = flask_client(create_app("none")).get("/").headers["set-cookie"]
    assert cookie.startswith("session_id=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_hardened_cors_allows_only_the_trusted_origin() -> None:
    client = flask_client(create_app("none"))
    ok = client.get("/api/products", headers={"Origin": TRUSTED_ORIGIN})
    assert ok.headers["access-control-allow-origin"] == TRUSTED_ORIGIN
    assert "Origin" in ok.headers["vary"]
    for origin in ("https://evil.example", "null", "https://app.democorp.example.evil.com"):
        r = client.get("/api/products", headers={"Origin": origin})
        assert "access-control-allow-origin" not in r.headers
    preflight = client.options("/api/products", headers={"Origin": TRUSTED_ORIGIN,
                                                         "Access-Control-Request-Method": "GET"})
    assert preflight.headers["access-control-allow-methods"]


def test_hardened_errors_are_generic() -> None:
    client = flask_client(create_app("none"))
    assert client.get("/invoices", params={"page": "x"}).status_code == 400
    assert client.get("/products", params={"per_page": "999"}).status_code == 400
    assert client.get("/api/products/99999999999999999999").status_code == 404
    assert client.get("/tools/calc", params={"expr": "__import__('os')"}).status_code == 400
    assert client.get("/tools/calc", params={"expr": "9**9**9"}).status_code == 400
    r = client.get("/products", params={"category": "books'"})
    assert r.status_code == 200 and "sqlite" not in r.text.lower() and "No products" in r.text
    assert client.post("/tools/ping", data={"host": "127.0.0.1; id"}).status_code == 400
    xml = client.post("/api/import", content=b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>',
                      headers={"content-type": "application/xml"})
    assert xml.status_code == 400
    assert client.get("/console").status_code == 404
    assert client.get("/.env").status_code == 404


def test_benign_features_work_in_the_hardened_twin() -> None:
    client = flask_client(create_app("none"))
    assert "Secure Coding in Python" in client.get("/products", params={"category": "books"}).text
    assert "Cable Tester" in client.get("/search", params={"q": "cable"}).text
    assert client.get("/api/products/1").json()["name"] == "Pocket Guide to Threat Modelling"
    assert client.get("/api/products/999").status_code == 404
    assert len(client.get("/api/products", params={"limit": 3}).json()["items"]) == 3
    paid = client.post("/api/invoices/search", json={"filter": {"status": "paid"}}).json()["invoices"]
    assert {i["number"] for i in paid} == {"INV-1001", "INV-3001"}  # shared invoices only, anonymously
    assert client.get("/files/reports/q1-2024.csv").text.startswith("month,revenue")
    assert "42" in client.get("/tools/calc", params={"expr": "6*7"}).text
    imported = client.post("/api/import", headers={"content-type": "application/xml"},
                           content=b"<invoices><invoice><customer>Acme</customer></invoice></invoices>")
    assert imported.json() == {"imported": 1, "fields": [["invoices/invoice/customer", "Acme"]]}
    signup = client.post("/api/newsletter", json={"email": "a@b.example"})
    assert signup.json() == {"subscribed": "a@b.example"}
    assert client.post("/api/newsletter", json={"email": "nope"}).status_code == 400
    assert "Thanks, Ann" in client.post("/contact", data={"name": "Ann", "email": "a@b.example",
                                                          "message": "hi"}).text
    assert client.get("/set-language", params={"lang": "de"}).headers["set-cookie"].startswith("lang=de;")
    assert client.get("/logout", params={"next": "/products"}).headers["location"] == "/products"


def test_login_session_profile_export_and_admin() -> None:
    app = create_app("none")
    client = flask_client(app)
    assert _login(client, "guest", "wrong").status_code == 401
    assert client.get("/account").status_code == 302
    assert client.get("/api/invoices/export").status_code == 401
    r = _login(client, "guest", "guest")
    assert r.status_code == 200 and r.json()["user"]["username"] == "guest"
    client.cookies.set("session_id", r.cookies["session_id"])
    assert "guest@democorp.example" in client.get("/account").text
    assert client.post("/api/profile", json={"display_name": "G", "address": {"city": "Oslo"}}).json() == {
        "display_name": "G", "bio": "", "address": {"city": "Oslo"}}
    csv = client.get("/api/invoices/export", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv") and "INV-3002" in csv.text
    assert "INV-1002" not in csv.text  # alice's private invoice
    assert client.get("/api/invoices/2").status_code == 404
    hook = client.post("/api/webhooks", json={"url": "https://hooks.example/x", "events": ["invoice.paid"]})
    assert hook.status_code == 201
    assert client.get("/api/webhooks").json()["webhooks"][0]["url"] == "https://hooks.example/x"
    assert client.get("/admin").status_code == 403

    admin = flask_client(app)
    pending = _login(admin, "admin", "admin-Corr3ct-Horse")  # admin has a TOTP second factor
    assert pending.json()["mfa_required"] is True
    admin.cookies.set("session_id", pending.cookies["session_id"])
    assert admin.get("/admin").status_code == 302  # not before the one-time code
    done = admin.post("/mfa", json={"code": pyotp.TOTP(TOTP_SECRETS["admin"]).now()})
    admin.cookies.set("session_id", done.cookies["session_id"])
    audit = admin.get("/admin/audit").text
    assert "login.failure" in audit and "profile.update" in audit and "webhook.create" in audit
    assert "alice@democorp.example" in admin.get("/admin/users").text


def test_password_reset_token_is_mailed_and_usable() -> None:
    app = create_app("none")
    client = flask_client(app)
    for email in ("alice@democorp.example", "nobody@democorp.example"):
        r = client.post("/password-reset", data={"email": email})
        assert r.status_code == 200 and "If an account exists" in r.text
    conn = app.extensions["bastion_demo"].workspace.db.connect()
    mails = conn.execute("SELECT recipient, body FROM outbox").fetchall()
    assert [m["recipient"] for m in mails] == ["alice@democorp.example"]
    token = mails[0]["body"].rsplit(" ", 1)[1]
    r = client.post("/password-reset/confirm", data={"token": token, "password": "new-password-1"})
    assert r.status_code == 200
    assert _login(client, "alice", "new-password-1").status_code == 200
    reused = client.post("/password-reset/confirm", data={"token": token, "password": "again-again"})
    assert reused.status_code == 400


def test_shell_side_effects_stay_in_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = create_app("command_injection")
    r = flask_client(app).post("/tools/ping", json={"host": "x>bst_litter"})
    assert r.status_code == 200
    assert not (tmp_path / "bst_litter").exists()
    assert (app.extensions["bastion_demo"].workspace.root / "bst_litter").exists()
