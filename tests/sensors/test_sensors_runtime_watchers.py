"""The wrapper sensors: templates, logging, crypto, random and session writes; no effect without a session."""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path

import jinja2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from bastion.sensors import SensorSession, sensor_session
from bastion.sensors import crypto as sensed
from bastion.sensors.logs import classify_log

HERE = str(Path(__file__).parent)
KEY = bytes(range(32))


def _kinds(session: SensorSession) -> list[str]:
    return [e.kind for e in session.events]


def test_template_sensor_sees_from_string_and_template() -> None:
    with sensor_session(SensorSession([HERE])) as s:
        jinja2.Environment().from_string("Hi {{ name }} bsttmpl0001")
        jinja2.Template("bsttmpl0002 {{ 7*7 }}")
    events = s.of_kind("template")
    assert [e.raw_detail for e in events] == ["Hi {{ name }} bsttmpl0001", "bsttmpl0002 {{ 7*7 }}"]
    assert all(e.file == __file__ and e.line for e in events)


def test_log_sensor_captures_below_level_without_changing_the_output(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("bastion.tests.app")
    logger.setLevel(logging.WARNING)
    caplog.set_level(logging.WARNING, logger="bastion.tests.app")
    with sensor_session(SensorSession([HERE])) as s:
        logger.info("login user=%s password=%s", "alice", "hunter2secret")
        logger.warning("disk at %d%%", 91)
    assert [r.getMessage() for r in caplog.records] == ["disk at 91%"]  # the app's handlers saw only this
    info, warning = s.of_kind("log")
    assert "below the logger's level" in info.raw_detail and "hunter2secret" in info.raw_detail
    assert "hunter2secret" not in info.detail  # shown redacted
    assert info.file == __file__ and info.line
    assert "below" not in warning.raw_detail
    assert not logger.isEnabledFor(logging.INFO)  # outside the session the level is the level again


def test_log_sensor_ignores_library_records_when_app_roots_are_given() -> None:
    with sensor_session(SensorSession(["/nonexistent-app-root"])) as s:
        logging.getLogger("lib").error("password=hunter2secret")
    assert s.events == []


def test_classify_log_finds_secrets_cards_and_emails_but_not_masked_values() -> None:
    leaks = classify_log("user bob password=hunter2secret card 4111 1111 1111 1111 mail bob@example.com",
                         secrets=["hunter2secret"])
    assert {(k.kind, k.what) for k in leaks} == {
        ("secret", "a credential the scan used"), ("secret", "the value of 'password'"),
        ("pii", "a payment card number"), ("pii", "an e-mail address")}
    assert classify_log("password=*** token=[filtered] order 4111 1111 1111 1112") == []
    iban = classify_log("iban: DE89370400440532013000", pii_fields=["iban"])
    assert [k.what for k in iban] == ["the value of 'iban'"]


def hash_password(password: str) -> str:
    return hashlib.md5(password.encode()).hexdigest()  # noqa: S324 - what the sensor must see


def hash_password_sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def salted_sha256(password: str, salt: bytes) -> str:
    return hashlib.sha256(salt + password.encode()).hexdigest()


def etag(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()  # noqa: S324 - not a password: silent


def new_reset_token() -> str:
    return "".join(random.choice("abcdef") for _ in range(16))  # noqa: S311


def shuffle_deck() -> int:
    return random.randint(1, 6)  # noqa: S311 - a dice roll: silent


def test_password_hash_and_random_watchers() -> None:
    with sensor_session(SensorSession([HERE])) as s:
        hash_password("hunter2secret")
        hash_password_sha256("hunter2secret")
        salted_sha256("hunter2secret", b"0123456789abcdef")
        hashlib.new("sha1", b"x")
        etag(b"hunter2secret")
        new_reset_token()
        new_reset_token()
        shuffle_deck()
    details = [e.detail for e in s.events]
    assert details == ["hashlib md5 of a password (unsalted) in hash_password()",
                       "hashlib sha256 of a password (unsalted) in hash_password_sha256()",
                       "random.choice() (not a CSPRNG) in new_reset_token(): its value becomes 'new_reset_token'"]
    assert all("hunter2secret" not in e.raw_detail for e in s.events)


def test_cipher_watchers_nonce_reuse_ecb_static_iv_small_rsa() -> None:
    nonce, iv = bytes(12), b"\x01" * 16
    with sensor_session(SensorSession([HERE])) as s:
        AESGCM(KEY).encrypt(nonce, b"one", None)
        AESGCM(KEY).encrypt(nonce, b"two", None)  # a new object, the same key and nonce
        AESGCM(bytes(32)).encrypt(nonce, b"other key", None)  # another key: not reuse
        ChaCha20Poly1305(KEY).encrypt(b"\x02" * 12, b"x", None)
        Cipher(algorithms.AES(KEY), modes.ECB()).encryptor()
        for _ in range(2):
            Cipher(algorithms.AES(KEY), modes.CBC(iv)).encryptor()
            Cipher(algorithms.AES(KEY), modes.CBC(iv)).decryptor()  # decrypting twice is normal
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert _kinds(s) == [sensed.NONCE_REUSE, sensed.ECB_MODE, sensed.STATIC_IV, sensed.SMALL_RSA]
    for e in s.events:
        assert e.file == __file__
        assert KEY.hex() not in e.raw_detail and iv.hex() not in e.raw_detail


def test_fresh_nonces_and_no_session_record_nothing() -> None:
    import os

    with sensor_session(SensorSession([HERE])) as s:
        for _ in range(3):
            AESGCM(KEY).encrypt(os.urandom(12), b"x", None)
            Cipher(algorithms.AES(KEY), modes.CBC(os.urandom(16))).encryptor()
    assert s.events == []
    outside = SensorSession([HERE])
    with sensor_session(outside):
        pass
    AESGCM(KEY).encrypt(bytes(12), b"x", None)
    AESGCM(KEY).encrypt(bytes(12), b"x", None)
    hash_password("hunter2secret")
    assert outside.events == []
    assert hashlib.md5(b"abc").hexdigest() == "900150983cd24fb0d6963f7d28e17f72"  # noqa: S324 - still hashlib


def test_session_sensor_records_flask_session_writes() -> None:
    from flask import Flask, request, session

    app = Flask(__name__)
    app.secret_key = "k" * 32

    @app.get("/")
    def index() -> str:
        session["theme"] = request.args.get("theme", "")
        return "ok"

    with sensor_session(SensorSession([HERE])) as s:
        app.test_client().get("/?theme=bsttheme0001")
    (event,) = s.of_kind("session")
    assert event.raw_detail == "session['theme'] = 'bsttheme0001'" and event.file == __file__
