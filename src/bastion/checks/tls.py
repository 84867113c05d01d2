"""TLS endpoint checks: outdated protocols, weak suites, certificate validity/trust/name/strength, pinning.

The endpoint is the model's `tls:` section (host/port, or the service's own SSLContext served on
loopback for in-process targets), else an https:// URL target; scans without one skip these checks.
Only loopback or in-scope hosts are contacted. Each check makes one bounded probe (sslyze scan or one
or two handshakes) in a worker thread. Findings are observed handshakes, hence `confirmed`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.errors import BastionError
from bastion.findings.evidence import note
from bastion.findings.model import Confidence, Finding, Location, Reproduction
from bastion.tls.certificate import CertificateReport, CertProblem, ProblemKind, examine_certificate
from bastion.tls.endpoint import TlsEndpoint, endpoint_for_scan, open_endpoint
from bastion.tls.probe import OUTDATED, VERSIONS, ProtocolScan, scan_protocols, weak_suites

T = TypeVar("T")
_OPENSSL_FLAG = {"SSL 3.0": "-ssl3", "TLS 1.0": "-tls1", "TLS 1.1": "-tls1_1", "TLS 1.2": "-tls1_2",
                 "TLS 1.3": "-tls1_3"}
# Suites that remove confidentiality or server authentication outright.
_SEVERE = ("NULL", "anonymous", "export")


def _endpoint(ctx: CheckContext) -> TlsEndpoint | None:
    try:
        endpoint = endpoint_for_scan(ctx.config, ctx.target)
    except BastionError as exc:
        ctx.skip(str(exc))
        return None
    if endpoint is None:
        ctx.skip("no TLS endpoint: the target is not an https:// URL and the model has no tls: section")
    return endpoint


async def _probe(ctx: CheckContext, endpoint: TlsEndpoint, work: Callable[[TlsEndpoint], T]) -> T:
    """Run blocking `work` on the open endpoint (served contexts listen only meanwhile) in a thread."""
    app = ctx.target.app

    def run() -> T:
        with open_endpoint(endpoint, app) as live:
            return work(live)

    return await asyncio.to_thread(run)


def _finding(ctx: CheckContext, endpoint: TlsEndpoint, title: str, evidence: list[tuple[str, str]],
             severity: str | None = None, openssl_flag: str = "") -> Finding:
    finding = ctx.finding(title=title, confidence=Confidence.confirmed, severity=severity,
                          location=Location(url=endpoint.label),
                          evidence=[note(summary, content) for summary, content in evidence])
    if endpoint.context_spec is None:  # a served context's loopback port does not outlive the scan
        command = (f"openssl s_client -connect {endpoint.host}:{endpoint.port} "
                   f"-servername {endpoint.server_name} {openssl_flag}").strip()
        finding.reproduction = Reproduction(curl=command)
    return finding


async def _protocol_scan(ctx: CheckContext, versions: tuple[str, ...]) -> tuple[TlsEndpoint, ProtocolScan] | None:
    """The endpoint and its scan of `versions`; None (the check skipped) when either is unavailable."""
    endpoint = _endpoint(ctx)
    if endpoint is None:
        return None
    scan = await _probe(ctx, endpoint, lambda live: scan_protocols(live, versions))
    if scan.error:
        ctx.skip(scan.error)
        return None
    return endpoint, scan


@check(id="tls.protocol-outdated", threat="tls.protocol-outdated", scope="target")
async def protocol_outdated(ctx: CheckContext) -> AsyncIterator[Finding]:
    """SSL 2.0/3.0 or TLS 1.0/1.1 accepted. Bound: one sslyze scan of four protocol versions."""
    scanned = await _protocol_scan(ctx, OUTDATED)
    if scanned is None:
        return
    endpoint, scan = scanned
    enabled = [v for v in OUTDATED if scan.enabled(v)]
    if not enabled:
        return
    lines = [f"{v}: {', '.join(scan.accepted[v])}" for v in enabled]
    yield _finding(ctx, endpoint, f"{' and '.join(enabled)} enabled on the TLS endpoint",
                   [(f"{endpoint.label} accepts {', '.join(enabled)} ({scan.engine})", "\n".join(lines + scan.notes))],
                   severity="high" if any(v.startswith("SSL") for v in enabled) else None,
                   openssl_flag=_OPENSSL_FLAG.get(enabled[-1], ""))


@check(id="tls.weak-cipher", threat="tls.weak-cipher", scope="target")
async def weak_cipher(ctx: CheckContext) -> AsyncIterator[Finding]:
    """NULL, anonymous, export, RC4, 3DES suites, or CBC-only TLS 1.0. Bound: one sslyze scan (all versions)."""
    scanned = await _protocol_scan(ctx, VERSIONS)
    if scanned is None:
        return
    endpoint, scan = scanned
    weak = weak_suites(scan)
    if not weak:
        return
    reasons = sorted({why for _, _, why in weak})
    severe = any(any(word in why for word in _SEVERE) for why in reasons)
    lines = [f"{version}: {suite} -- {why}" for version, suite, why in weak]
    yield _finding(ctx, endpoint, f"Weak TLS cipher suites accepted: {'; '.join(reasons)}",
                   [(f"{endpoint.label} negotiates {len(weak)} weak suite(s) ({scan.engine})",
                     "\n".join(lines + scan.notes))],
                   severity="high" if severe else "medium")


async def _certificate(ctx: CheckContext) -> tuple[TlsEndpoint, CertificateReport] | None:
    endpoint = _endpoint(ctx)
    if endpoint is None:
        return None
    report = await _probe(ctx, endpoint, examine_certificate)
    if report.error:
        ctx.skip(report.error)
        return None
    return endpoint, report


async def _certificate_findings(ctx: CheckContext, kinds: tuple[ProblemKind, ...],
                                severity: Callable[[list[CertProblem]], str | None] = lambda _: None
                                ) -> AsyncIterator[Finding]:
    examined = await _certificate(ctx)
    if examined is None:
        return
    endpoint, report = examined
    problems = report.of(*kinds)
    if problems:
        evidence = [(p.title, p.detail) for p in problems] + [("certificate", report.summary)]
        yield _finding(ctx, endpoint, "; ".join(p.title for p in problems), evidence, severity(problems))


# The certificate checks differ only in which problems of the one examined certificate they report.
_CERTIFICATE_CHECKS: tuple[tuple[str, tuple[ProblemKind, ...], str], ...] = (
    ("tls.certificate-validity", ("expired", "not-yet-valid"),
     "The certificate is expired or not yet valid. Bound: one handshake."),
    ("tls.certificate-untrusted", ("untrusted", "self-signed"),
     "Self-signed, or not chaining to the system store / the model's CA file. Bound: two handshakes."),
    ("tls.certificate-hostname", ("hostname",),
     "No subjectAltName entry matches the endpoint's name. Bound: two handshakes."),
    ("tls.certificate-weak", ("weak-key", "weak-signature"),
     "RSA/DSA key under 2048 bits (EC under 224) or a SHA-1/MD5 signature. Bound: two handshakes."),
)


def _register_certificate_check(check_id: str, kinds: tuple[ProblemKind, ...], doc: str) -> None:
    async def certificate_check(ctx: CheckContext) -> AsyncIterator[Finding]:
        async for finding in _certificate_findings(ctx, kinds):
            yield finding

    certificate_check.__doc__ = doc
    certificate_check.__qualname__ = certificate_check.__name__ = check_id.split(".")[1].replace("-", "_")
    check(id=check_id, threat=check_id, scope="target")(certificate_check)


for _check_id, _kinds, _doc in _CERTIFICATE_CHECKS:
    _register_certificate_check(_check_id, _kinds, _doc)


@check(id="tls.pin-mismatch", threat="tls.pin-mismatch", scope="target")
async def pin_mismatch(ctx: CheckContext) -> AsyncIterator[Finding]:
    """The model pins SPKI hashes (`tls.pin`) and the endpoint's key is not one of them. Bound: two handshakes."""
    config_tls = getattr(ctx.config, "tls", None)
    if config_tls is None or not config_tls.pin:
        ctx.skip("the model pins no key (tls.pin)")
        return
    async for finding in _certificate_findings(ctx, ("pin-mismatch",)):
        yield finding
