"""TLS endpoint examination: protocol versions and cipher suites (sslyze), certificate and pinning.

`bastion.checks.tls` runs these as scan checks; `bastion tls URL|--config` runs them on their own.
"""

from __future__ import annotations

from bastion.tls.certificate import CertProblem, examine_certificate, spki_pin
from bastion.tls.endpoint import TlsEndpoint, TlsScopeError, endpoint_for_scan, endpoint_from_url, open_endpoint
from bastion.tls.listener import serve_tls
from bastion.tls.probe import ProtocolScan, cipher_weakness, scan_protocols

__all__ = ["CertProblem", "ProtocolScan", "TlsEndpoint", "TlsScopeError", "cipher_weakness", "endpoint_for_scan",
           "endpoint_from_url", "examine_certificate", "open_endpoint", "scan_protocols", "serve_tls", "spki_pin"]
