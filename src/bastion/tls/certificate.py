"""The endpoint's certificate: validity period, trust, host name, key size, signature hash and SPKI pin.

The leaf is fetched without verification (so a broken certificate can still be examined); trust is then
checked with OpenSSL against the model's CA file (`tls.ca_file`) or the system store, host name matching
is done here on the subjectAltName (clients ignore the CN), and the time checks use `now`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import socket
import ssl
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from bastion.tls.endpoint import TlsEndpoint

ProblemKind = Literal["expired", "not-yet-valid", "untrusted", "self-signed", "hostname", "weak-key",
                      "weak-signature", "pin-mismatch"]
MIN_RSA_BITS = 2048
MIN_EC_BITS = 224
WEAK_HASHES = ("md5", "sha1")
CONNECT_TIMEOUT = 5.0
# OpenSSL verify codes that are about time: reported as expired / not yet valid, not as untrusted.
_TIME_ERRORS = {9, 10}
_SELF_SIGNED_ERRORS = {18, 19}


@dataclass(frozen=True)
class CertProblem:
    """One thing wrong with the certificate."""

    kind: ProblemKind
    title: str
    detail: str


@dataclass
class CertificateReport:
    """What was learnt about the leaf certificate; `error` when none could be fetched."""

    summary: str = ""
    problems: list[CertProblem] = field(default_factory=list)
    pin: str = ""
    error: str | None = None

    def of(self, *kinds: ProblemKind) -> list[CertProblem]:
        return [p for p in self.problems if p.kind in kinds]


def _lenient_client(verify: bool, cafile: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # matched on the SAN below, so a mismatch is reported, not fatal
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        if cafile:
            ctx.load_verify_locations(cafile=cafile)
        else:
            ctx.load_default_certs()
    else:
        ctx.verify_mode = ssl.CERT_NONE
    # Reach servers that only speak old protocols or suites: grading them is the point.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def _connect(endpoint: TlsEndpoint, ctx: ssl.SSLContext) -> bytes:
    with socket.create_connection((endpoint.host, endpoint.port), timeout=CONNECT_TIMEOUT) as raw, \
            ctx.wrap_socket(raw, server_hostname=endpoint.server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server sent no certificate")
    return der


def trust_problem(endpoint: TlsEndpoint, cert: x509.Certificate) -> CertProblem | None:
    """Untrusted or self-signed per OpenSSL; time errors are left to the validity check."""
    anchor = f"the CA file {endpoint.ca_file.name}" if endpoint.ca_file else "the system trust store"
    try:
        _connect(endpoint, _lenient_client(True, str(endpoint.ca_file) if endpoint.ca_file else None))
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code in _TIME_ERRORS:
            return None
        if exc.verify_code in _SELF_SIGNED_ERRORS or cert.issuer == cert.subject:
            return CertProblem("self-signed", "TLS certificate is self-signed",
                               f"OpenSSL: {exc.verify_message}; not issued by a CA in {anchor}")
        return CertProblem("untrusted", "TLS certificate is not trusted",
                           f"OpenSSL: {exc.verify_message} (trust anchors: {anchor})")
    return None


def hostname_matches(cert: x509.Certificate, name: str) -> bool:
    """RFC 6125 matching on the subjectAltName: DNS names (leftmost-label wildcard) and IP addresses."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None:
        return address in san.get_values_for_type(x509.IPAddress)
    wanted = name.lower().rstrip(".")
    for pattern in (d.lower().rstrip(".") for d in san.get_values_for_type(x509.DNSName)):
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def spki_pin(cert: x509.Certificate) -> str:
    """The HPKP-style pin of the certificate's public key: 'sha256/' + base64(SHA-256(SPKI))."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _key_description(cert: x509.Certificate) -> tuple[str, CertProblem | None]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        kind = "RSA" if isinstance(key, rsa.RSAPublicKey) else "DSA"
        weak = key.key_size < MIN_RSA_BITS
    elif isinstance(key, ec.EllipticCurvePublicKey):
        kind, weak = f"EC {key.curve.name}", key.key_size < MIN_EC_BITS
    else:
        return type(key).__name__.removesuffix("PublicKey"), None
    text = f"{kind} {key.key_size} bits"
    if weak:
        return text, CertProblem("weak-key", f"TLS certificate key is too small ({text})",
                                 f"{text}; use RSA >= {MIN_RSA_BITS} bits or EC P-256 or larger")
    return text, None


def _signature_problem(cert: x509.Certificate) -> tuple[str, CertProblem | None]:
    algorithm = cert.signature_hash_algorithm
    name = algorithm.name if algorithm is not None else "none (EdDSA)"
    if name in WEAK_HASHES:
        return name, CertProblem("weak-signature", f"TLS certificate signed with {name.upper()}",
                                 f"signature algorithm {cert.signature_algorithm_oid._name}: collisions "
                                 f"let an attacker obtain a certificate with the same signature")
    return name, None


def _validity_problem(cert: x509.Certificate, now: datetime) -> CertProblem | None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now > end:
        return CertProblem("expired", "TLS certificate has expired",
                           f"not valid after {end:%Y-%m-%d %H:%M} UTC (checked {now:%Y-%m-%d})")
    if now < start:
        return CertProblem("not-yet-valid", "TLS certificate is not yet valid",
                           f"not valid before {start:%Y-%m-%d %H:%M} UTC (checked {now:%Y-%m-%d})")
    return None


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(a) for a in san.get_values_for_type(x509.IPAddress))]


def examine_certificate(endpoint: TlsEndpoint, now: datetime | None = None) -> CertificateReport:
    """Fetch the leaf and list its problems (blocking; call from a thread in async code)."""
    now = now or datetime.now(UTC)
    try:
        cert = x509.load_der_x509_certificate(_connect(endpoint, _lenient_client(False)))
    except (OSError, ssl.SSLError, ValueError) as exc:
        return CertificateReport(error=f"cannot fetch the certificate of {endpoint.host}:{endpoint.port}: {exc}")
    key_text, key_problem = _key_description(cert)
    hash_name, sig_problem = _signature_problem(cert)
    problems = [p for p in (_validity_problem(cert, now), trust_problem(endpoint, cert), key_problem, sig_problem)
                if p is not None]
    sans = _sans(cert)
    if not hostname_matches(cert, endpoint.server_name):
        problems.append(CertProblem("hostname", f"TLS certificate does not match {endpoint.server_name}",
                                    f"subjectAltName: {', '.join(sans) or 'none'}; expected {endpoint.server_name}"))
    pin = spki_pin(cert)
    if endpoint.pins and pin not in endpoint.pins:
        problems.append(CertProblem("pin-mismatch", "TLS key does not match the pinned key",
                                    f"endpoint key {pin}; model pins {', '.join(endpoint.pins)}"))
    summary = "\n".join([
        f"subject: {cert.subject.rfc4514_string()}", f"issuer: {cert.issuer.rfc4514_string()}",
        f"valid: {cert.not_valid_before_utc:%Y-%m-%d} .. {cert.not_valid_after_utc:%Y-%m-%d}",
        f"key: {key_text}", f"signature hash: {hash_name}", f"subjectAltName: {', '.join(sans) or 'none'}",
        f"SPKI pin: {pin}",
    ])
    return CertificateReport(summary=summary, problems=problems, pin=pin)
