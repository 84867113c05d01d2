"""Crypto checks: fire on the demo's planted flaws and on a small third-party app, silent on the safe twins."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from flask import Flask, jsonify, request
from werkzeug.security import generate_password_hash

from bastion.engine.runner import ScanResult
from bastion.findings.model import Confidence
from bastion.testing import findings_of, scan_app

CHECKS = ["crypto.cipher-misuse", "crypto.weak-password-hash", "crypto.insecure-random"]
# Routes: the first one the exercise pass sends that reaches the call site (both sign-ups hash the password).
DEMO = [("aes_gcm_static_nonce", "crypto.cipher-misuse", "src/bastion/demo/notes.py", {"POST /api/notes"}),
        ("md5_password_hashes", "crypto.weak-password-hash", "src/bastion/demo/db.py",
         {"POST /signup", "POST /api/register"}),
        ("random_reset_tokens", "crypto.insecure-random", "src/bastion/demo/accounts.py", {"POST /password-reset"})]


@pytest.mark.parametrize(("flaw", "check_id", "file", "route"), DEMO)
def test_fires_on_the_demo_flaw_at_the_apps_file_and_line(scan_demo: Callable[..., ScanResult], flaw: str,
                                                          check_id: str, file: str, route: set[str]) -> None:
    found = findings_of(scan_demo(flaws=flaw, checks=CHECKS), check_id)
    assert found
    assert route & {f"{f.location.method} {f.location.path}" for f in found}
    for f in found:
        assert f.confidence == Confidence.confirmed
        assert f.location.file == file and f.location.line
        assert "blind" in f.title and any(e.kind == "sensor" for e in f.evidence)


def test_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=CHECKS)
    assert [f for f in result.findings if f.check_id in CHECKS] == []
    assert not [c.errors for c in result.checks if c.errors]


def test_demo_evidence_never_holds_the_password_or_the_nonce(scan_demo: Callable[..., ScanResult]) -> None:
    text = "\n".join(f.model_dump_json() for f in scan_demo(flaws="all", checks=CHECKS).findings)
    assert "crypto.nonce-reuse" in text and "000000000000000000000000" not in text
    assert "Pw-bst" not in text  # the exercise identity's password


# --- a third-party service, vulnerable and safe -------------------------------------------------------

KEY = bytes(range(32))


def vulnerable_app() -> Flask:
    app = Flask(__name__)
    users: dict[str, str] = {}

    @app.post("/register")
    def register() -> object:
        username, password = request.form.get("username", ""), request.form.get("password", "")
        users[username] = hashlib.sha1(password.encode()).hexdigest()  # noqa: S324 - the flaw under test
        return jsonify(ok=True), 201

    @app.post("/api/messages")
    def message() -> object:
        text = (request.get_json(silent=True) or {}).get("text", "").encode().ljust(16)[:16]
        sealed = Cipher(algorithms.AES(KEY), modes.CBC(b"fixed-iv-16bytes")).encryptor().update(text)
        digest = Cipher(algorithms.AES(KEY), modes.ECB()).encryptor().update(text)
        return jsonify(sealed=sealed.hex(), digest=digest.hex())

    @app.post("/api/invites")
    def send_invitation() -> object:
        email = (request.get_json(silent=True) or {}).get("email", "")
        invite_code = f"{random.randint(0, 999_999):06d}"  # noqa: S311 - the flaw under test
        return jsonify(email=email, sent=bool(invite_code))

    @app.post("/api/keys")
    def new_key() -> object:
        label = (request.get_json(silent=True) or {}).get("label", "")
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        return jsonify(label=label)

    return app


def safe_app() -> Flask:
    """The same service done right: slow salted hash, random IVs, AEAD with fresh nonces, secrets, 3072-bit RSA."""
    import secrets

    app = Flask(__name__)
    users: dict[str, str] = {}

    @app.post("/register")
    def register() -> object:
        username, password = request.form.get("username", ""), request.form.get("password", "")
        users[username] = generate_password_hash(password)
        # A checksum of the username in a function that also holds the password: not a password hash.
        users[username + ".tag"] = hashlib.md5(username.encode()).hexdigest()  # noqa: S324
        return jsonify(ok=True), 201

    @app.post("/api/messages")
    def message() -> object:
        text = (request.get_json(silent=True) or {}).get("text", "").encode().ljust(16)[:16]
        sealed = Cipher(algorithms.AES(KEY), modes.CBC(os.urandom(16))).encryptor().update(text)
        boxed = ChaCha20Poly1305(KEY).encrypt(os.urandom(12), text, None)
        return jsonify(sealed=sealed.hex(), boxed=boxed.hex())

    @app.post("/api/invites")
    def invite() -> object:
        email = (request.get_json(silent=True) or {}).get("email", "")
        invite_code = f"{secrets.randbelow(1_000_000):06d}"
        retry_jitter = random.random()  # noqa: S311 - back-off jitter is not a secret
        return jsonify(email=email, sent=bool(invite_code) and retry_jitter >= 0)

    @app.post("/api/keys")
    def new_key() -> object:
        label = (request.get_json(silent=True) or {}).get("label", "")
        rsa.generate_private_key(public_exponent=65537, key_size=3072)
        return jsonify(label=label)

    return app


@pytest.fixture(scope="module")
def vulnerable() -> ScanResult:
    return scan_app(vulnerable_app(), checks=CHECKS, spec="tests.checks.test_crypto:vulnerable_app()")


def test_third_party_app_cipher_misuse(vulnerable: ScanResult) -> None:
    found = findings_of(vulnerable, "crypto.cipher-misuse")
    titles = sorted(f.title.split(" at ")[0] for f in found)
    assert titles == ["Block cipher used in ECB mode", "Constant IV reused with the same key",
                      "RSA key shorter than 2048 bits generated"]
    assert sorted(f.cwe for f in found) == [326, 327, 329]
    assert all(f.location.file and f.location.file.endswith("tests/checks/test_crypto.py") for f in found)
    assert len({f.fingerprint for f in found}) == 3


def test_third_party_app_password_hash_and_random(vulnerable: ScanResult) -> None:
    (hashed,) = findings_of(vulnerable, "crypto.weak-password-hash")
    assert "sha1 of a password (unsalted)" in hashed.evidence[0].content
    assert (hashed.location.method, hashed.location.path) == ("POST", "/register")
    (rand,) = findings_of(vulnerable, "crypto.insecure-random")
    assert rand.confidence == Confidence.confirmed and "becomes 'invite_code'" in rand.evidence[0].content
    assert (rand.location.method, rand.location.path) == ("POST", "/api/invites")


def test_third_party_safe_twin_is_clean() -> None:
    result = scan_app(safe_app(), checks=CHECKS, spec="tests.checks.test_crypto:safe_app()")
    assert result.findings == []


def test_url_targets_are_skipped_and_the_coverage_says_why() -> None:
    from bastion.engine.runner import ScanOptions, run_scan
    from bastion.surface.model import Surface
    from bastion.target.target import Target

    result = run_scan(Target.from_url("http://127.0.0.1:9"), Surface(), ScanOptions(checks=CHECKS))
    assert result.findings == []
    for stats in result.checks:
        assert [r.skipped for r in stats.unit_records] == ["needs the in-process sensors (an in-process target "
                                                          "with sensors on)"]
        assert stats.requests == 0
