"""JWT recall on unseen APIs: secrets cracked offline, probes with path parameters, privilege claims raised."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask, abort, jsonify, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.identity.jwt import JWT_IN_TEXT
from bastion.identity.login import login_roles_sync
from bastion.model.schema import RoleConfig
from bastion.session import discover
from bastion.target.target import Target
from bastion.testing import findings_of

PASSWORD = "Shelf-Passw0rd!"
WORD = "secret123"  # in the weak-secret dictionary, shorter than MIN_SECRET_TO_MASK
USERS = {"gail": "user", "hugo": "user", "root": "admin"}


def _token(user: str, key: str, **extra: Any) -> str:
    now = int(time.time())
    return pyjwt.encode({"sub": user, "iat": now, "exp": now + 600, **extra}, key, algorithm="HS256")


def api_app(*, key: str = "k" * 48, verify_docs: bool = True, role_claim: bool = False,
            admin_check: str = "verified", admin_claim: str = "role") -> Flask:
    """A bearer-token API: a public listing, one protected route per document id, an admin report.

    `admin_check`: how the admin report decides: "verified" (role from the server's records),
    "unverified" (claim of a payload never verified), "alg-none" (verifies, but takes alg none),
    "signed-claim" (the claim of a verified token).
    """
    app = Flask("shelf")

    @app.post("/auth/login")
    def login() -> Any:
        body = request.get_json(silent=True) or {}
        if body.get("username") not in USERS or body.get("password") != PASSWORD:
            return jsonify(error="bad credentials"), 401
        extra = {"role": USERS[body["username"]]} if role_claim else {}
        return jsonify(token=_token(body["username"], key, **extra))

    def bearer() -> str:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            abort(401)
        return auth[7:].strip()

    def verified(verify: bool = True) -> dict[str, Any]:
        try:
            if not verify:
                return dict(pyjwt.decode(bearer(), options={"verify_signature": False}))
            return dict(pyjwt.decode(bearer(), key, algorithms=["HS256"]))
        except pyjwt.PyJWTError:
            abort(401)

    @app.get("/")
    def index() -> Any:
        return jsonify(service="shelf", docs=[{"doc_id": 7, "title": "Q3 plan"}])

    @app.get("/docs/<int:doc_id>")
    def doc(doc_id: int) -> Any:
        claims = verified(verify_docs)
        if doc_id != 7:
            return jsonify(error="no such document"), 404
        return jsonify(doc_id=doc_id, reader=claims["sub"], body="plan text")

    @app.get("/admin/report")
    def report() -> Any:
        if admin_check == "unverified":
            claims = verified(False)
            allowed = claims.get(admin_claim) in ("admin", True) or "admin" in (claims.get(admin_claim) or [])
        elif admin_check == "alg-none" and pyjwt.get_unverified_header(bearer()).get("alg") == "none":
            allowed = pyjwt.decode(bearer(), options={"verify_signature": False}).get(admin_claim) == "admin"
        elif admin_check == "signed-claim":
            allowed = verified().get(admin_claim) == "admin"
        else:
            allowed = USERS.get(str(verified()["sub"])) == "admin"
        if not allowed:
            return jsonify(error="administrators only"), 403
        return jsonify(users=sorted(USERS), documents=1)

    return app


def scan_api(checks: list[str], roles: tuple[str, ...] = ("gail", "hugo"), **flags: Any) -> ScanResult:
    target = Target.from_app(api_app(**flags))
    configs = {name: RoleConfig.model_validate({"login": {"path": "/auth/login", "json": {
        "username": name, "password": PASSWORD}}}) for name in roles}
    login = login_roles_sync(target, configs)
    return run_scan(target, discover(target, crawl=False),
                    ScanOptions(checks=checks, roles=login, role_configs=configs, secrets=[PASSWORD]))


def _fired(result: ScanResult) -> set[str]:
    errors = [e for c in result.checks for e in c.errors]
    assert not errors, errors
    return {f.check_id for f in result.findings}


def _dumped(result: ScanResult) -> str:
    return json.dumps([f.public_dict() for f in result.findings])


# --- weak secret: the offline crack is the proof ------------------------------------------------------------


def test_weak_secret_is_confirmed_offline_without_any_probe() -> None:
    """No GET the token opens is known (the doc id is not guessable from anywhere): the crack alone counts."""
    app = api_app(key=WORD)
    app.view_functions["index"] = lambda: jsonify(service="shelf")  # no document id anywhere
    target = Target.from_app(app)
    configs = {"gail": RoleConfig.model_validate({"login": {"path": "/auth/login", "json": {
        "username": "gail", "password": PASSWORD}}})}
    result = run_scan(target, discover(target, crawl=False),
                      ScanOptions(checks=["jwt.weak-secret"], roles=login_roles_sync(target, configs),
                                  role_configs=configs, secrets=[PASSWORD]))
    [finding] = findings_of(result, "jwt.weak-secret")
    assert finding.confidence.value == "confirmed" and finding.role == "gail"
    assert (finding.location.method, finding.location.path) == ("POST", "/auth/login")
    dumped = _dumped(result)
    assert WORD not in dumped and "s*******3" in dumped and not JWT_IN_TEXT.search(dumped)


def test_weak_secret_probe_with_a_path_parameter_adds_the_accepted_exchange() -> None:
    result = scan_api(["jwt.weak-secret"], key=WORD)
    [finding] = findings_of(result, "jwt.weak-secret")
    assert finding.location.path == "/docs/{doc_id}" and finding.proof is not None
    assert WORD not in _dumped(result)


def test_strong_secret_near_miss_is_clean() -> None:
    assert _fired(scan_api(["jwt"], role_claim=True)) == set()


def test_masked_secret_shows_at_most_the_first_and_last_character() -> None:
    from bastion.checks.jwt import masked_secret

    assert masked_secret("secret123") == "s*******3, 9 characters"
    assert masked_secret("abc") == "3 characters, withheld"


# --- probes with path parameters -------------------------------------------------------------------------


def test_signature_unchecked_found_on_a_route_with_a_path_parameter() -> None:
    """The only token-protected GET is /docs/{doc_id}; id 7 comes from the role's own view of /."""
    result = scan_api(["jwt.signature-unchecked"], verify_docs=False)
    [finding] = findings_of(result, "jwt.signature-unchecked")
    assert finding.location.path == "/docs/{doc_id}" and finding.proof is not None
    assert finding.proof.request.url.endswith("/docs/7")


def test_path_probes_are_bounded() -> None:
    from bastion.checks import jwt as checks

    result = scan_api(["jwt.signature-unchecked"])
    assert _fired(result) == set()
    budget = 2 * (checks.MAX_PROBE_CANDIDATES + checks.MAX_PATH_PROBE_CANDIDATES * checks.MAX_IDS_PER_PATH)
    assert 0 < result.checks[0].requests <= budget


# --- claim escalation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "claim", "route"), [
    ({"admin_check": "unverified", "role_claim": True}, "role", "old signature kept"),
    ({"admin_check": "unverified", "admin_claim": "is_admin"}, "is_admin", "old signature kept"),
    ({"admin_check": "unverified", "admin_claim": "groups"}, "groups", "old signature kept"),
    ({"admin_check": "alg-none", "role_claim": True}, "role", "alg none"),
], ids=["role-claim", "absent-is-admin", "groups-list", "alg-none-only-there"])
def test_raised_claim_opening_the_admin_route_is_found(flags: dict[str, Any], claim: str, route: str) -> None:
    result = scan_api(["jwt.claim-escalation"], **flags)
    [finding] = findings_of(result, "jwt.claim-escalation")
    assert finding.location.path == "/admin/report" and finding.confidence.value == "confirmed"
    assert f"claim {claim!r}" in finding.title and route in finding.title
    assert finding.role == "gail" and not JWT_IN_TEXT.search(_dumped(result))


