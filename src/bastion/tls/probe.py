"""Protocol versions and cipher suites an endpoint accepts: sslyze when installed, else Python's `ssl`.

sslyze (the `tls` extra) brings its own OpenSSL builds and tests SSL 2.0 to TLS 1.3 suite by suite.
Without it, the local OpenSSL tests TLS 1.0-1.3 and whichever weak suites it still has (NULL,
anonymous; RC4/3DES/EXPORT are usually compiled out): less thorough, and said so in `notes`.
"""

from __future__ import annotations

import re
import socket
import ssl
import warnings
from dataclasses import dataclass, field

from bastion.tls.endpoint import TlsEndpoint

VERSIONS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
OUTDATED = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1")
CONNECT_TIMEOUT = 5.0
# Weak suite families: IANA names (sslyze: TLS_RSA_WITH_NULL_SHA) and OpenSSL names (NULL-SHA, ADH-...).
_WEAK = (
    (re.compile(r"(^|[_-])NULL([_-]|$)"), "no encryption (NULL cipher)"),
    (re.compile(r"(^|[_-])(anon|ADH|AECDH)([_-]|$)", re.IGNORECASE), "anonymous key exchange (no server "
                                                                      "authentication)"),
    (re.compile(r"EXPORT|(^|[_-])EXP([_-]|$)"), "export-grade (40/56-bit) cipher"),
    (re.compile(r"RC4"), "RC4 stream cipher"),
    (re.compile(r"3DES|DES[_-]CBC3|(^|[_-])DES([_-]|$)|DES_CBC"), "DES/3DES (64-bit block, Sweet32)"),
    (re.compile(r"(^|[_-])MD5$"), "MD5 record MAC"),
)


@dataclass
class ProtocolScan:
    """Accepted suites per protocol version (empty list = version refused)."""

    accepted: dict[str, list[str]] = field(default_factory=dict)
    engine: str = "sslyze"
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def enabled(self, version: str) -> bool:
        return bool(self.accepted.get(version))


def cipher_weakness(name: str) -> str | None:
    """Why a cipher suite is weak, or None."""
    for pattern, why in _WEAK:
        if pattern.search(name):
            return why
    return None


def weak_suites(scan: ProtocolScan) -> list[tuple[str, str, str]]:
    """(version, suite, why) for every weak accepted suite, plus TLS 1.0 offered with CBC suites only."""
    out = [(version, suite, why) for version in VERSIONS for suite in scan.accepted.get(version, [])
           for why in [cipher_weakness(suite)] if why]
    tls10 = scan.accepted.get("TLS 1.0", [])
    if tls10 and all(_is_cbc(s) for s in tls10):
        out.append(("TLS 1.0", ", ".join(tls10[:4]), "TLS 1.0 with CBC-mode suites only (BEAST, Lucky13)"))
    return out


def _is_cbc(name: str) -> bool:
    """A CBC-mode suite: IANA names say so; OpenSSL names are CBC unless they name another mode."""
    if name.startswith("TLS_"):
        return "_CBC_" in name
    return not any(mode in name for mode in ("GCM", "CHACHA", "CCM", "NULL", "RC4"))


def scan_protocols(endpoint: TlsEndpoint, versions: tuple[str, ...] = VERSIONS) -> ProtocolScan:
    """Enumerate accepted suites for `versions` (blocking; call from a thread in async code)."""
    try:
        import sslyze  # noqa: F401 -- optional extra
    except ImportError:
        return _stdlib_scan(endpoint, versions)
    return _sslyze_scan(endpoint, versions)


