"""audit.tamper-evident and audit.secrets-in-trail on the demo's audit trail and its hardened twin."""

from __future__ import annotations

from collections.abc import Callable

from bastion.engine.runner import ScanResult
from bastion.findings.model import Confidence
from bastion.testing import findings_of

CHECKS = ["audit"]


def test_editable_audit_log_is_found(scan_demo: Callable[..., ScanResult]) -> None:
    (f,) = findings_of(scan_demo(flaws="audit_log_editable", checks=CHECKS), "audit.tamper-evident")
    assert f.confidence == Confidence.confirmed and f.location.path == "/admin/audit/verify"


def test_password_in_audit_log_is_found_masked(scan_demo: Callable[..., ScanResult]) -> None:
    from bastion.demo.db import USERS

    (f,) = findings_of(scan_demo(flaws="audit_log_has_passwords", checks=CHECKS), "audit.secrets-in-trail")
    assert f.location.path == "/admin/audit" and "failed login" in f.title
    text = f.model_dump_json()
    assert "password=***" in text and "Pw-" not in text
    assert not any(password in text for _, _, password, _, _ in USERS if len(password) > 5)


def test_hardened_demo_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=CHECKS)
    assert [f for f in result.findings if f.check_id.startswith("audit.")] == []
    # Silent because verification caught the edit, not because a step was skipped.
    assert not [u.skipped for c in result.checks for u in c.unit_records if u.skipped]


def test_demo_chain_detects_edits_directly() -> None:
    from bastion.demo import create_app
    from bastion.demo.privacy import _chain_intact, tamper_audit

    app = create_app("none")
    key = app.extensions["bastion_demo.audit_key"]
    with app.extensions["bastion_demo"].workspace.db.connect() as conn:
        assert _chain_intact(conn, key)
    tamper_audit(app)
    with app.extensions["bastion_demo"].workspace.db.connect() as conn:
        assert not _chain_intact(conn, key)
