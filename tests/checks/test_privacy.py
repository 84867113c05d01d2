"""privacy.pii-in-export and privacy.retention: demo flaws, hardened twin, and a third-party export."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response

from bastion.engine.runner import ScanResult
from bastion.findings.model import Confidence
from bastion.testing import findings_of, scan_app

CHECKS = ["privacy.pii-in-export", "privacy.retention"]


def test_pii_in_export_is_found_masked(scan_demo: Callable[..., ScanResult]) -> None:
    (f,) = findings_of(scan_demo(flaws="pii_in_export", checks=CHECKS), "privacy.pii-in-export")
    assert f.confidence == Confidence.confirmed and f.location.path == "/api/payment-methods/export"
    text = f.model_dump_json()
    assert "card number" in f.title and "iban" in f.title
    assert "4111 1111 1111 1111" not in text and "GB82 WEST" not in text


def test_purge_missing_exports_is_found(scan_demo: Callable[..., ScanResult]) -> None:
    (f,) = findings_of(scan_demo(flaws="purge_misses_exports", checks=CHECKS), "privacy.retention")
    assert f.location.path == "/api/exports" and "survives the purge" in f.title


def test_hardened_demo_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=CHECKS)
    assert findings_of(result, "privacy.pii-in-export") == [] and findings_of(result, "privacy.retention") == []
    assert not [u.skipped for c in result.checks for u in c.unit_records if u.skipped]


def _shop(masked: bool) -> Flask:
    app = Flask(__name__)

    @app.get("/reports/orders.csv")
    def orders() -> Response:
        card = "**** **** **** 1881" if masked else "4012 8888 8888 1881"
        # An order number that looks like a card but fails Luhn is never reported.
        body = f"order,card\n4111111111111112,{card}\n"
        return Response(body, mimetype="text/csv", headers={"Content-Disposition": "attachment; filename=o.csv"})

    return app


def test_third_party_export_with_full_card_number() -> None:
    (f,) = findings_of(scan_app(_shop(masked=False), checks=CHECKS), "privacy.pii-in-export")
    assert f.location.path == "/reports/orders.csv" and "4012 8888" not in f.model_dump_json()
    assert findings_of(scan_app(_shop(masked=True), checks=CHECKS), "privacy.pii-in-export") == []