def test_weak_secret_forging_route_raises_claims_too() -> None:
    """The admin report verifies the signature and trusts the signed role: the cracked secret re-signs it."""
    result = scan_api(["jwt.claim-escalation", "jwt.weak-secret"], key=WORD, role_claim=True,
                      admin_check="signed-claim")
    assert _fired(result) == {"jwt.claim-escalation", "jwt.weak-secret"}
    [finding] = findings_of(result, "jwt.claim-escalation")
    assert "re-signed with the cracked secret" in finding.title and WORD not in _dumped(result)


def test_signed_role_claim_with_a_strong_secret_is_clean() -> None:
    """Trusting a claim the server itself signed (strong key) is fine: nothing can be forged."""
    assert _fired(scan_api(["jwt"], role_claim=True, admin_check="signed-claim")) == set()


def test_claim_escalation_silent_on_a_safe_app_with_an_admin_role() -> None:
    """root (admin) opens the report, gail and hugo do not; the role comes from the server's records."""
    result = scan_api(["jwt.claim-escalation"], roles=("gail", "root"), role_claim=True)
    assert _fired(result) == set() and result.checks[0].requests > 0


def test_admin_role_tokens_are_not_escalated() -> None:
    """Only non-admin roles' tokens are raised: root's own token opening the report is its right."""
    result = scan_api(["jwt.claim-escalation"], roles=("root",), admin_check="unverified", role_claim=True)
    assert _fired(result) == set()


# --- the demo ----------------------------------------------------------------------------------------------


def test_demo_role_claim_trusted(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="jwt_role_claim_trusted", checks=["jwt.claim-escalation"])
    [finding] = result.findings
    assert finding.location.path == "/api/admin/metrics" and finding.role == "bob"
    assert "'role'" in finding.title


def test_demo_hardened_twin_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=["jwt.claim-escalation"])
    assert result.findings == [] and result.checks[0].requests > 0


def test_claim_raises_keep_the_token_types() -> None:
    from bastion.checks.jwt import claim_raises

    raises = dict(claim_raises({"scope": "read", "roles": ["user"], "is_admin": False}, {}))
    assert raises["scope"] == {"scope": "read admin"}
    assert raises["roles"] == {"roles": ["user", "admin"]}
    assert raises["is_admin"] == {"is_admin": True}
    everything = next(v for k, v in raises.items() if "+" in k)
    assert everything["role"] == "admin" and everything["permissions"] == ["admin"]
    # A more privileged role's own claim value wins over the generic one.
    assert dict(claim_raises({"role": "member"}, {"role": "owner"}))["role"] == {"role": "owner"}


def test_secret_never_in_tokens_evidence() -> None:
    result = scan_api(["jwt"], key=WORD, admin_check="unverified", role_claim=True)
    assert {"jwt.weak-secret", "jwt.claim-escalation"} <= _fired(result)
    assert WORD not in _dumped(result)
