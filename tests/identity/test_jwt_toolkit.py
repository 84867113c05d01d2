"""The JWT toolkit: decoding, forging, tampering, key confusion, kid tricks, cracking; and the forge_jwt fixture."""

from __future__ import annotations

import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bastion.identity.jwt import (
    MalformedJWT,
    b64url_decode,
    crack_hs,
    decode_unverified,
    expired_copy,
    forge,
    hmac_sign,
    kid_variants,
    looks_like_jwt,
    not_yet_valid_copy,
    pem_spellings,
    public_pems_from_jwks,
    resign_hs_with_public_key,
    strip_signature,
    tamper_signature,
    with_claims,
)
from bastion.payloads import load_payloads

SECRET = "a-strong-enough-test-secret-of-32-bytes!"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_decode_and_shape() -> None:
    token = pyjwt.encode({"sub": "7"}, SECRET, algorithm="HS256", headers={"kid": "k1"})
    decoded = decode_unverified(token)
    assert decoded.header["kid"] == "k1" and decoded.alg == "HS256" and decoded.claims == {"sub": "7"}
    assert looks_like_jwt(token)
    for value in ("", "abc", "a.b.c", "eyJhbGciOi.eyJ.", None, 42, "x" * 20_000, "bm90IGpzb24.e30.sig"):
        assert not looks_like_jwt(value), value
    with pytest.raises(MalformedJWT):
        decode_unverified("only.two")
    with pytest.raises(MalformedJWT):
        decode_unverified("W10.e30.")  # header is a JSON list, not an object


def test_forge_alg_none_variants_and_strip() -> None:
    token = forge({"sub": "1"}, alg="none")
    assert token.endswith(".") and decode_unverified(token).alg == "none"
    # PyJWT itself reads the unsigned token back when told to skip verification.
    assert pyjwt.decode(token, options={"verify_signature": False}) == {"sub": "1"}
    assert decode_unverified(forge({"sub": "1"}, alg="nOnE")).alg == "nOnE"
    signed = pyjwt.encode({"sub": "1"}, SECRET, algorithm="HS256")
    assert strip_signature(signed) == signed.rsplit(".", 1)[0] + "."


def test_forge_hs_and_rs_verify_with_pyjwt(rsa_key: rsa.RSAPrivateKey) -> None:
    hs = forge({"sub": "2"}, alg="HS256", key=SECRET)
    assert pyjwt.decode(hs, SECRET, algorithms=["HS256"]) == {"sub": "2"}
    rs = forge({"sub": "3"}, {"kid": "r1"}, alg="RS256", key=rsa_key)
    assert pyjwt.decode(rs, rsa_key.public_key(), algorithms=["RS256"]) == {"sub": "3"}
    assert decode_unverified(rs).header["kid"] == "r1"
    # An empty HMAC key (the /dev/null kid trick) is what PyJWT refuses; the toolkit signs it by hand.
    empty = forge({"sub": "4"}, alg="HS256", key="")
    assert b64url_decode(empty.split(".")[2]) == hmac_sign(empty.rsplit(".", 1)[0].encode(), b"")


def test_with_claims_tamper_and_resign() -> None:
    token = pyjwt.encode({"sub": "1", "role": "user"}, SECRET, algorithm="HS256")
    tampered = with_claims(token, {"role": "admin"})
    assert decode_unverified(tampered).claims["role"] == "admin"
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(tampered, SECRET, algorithms=["HS256"])
    resigned = with_claims(token, {"role": "admin", "sub": None}, key=SECRET)
    assert pyjwt.decode(resigned, SECRET, algorithms=["HS256"]) == {"role": "admin"}
    broken = tamper_signature(token)
    assert broken.rsplit(".", 1)[0] == token.rsplit(".", 1)[0] and broken != token
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(broken, SECRET, algorithms=["HS256"])


