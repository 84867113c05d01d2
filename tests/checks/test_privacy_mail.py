"""privacy.pii-in-mail: the demo's welcome mail with the password, its twin, a third-party app's receipts."""

from __future__ import annotations

import os
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from flask import Flask, jsonify, request

from bastion.engine.runner import ScanResult
from bastion.findings.model import Confidence
from bastion.model import BastionConfig
from bastion.testing import findings_of
from tests.checks.privacy_scan import scan_with_model

CHECKS = ["privacy.pii-in-mail"]


def test_password_in_welcome_mail_is_found_masked(scan_demo: Callable[..., ScanResult]) -> None:
    (f,) = findings_of(scan_demo(flaws="password_in_welcome_mail", checks=CHECKS), "privacy.pii-in-mail")
    assert f.confidence == Confidence.confirmed and f.title == "Mail 'Welcome to DemoCorp' carries a password"
    assert (f.location.method, f.location.path) == ("POST", "/signup")
    text = f.model_dump_json()
    assert "forget it: ***" in text and "Pw-" not in text


def test_hardened_welcome_mail_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=CHECKS)
    assert findings_of(result, "privacy.pii-in-mail") == []
    assert not [u.skipped for c in result.checks for u in c.unit_records if u.skipped]


def test_smtp_double_is_a_declared_dependency_kind() -> None:
    cfg = BastionConfig.model_validate({"target": {"app": "m:app"}, "dependencies": {"m": {"kind": "smtp",
                                                                                           "double": True}}})
    assert cfg.dependencies["m"].double


# --- a third-party shop mailing order receipts -------------------------------------------------------------

PASSWORD = "dana-Secret-1"
CARD = "4012 8888 8888 1881"


def receipt_shop(full_card: bool) -> Callable[[], Flask]:
    def factory() -> Flask:
        app = Flask(__name__)
        server: Any = (os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"]))

        @app.post("/api/session")
        def login() -> Any:
            body = request.get_json(silent=True) or {}
            ok = body.get("email") == "dana@shop.example" and body.get("password") == PASSWORD
            return (jsonify(token="t-dana-0123456789"), 200) if ok else (jsonify(error="no"), 401)

        @app.post("/api/orders")
        def order() -> Any:
            body = request.get_json(silent=True) or {}
            to = str(body.get("email", "dana@shop.example"))
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "shop@shop.example", to, "Your receipt"
            card = CARD if full_card else "**** **** **** 1881"
            msg.set_content(f"Thanks for your order {body.get('note', '')}. Paid with {card} (Visa).")
            with smtplib.SMTP(*server, timeout=5) as smtp:
                smtp.send_message(msg)
            return jsonify(ok=True), 201

        return app

    return factory


MODEL = {
    "roles": {"dana": {"login": {"path": "/api/session", "json": {"email": "dana@shop.example",
                                                                  "password": PASSWORD}}}},
    "dependencies": {"mail": {"kind": "smtp", "double": True}},
}


def test_third_party_receipt_with_full_card_number() -> None:
    (f,) = findings_of(scan_with_model(receipt_shop(full_card=True), MODEL, CHECKS), "privacy.pii-in-mail")
    assert f.title == "Mail 'Your receipt' carries a full card number" and CARD not in f.model_dump_json()


def test_third_party_masked_receipt_is_clean() -> None:
    assert findings_of(scan_with_model(receipt_shop(full_card=False), MODEL, CHECKS), "privacy.pii-in-mail") == []


def test_no_outbox_means_skipped() -> None:
    result = scan_with_model(Flask(__name__), {}, CHECKS)
    assert findings_of(result, "privacy.pii-in-mail") == []
    assert any("SMTP outbox" in (u.skipped or "") for c in result.checks for u in c.unit_records)


def test_mail_oracle_flags_other_accounts_not_the_recipient_or_a_reset_link() -> None:
    from bastion.checks.privacy_mail import _leaks

    accounts = {"dana@shop.example", "eve@shop.example"}
    reset = "Reset your password: https://shop.example/reset?token=Zx81kq0Pq. Order 4111111111111112 shipped."
    assert _leaks(reset, {"dana@shop.example"}, {"dana-Secret-1"}, accounts) == []
    leaks = _leaks("Eve (eve@shop.example) shared a list with you.", {"dana@shop.example"}, set(), accounts)
    assert [(leak.what, leak.value) for leak in leaks] == [("another user's e-mail address", "eve@shop.example")]
    assert _leaks("Hi dana@shop.example", {"dana@shop.example"}, set(), accounts) == []
