"""Loopback TLS servers for the TLS tests: a weak configuration and a strong one (trustme CA)."""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

import trustme

DATA = Path(__file__).parent / "data"


def weak_context() -> ssl.SSLContext:
    """TLS 1.0+ at OpenSSL security level 0 with NULL and anonymous suites, and data/weak-cert.pem
    (self-signed, expired, 1024-bit RSA, SHA-1, issued for legacy.example)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # The security level must drop before the 1024-bit/SHA-1 certificate can be loaded.
    ctx.set_ciphers("ALL:eNULL:aNULL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.load_cert_chain(DATA / "weak-cert.pem", DATA / "weak-key.pem")
    return ctx


def strong_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    """TLS 1.2+ with OpenSSL's default suites and a trustme certificate (default: 127.0.0.1 and localhost)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ca.issue_cert(*(names or ("127.0.0.1", "localhost"))).configure_cert(ctx)
    return ctx


def ca_file(ca: trustme.CA, directory: Path) -> Path:
    path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