def test_expired_and_not_yet_valid_copies_are_refused_by_a_correct_verifier() -> None:
    token = pyjwt.encode({"sub": "1", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    with pytest.raises(pyjwt.ExpiredSignatureError):
        pyjwt.decode(expired_copy(token, SECRET), SECRET, algorithms=["HS256"])
    with pytest.raises(pyjwt.ImmatureSignatureError):
        pyjwt.decode(not_yet_valid_copy(token, SECRET), SECRET, algorithms=["HS256"])
    # ...and both are validly signed: a verifier that skips time checks accepts them.
    opts = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}
    assert pyjwt.decode(expired_copy(token, SECRET, now=1000), SECRET, algorithms=["HS256"],
                        options=opts)["exp"] == 1000 - 3600


def test_key_confusion_token_verifies_with_the_pem_as_hmac_key(rsa_key: rsa.RSAPrivateKey) -> None:
    genuine = pyjwt.encode({"sub": "5"}, rsa_key, algorithm="RS256", headers={"kid": "r1"})
    pem = _pem(rsa_key)
    confused = resign_hs_with_public_key(genuine, pem)
    decoded = decode_unverified(confused)
    assert decoded.alg == "HS256" and decoded.header["kid"] == "r1" and decoded.claims == {"sub": "5"}
    assert hmac_sign(decoded.signing_input, pem) == decoded.signature
    spellings = pem_spellings(pem)
    assert pem in spellings and pem.rstrip(b"\n") in spellings
    assert any(s.startswith(b"-----BEGIN RSA PUBLIC KEY-----") for s in spellings)


def test_public_pems_from_jwks(rsa_key: rsa.RSAPrivateKey) -> None:
    import json

    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    doc = {"keys": [{**jwk, "kid": "r1"}, {"kty": "RSA", "n": "!!", "e": "AQAB"}, "junk", {"kty": "oct", "k": "x"}]}
    keys = public_pems_from_jwks(doc)
    assert keys == [("r1", _pem(rsa_key))]
    assert public_pems_from_jwks(None) == [] and public_pems_from_jwks({"keys": "nope"}) == []


def test_kid_variants_sign_with_the_variant_key() -> None:
    token = pyjwt.encode({"sub": "1"}, SECRET, algorithm="HS256", headers={"kid": "main"})
    pairs = kid_variants(token)
    assert 2 <= len(pairs) <= 10
    names = " ".join(v.name for v, _ in pairs)
    assert "traversal" in names and "SQL" in names
    for variant, forged in pairs:
        decoded = decode_unverified(forged)
        assert decoded.header["kid"] == variant.kid and decoded.claims == {"sub": "1"}
        assert hmac_sign(decoded.signing_input, variant.key.encode()) == decoded.signature


def test_crack_hs_is_bounded_and_offline() -> None:
    words = load_payloads().get("jwt_secrets")
    assert 200 <= len(words) <= 1000 and all(isinstance(w, str) for w in words)
    weak = forge({"sub": "1"}, alg="HS256", key="your-256-bit-secret")
    assert crack_hs(weak, words) == "your-256-bit-secret"
    assert crack_hs(weak, words, limit=1) is None  # the limit stops before the right entry
    assert crack_hs(pyjwt.encode({"sub": "1"}, SECRET, algorithm="HS256"), words) is None
    assert crack_hs(forge({"sub": "1"}, alg="none"), words) is None  # not an HMAC token
    hs512 = pyjwt.encode({"sub": "1"}, "changeme" * 8, algorithm="HS512")
    assert crack_hs(hs512, ["nope", "changeme" * 8]) == "changeme" * 8


def test_forge_jwt_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import jwt

        def test_forge(forge_jwt):
            token = forge_jwt({"sub": "1"}, alg="HS256", key="k" * 32)
            assert jwt.decode(token, "k" * 32, algorithms=["HS256"]) == {"sub": "1"}
            unsigned = forge_jwt({"sub": "2"})
            assert forge_jwt.decode(unsigned).alg == "none"
            assert forge_jwt.with_claims(token, {"sub": "3"}, key="k" * 32)
            assert forge_jwt.expired_copy(token, "k" * 32)
            assert forge_jwt.crack_hs(token, ["a", "k" * 32]) == "k" * 32
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
