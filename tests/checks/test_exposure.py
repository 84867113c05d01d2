"""Excessive data exposure: secret fields and other users' personal data in JSON responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, jsonify

from bastion.engine.runner import ScanResult

from .bearer_apps import BearerLogins, scan_bearer_app

CHECKS = ["authz.data-exposure"]
PASSWORD = "Clinic-Passw0rd!"
PATIENTS = {"ivy": {"id": 31, "phone": "+44 20 7946 0018", "portal_pin": "ak_live_ivy_3f9c2d7e"},
            "jon": {"id": 32, "phone": "+44 20 7946 0172", "portal_pin": "ak_live_jon_88b1a4c0"}}


def test_fires_on_the_user_directory_flaw(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="excessive_data_exposure", checks=CHECKS)
    [finding] = result.findings
    assert finding.location.path == "/api/users" and finding.severity.value == "high"
    assert "(as alice, bob, admin)" in finding.title
    # The leaked hashes are named, never shown.
    assert "pbkdf2:" not in finding.model_dump_json()


def test_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    # The hardened demo still shows every user their own email on their profile: expected, not a leak.
    result = scan_demo(flaws="none", checks=CHECKS)
    assert result.findings == [] and not [c.errors for c in result.checks if c.errors]


def clinic_app(*, leak_directory: bool, leak_keys: bool) -> Flask:
    """Patients see their own record (phone, API key); a directory lists patients by name."""
    app = Flask("clinic")
    me = BearerLogins(app, "/login", PATIENTS, PASSWORD).current

    @app.get("/record")
    def record() -> Any:
        name = me()
        data = {"id": PATIENTS[name]["id"], "name": name, "phone": PATIENTS[name]["phone"]}
        if leak_keys:
            data["portal_pin"] = PATIENTS[name]["portal_pin"]
        else:
            data["portal_pin"] = "********"
        return jsonify(data)

    @app.get("/directory")
    def directory() -> Any:
        me()
        rows = [{"name": n, **({"phone": p["phone"]} if leak_directory else {})} for n, p in PATIENTS.items()]
        return jsonify(patients=rows, help_desk={"phone": "+44 20 7946 0000"})

    @app.get("/contact")
    def contact() -> Any:
        return jsonify(phone="+44 20 7946 0000")

    return app


def scan_clinic(data_classes: dict[str, list[str]] | None = None, **flags: bool) -> ScanResult:
    return scan_bearer_app(clinic_app(**flags), "/login", PATIENTS, PASSWORD, CHECKS, data_classes=data_classes or {})


@pytest.mark.parametrize("classes", [None, {"pii": ["phone"], "secret": ["portal_pin"]}], ids=["defaults", "declared"])
def test_own_data_and_masked_keys_scan_clean(classes: dict[str, list[str]] | None) -> None:
    result = scan_clinic(classes, leak_directory=False, leak_keys=False)
    assert result.findings == [] and not [c.errors for c in result.checks if c.errors]


def test_other_patients_phone_numbers_are_reported() -> None:
    result = scan_clinic(leak_directory=True, leak_keys=False)
    [finding] = result.findings
    assert finding.location.path == "/directory" and finding.severity.value == "medium"
    assert "(as ivy, jon)" in finding.title


def test_declared_secret_class_is_reported_even_on_the_own_record() -> None:
    assert scan_clinic(leak_directory=False, leak_keys=True).findings == []  # portal_pin is no default name...
    result = scan_clinic({"secret": ["portal_pin"], "pii": ["phone"]}, leak_directory=False, leak_keys=True)
    [finding] = result.findings  # ...but the threat model declares it secret
    assert finding.location.path == "/record" and finding.severity.value == "high"
    assert "ak_live_" not in finding.model_dump_json()
