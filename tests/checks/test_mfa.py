"""MFA checks: skipped step, unbound, reused and guessable codes, forged remember-device (demo, portal, helpers)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import pytest

from bastion.checks.mfa import forge_for
from bastion.engine.runner import ScanResult
from bastion.testing import findings_of

from .mfa_portal import PASSWORD, SECRETS, portal_findings_without, safeguards_caught_by, scan_portal

DEMO_FLAWS = {
    "mfa_step_skippable": "mfa.skip",
    "otp_not_bound": "mfa.otp-not-bound",
    "otp_reuse": "mfa.otp-reuse",
    "otp_unlimited_guesses": "mfa.otp-guessing",
    "remember_device_forgeable": "mfa.remember-device",
}
MFA = sorted(DEMO_FLAWS.values())
PORTAL_WEAKENED = safeguards_caught_by("mfa")


# --- the demo oracle ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("flaw", "check_id"), sorted(DEMO_FLAWS.items()))
def test_each_mfa_check_fires_on_its_demo_flaw(scan_demo: Callable[..., ScanResult], flaw: str,
                                               check_id: str) -> None:
    found = findings_of(scan_demo(flaws=flaw, checks=[check_id]), check_id)
    assert len(found) == 1 and found[0].confidence.value == "confirmed"


def test_mfa_checks_are_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=MFA)
    assert findings_of(result, "mfa.skip") == [] and result.findings == []
    assert all(c.requests for c in result.checks)


def test_seeds_codes_and_passwords_never_reach_mfa_findings(scan_demo: Callable[..., ScanResult]) -> None:
    from bastion.demo.db import TOTP_SECRETS, USERS

    result = scan_demo(flaws=",".join(DEMO_FLAWS), checks=MFA)
    assert {f.check_id for f in result.findings} == set(DEMO_FLAWS.values())
    dumped = "".join(f.model_dump_json(exclude={"fingerprint"}) for f in result.findings)
    assert not [s for s in TOTP_SECRETS.values() if s in dumped]
    assert not [pw for _, _, pw, _, _ in USERS[:3] if pw in dumped]
    assert "code=" in dumped and re.search(r"code=\d{6}", dumped) is None  # submitted codes are masked


# --- a third-party-style portal -------------------------------------------------------------------------


@pytest.mark.parametrize("guard", sorted(PORTAL_WEAKENED))
def test_each_mfa_check_fires_on_the_portal_without_its_safeguard(guard: str) -> None:
    assert portal_findings_without(guard) == [PORTAL_WEAKENED[guard]]


@pytest.mark.parametrize("check_id", sorted(PORTAL_WEAKENED.values()))
def test_the_safe_portal_is_clean_for_each_mfa_check(check_id: str) -> None:
    result = scan_portal([check_id])
    assert findings_of(result, check_id) == [] and result.checks[0].requests > 0


def test_no_code_guessing_without_write_permission() -> None:
    from bastion.engine.writes import WritePolicy

    result = scan_portal(["mfa.otp-guessing"], writes=WritePolicy("none"), limit=False)
    assert findings_of(result, "mfa.otp-guessing") == []


def test_checks_needing_two_mfa_roles_stay_silent_with_one() -> None:
    result = scan_portal(["mfa.otp-not-bound", "mfa.remember-device"], names=("carol", "erin"),
                         bind=False, random_trust=False)
    assert findings_of(result, "mfa.otp-not-bound") == findings_of(result, "mfa.remember-device") == []


def test_portal_secrets_stay_out_of_mfa_findings() -> None:
    result = scan_portal(MFA, **dict.fromkeys(PORTAL_WEAKENED, False))
    assert len(result.findings) == 5
    dumped = "".join(f.model_dump_json(exclude={"fingerprint"}) for f in result.findings)
    assert PASSWORD not in dumped and not [s for s in SECRETS.values() if s in dumped]


# --- helpers --------------------------------------------------------------------------------------------


def test_forging_a_remember_token_for_another_user() -> None:
    assert forge_for("alice", "alice", "admin") == "admin"
    token = base64.urlsafe_b64encode(b'{"user": "alice"}').decode()
    forged = forge_for(token, "alice", "admin")
    assert forged is not None and base64.urlsafe_b64decode(forged) == b'{"user": "admin"}'
    unpadded = base64.b64encode(b"device:alice").decode().rstrip("=")
    assert base64.b64decode(forge_for(unpadded, "alice", "bob") + "==") == b"device:bob"  # type: ignore[operator]
    # Random tokens, or names only inside longer words, are not forgeable.
    assert forge_for("Zm9vYmFy" * 4, "alice", "admin") is None
    assert forge_for("malice-token", "alice", "admin") is None
