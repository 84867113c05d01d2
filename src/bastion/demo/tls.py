"""The demo's TLS configuration: what `bastion demo serve --tls` serves and the scan examines (`tls.context`).

Hardened: TLS 1.2+ with OpenSSL's default suites and a certificate from a demo CA (generated once per
process) for demo.bastion.local, localhost and 127.0.0.1, whose key the demo model pins.
Flaws: `weak_tls_config` enables TLS 1.0 and 1.1 at OpenSSL security level 0 with NULL and anonymous
suites; `weak_tls_certificate` presents a leftover self-signed certificate instead: expired, 1024-bit
RSA, issued for legacy.democorp.example (so also not the pinned key).
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import ipaddress
import shutil
import ssl
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

DEMO_HOSTS = ("demo.bastion.local", "localhost")
LEGACY_HOST = "legacy.democorp.example"


@dataclass(frozen=True)
class DemoCertificates:
    ca_file: Path
    cert_file: Path
    key_file: Path
    legacy_cert_file: Path
    legacy_key_file: Path

    def certificate(self) -> x509.Certificate:
        """The hardened server certificate."""
        return x509.load_pem_x509_certificate(self.cert_file.read_bytes())


def _legacy_certificate() -> tuple[bytes, bytes]:
    """Self-signed, expired in 2020, 1024-bit RSA, for another host name: what an old deployment left behind."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 -- the planted flaw
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LEGACY_HOST)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime(2018, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(LEGACY_HOST)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@functools.cache
def demo_certificates() -> DemoCertificates:
    """A demo CA and a server certificate signed by it, in a temp dir removed at exit (one per process)."""
    folder = Path(tempfile.mkdtemp(prefix="bastion-demo-tls-"))
    atexit.register(shutil.rmtree, str(folder), True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DemoCorp Demo CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in DEMO_HOSTS]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEMO_HOSTS[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    out = DemoCertificates(folder / "demo-ca.pem", folder / "demo-server.pem", folder / "demo-server.key",
                           folder / "legacy-server.pem", folder / "legacy-server.key")
    out.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key_file.write_bytes(_pem_key(key))
    legacy_cert, legacy_key = _legacy_certificate()
    out.legacy_cert_file.write_bytes(legacy_cert)
    out.legacy_key_file.write_bytes(legacy_key)
    return out


def server_context(app: Any) -> ssl.SSLContext:
    """The server-side SSLContext the demo app is served with (weak when `weak_tls_config` is planted)."""
    state = app.extensions["bastion_demo"] if hasattr(app, "extensions") else app.state.demo
    certs = demo_certificates()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if "weak_tls_config" in state.flaws:
        # "Compatibility with old clients": every protocol and suite the local OpenSSL still has.
        ctx.set_ciphers("ALL:eNULL:aNULL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if "weak_tls_certificate" in state.flaws:
        if "weak_tls_config" not in state.flaws:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL refuses a 1024-bit key at the default level
        ctx.load_cert_chain(certs.legacy_cert_file, certs.legacy_key_file)
    else:
        ctx.load_cert_chain(certs.cert_file, certs.key_file)
    return ctx
