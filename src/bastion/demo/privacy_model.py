"""The demo's masking, retention and audit sections of its threat model (no Flask import: demo_config uses it)."""

from __future__ import annotations

from typing import Any

# Must match bastion.demo.privacy.PAYMENT_RETENTION_DAYS.
PAYMENT_RETENTION_DAYS = 365


def privacy_sections() -> dict[str, Any]:
    """`masking`, `retention` and `audit` for the Flask demo (demo/privacy.py implements them)."""
    return {
        "masking": {"exports": ["card_number", "iban"]},
        "retention": {"payment_methods": {
            "days": PAYMENT_RETENTION_DAYS, "purge": "POST /admin/privacy/purge", "role": "admin",
            "seed": "bastion.demo.privacy:seed_expired_payment_method", "stores": ["GET /api/exports"]}},
        "audit": {"log": "GET /admin/audit", "verify": "GET /admin/audit/verify", "role": "admin",
                  "tamper": "bastion.demo.privacy:tamper_audit",
                  "events": ["login_success", "login_failure", "export", "admin_action", "privilege_change"]},
        # Right to erasure (demo/privacy_erasure.py): the job, and where the user's data must be gone.
        "erasure": {"request": "bastion.demo.privacy_erasure:erase_user",
                    "stores": ["GET /admin/users", "GET /admin/search-index"]},
    }
