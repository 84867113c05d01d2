"""The catalog is complete data, and every check is tied to it and to a planted demo flaw."""

from __future__ import annotations

import re

from bastion.catalog import load_catalog
from bastion.checks.registry import load_checks
from bastion.demo.flaws import FLAWS

OWASP_TOP10 = re.compile(r"^A(0[1-9]|10):2021$")
OWASP_API = re.compile(r"^API([1-9]|10):2023$")


def test_every_threat_has_complete_metadata() -> None:
    threats = load_catalog()
    assert threats
    for t in threats.values():
        assert t.cwe > 0 and t.mitigation.strip() and t.summary.strip() and t.why.strip(), t.id
        assert t.stride, t.id
        assert t.owasp or t.owasp_api, f"{t.id}: no OWASP reference"
        assert all(OWASP_TOP10.match(o) for o in t.owasp), t.id
        assert all(OWASP_API.match(o) for o in t.owasp_api), t.id


def test_every_check_points_at_a_catalog_threat() -> None:
    threats = load_catalog()
    for cid, spec in load_checks().items():
        assert spec.threat in threats, cid
        assert spec.cwe and spec.mitigation and spec.owasp, cid


# Checks whose flaw cannot be planted without making the suite depend on real time: each is proven on a
# test app with a virtual clock instead (the file named here).
NO_DEMO_FLAW = {"fuzz.latency": "tests/fuzz/test_latency.py"}


def test_every_check_has_a_planted_demo_flaw() -> None:
    planted = {c for flaw in FLAWS.values() for c in flaw.checks} | set(NO_DEMO_FLAW)
    missing = sorted(set(load_checks()) - planted)
    assert not missing, f"checks without a demo flaw to prove they fire: {missing}"


def test_every_flaw_names_registered_checks() -> None:
    checks = load_checks()
    for flaw in FLAWS.values():
        assert flaw.checks and set(flaw.checks) <= set(checks), flaw.id