def _sslyze_scan(endpoint: TlsEndpoint, versions: tuple[str, ...]) -> ProtocolScan:
    from sslyze import (
        ScanCommand,
        ScanCommandAttemptStatusEnum,
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
        ServerScanStatusEnum,
    )

    commands = {
        "SSL 2.0": (ScanCommand.SSL_2_0_CIPHER_SUITES, "ssl_2_0_cipher_suites"),
        "SSL 3.0": (ScanCommand.SSL_3_0_CIPHER_SUITES, "ssl_3_0_cipher_suites"),
        "TLS 1.0": (ScanCommand.TLS_1_0_CIPHER_SUITES, "tls_1_0_cipher_suites"),
        "TLS 1.1": (ScanCommand.TLS_1_1_CIPHER_SUITES, "tls_1_1_cipher_suites"),
        "TLS 1.2": (ScanCommand.TLS_1_2_CIPHER_SUITES, "tls_1_2_cipher_suites"),
        "TLS 1.3": (ScanCommand.TLS_1_3_CIPHER_SUITES, "tls_1_3_cipher_suites"),
    }
    location = ServerNetworkLocation(hostname=endpoint.server_name, port=endpoint.port, ip_address=endpoint.host)
    network = ServerNetworkConfiguration(tls_server_name_indication=endpoint.server_name,
                                         network_timeout=int(CONNECT_TIMEOUT))
    request = ServerScanRequest(server_location=location, network_configuration=network,
                                scan_commands={commands[v][0] for v in versions})
    scanner = Scanner(per_server_concurrent_connections_limit=8)
    scanner.queue_scans([request])
    scan = ProtocolScan(engine="sslyze")
    for result in scanner.get_results():
        if result.scan_status != ServerScanStatusEnum.COMPLETED or result.scan_result is None:
            scan.error = f"cannot connect to {endpoint.host}:{endpoint.port}: {result.connectivity_error_trace}"
            return scan
        for version in versions:
            attempt = getattr(result.scan_result, commands[version][1])
            if attempt.status != ScanCommandAttemptStatusEnum.COMPLETED or attempt.result is None:
                scan.notes.append(f"{version}: not tested ({attempt.error_reason})")
                continue
            scan.accepted[version] = sorted(s.cipher_suite.name for s in attempt.result.accepted_cipher_suites)
    return scan


_STDLIB_VERSIONS = {"TLS 1.0": "TLSv1", "TLS 1.1": "TLSv1_1", "TLS 1.2": "TLSv1_2", "TLS 1.3": "TLSv1_3"}
_STDLIB_WEAK_GROUPS = ("eNULL", "aNULL", "RC4", "3DES", "EXPORT")


def _client_context(version: str, ciphers: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # we grade the server's offer, not its certificate, here
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is what we look for
        warnings.simplefilter("ignore", DeprecationWarning)
        tls_version = getattr(ssl.TLSVersion, _STDLIB_VERSIONS[version])
        ctx.minimum_version = ctx.maximum_version = tls_version
    ctx.set_ciphers(ciphers)
    return ctx


def _negotiated(endpoint: TlsEndpoint, ctx: ssl.SSLContext) -> str | None:
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=CONNECT_TIMEOUT) as raw, \
                ctx.wrap_socket(raw, server_hostname=endpoint.server_name) as tls:
            cipher = tls.cipher()
            return cipher[0] if cipher else None
    except (OSError, ssl.SSLError):
        return None


def _stdlib_scan(endpoint: TlsEndpoint, versions: tuple[str, ...]) -> ProtocolScan:
    scan = ProtocolScan(engine="python-ssl", notes=["sslyze not installed (pip install 'bastion-security[tls]'): "
                                                    "SSL 2.0/3.0 not tested, weak suites only as far as the "
                                                    "local OpenSSL supports them"])
    try:
        socket.create_connection((endpoint.host, endpoint.port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        scan.error = f"cannot connect to {endpoint.host}:{endpoint.port}: {exc}"
        return scan
    for version in versions:
        if version not in _STDLIB_VERSIONS:
            continue
        try:
            first = _negotiated(endpoint, _client_context(version, "DEFAULT:@SECLEVEL=0"))
        except (ssl.SSLError, ValueError):
            scan.notes.append(f"{version}: the local OpenSSL cannot offer it")
            continue
        accepted = {first} if first else set()
        if first and version != "TLS 1.3":
            for group in _STDLIB_WEAK_GROUPS:
                try:
                    ctx = _client_context(version, f"{group}:@SECLEVEL=0")
                except ssl.SSLError:
                    continue  # compiled out of the local OpenSSL
                name = _negotiated(endpoint, ctx)
                if name:
                    accepted.add(name)
        scan.accepted[version] = sorted(accepted)
    return scan
