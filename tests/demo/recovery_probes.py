"""Probes for the demo's TLS and backup flaws (bastion/demo/tls.py, bastion/demo/backup.py), for PROBES.

They look at the app the client wraps directly: its server-side SSLContext served on loopback and
handshaken with Python's `ssl`, and its backup file on disk; no Bastion check is involved.
"""

from __future__ import annotations

import glob
import socket
import ssl
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509

from bastion.demo.backup import locate
from bastion.demo.tls import demo_certificates, server_context
from bastion.tls.listener import serve_tls


def _app(c: httpx.Client) -> Any:
    return c._transport.app  # type: ignore[attr-defined]  # the WSGI app flask_client wraps


def _handshake(port: int, *, tls1: bool = False, verify: bool = False) -> tuple[str | None, bytes | None]:
    """(negotiated protocol, leaf DER) or (None, None) when the server refuses."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = verify
    if verify:
        ctx.load_verify_locations(cafile=str(demo_certificates().ca_file))
    else:
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    if tls1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="demo.bastion.local") as tls:
            return tls.version(), tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None, None


def _weak_tls_config(c: httpx.Client) -> bool:
    with serve_tls(server_context(_app(c))) as (_, port):
        return _handshake(port, tls1=True)[0] == "TLSv1"


def _weak_tls_certificate(c: httpx.Client) -> bool:
    with serve_tls(server_context(_app(c))) as (_, port):
        trusted, _ = _handshake(port, verify=True)
        _, der = _handshake(port)
    cert = x509.load_der_x509_certificate(der) if der else None
    return trusted is None and cert is not None and cert.public_key().key_size < 2048


def _backup_file(c: httpx.Client) -> Path:
    found = sorted(glob.glob(locate(_app(c))["backup"]))
    assert len(found) == 1, found
    return Path(found[0])


def _unencrypted_backup(c: httpx.Client) -> bool:
    return _backup_file(c).read_bytes().startswith(b"SQLite format 3\x00")


def _stale_backup(c: httpx.Client) -> bool:
    return time.time() - _backup_file(c).stat().st_mtime > 86400


def _truncated_backup(c: httpx.Client) -> bool:
    app, path = _app(c), _backup_file(c)
    live = Path(locate(app)["path"]).stat().st_size
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3\x00"):
        return len(data) < live
    from cryptography.fernet import Fernet, InvalidToken

    try:
        Fernet(locate(app)["key"]).decrypt(data)
    except InvalidToken:
        return True
    return False


RECOVERY_PROBES: dict[str, Callable[..., bool]] = {
    "weak_tls_config": _weak_tls_config, "weak_tls_certificate": _weak_tls_certificate,
    "unencrypted_backup": _unencrypted_backup, "stale_backup": _stale_backup, "truncated_backup": _truncated_backup,
}
