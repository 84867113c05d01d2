"""TLS checks against loopback servers: a weak configuration fires every check, a strong one stays silent."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from tls_servers import ca_file, strong_context, weak_context

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.model import BastionConfig
from bastion.surface.model import Surface
from bastion.target.target import Target
from bastion.testing import findings_of
from bastion.tls import TlsScopeError, endpoint_for_scan, serve_tls, spki_pin

CERT_CHECKS = ("tls.certificate-validity", "tls.certificate-untrusted", "tls.certificate-hostname",
               "tls.certificate-weak")
ALL_CHECKS = ("tls.protocol-outdated", "tls.weak-cipher", *CERT_CHECKS)

# A third-party-style service's own TLS settings, as its server would be started with them.
_CA = trustme.CA()


def strong_shop_context(app: Any) -> ssl.SSLContext:
    """The shop's server context: TLS 1.2+, certificate for shop.example.test."""
    return strong_context(_CA, "shop.example.test")


def legacy_shop_context(app: Any) -> ssl.SSLContext:
    """A near-miss shop that kept TLS 1.0 and every suite "for old clients"."""
    return weak_context()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def weak_server() -> Iterator[str]:
    with serve_tls(weak_context()) as (host, port):
        yield f"https://{host}:{port}"


@pytest.fixture(scope="module")
def strong_server(ca: trustme.CA) -> Iterator[str]:
    with serve_tls(strong_context(ca)) as (host, port):
        yield f"https://{host}:{port}"


@pytest.fixture(scope="module")
def ca_path(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ca_file(ca, tmp_path_factory.mktemp("ca"))


def scan_tls(url: str, checks: tuple[str, ...] = ("tls",), **tls: Any) -> ScanResult:
    config = BastionConfig.model_validate({"target": {"url": url}, **({"tls": tls} if tls else {})})
    return run_scan(Target.from_url(url), Surface(), ScanOptions(checks=list(checks), config=config))


def fired(result: ScanResult) -> set[str]:
    assert not [e for c in result.checks for e in c.errors]
    return {f.check_id for f in result.findings}


@pytest.fixture(scope="module")
def weak_result(weak_server: str) -> ScanResult:
    return scan_tls(weak_server)


@pytest.mark.parametrize("check_id", ALL_CHECKS)
def test_weak_server_fires_every_check(weak_result: ScanResult, check_id: str) -> None:
    assert findings_of(weak_result, check_id), sorted(fired(weak_result))


def test_weak_findings_name_what_is_wrong(weak_result: ScanResult) -> None:
    titles = {f.check_id: f.title for f in weak_result.findings}
    assert "TLS 1.0" in titles["tls.protocol-outdated"] and "TLS 1.1" in titles["tls.protocol-outdated"]
    assert "NULL" in titles["tls.weak-cipher"] and "anonymous" in titles["tls.weak-cipher"]
    assert "expired" in titles["tls.certificate-validity"]
    assert "self-signed" in titles["tls.certificate-untrusted"]
    assert "1024" in titles["tls.certificate-weak"] and "SHA1" in titles["tls.certificate-weak"]
    assert "127.0.0.1" in titles["tls.certificate-hostname"]
    protocol = findings_of(weak_result, "tls.protocol-outdated")[0]
    assert protocol.reproduction.curl.startswith("openssl s_client -connect 127.0.0.1:")
    assert protocol.confidence.value == "confirmed"


def test_strong_server_with_its_ca_is_silent(strong_server: str, ca_path: Path) -> None:
    assert fired(scan_tls(strong_server, ca_file=str(ca_path))) == set()


def test_strong_server_without_its_ca_is_untrusted_only(strong_server: str) -> None:
    assert fired(scan_tls(strong_server)) == {"tls.certificate-untrusted"}


def test_pin_mismatch_and_match(strong_server: str, ca_path: Path) -> None:
    wrong = "sha256/" + "A" * 43 + "="
    assert fired(scan_tls(strong_server, ("tls.pin-mismatch",), ca_file=str(ca_path), pin=wrong)) == \
        {"tls.pin-mismatch"}
    with serve_tls(strong_context(trustme.CA())) as (host, port):
        # The pin of whatever key this server presents: fetched out of band, then declared in the model.
        der = ssl.get_server_certificate((host, port))
        pin = spki_pin(x509.load_pem_x509_certificate(der.encode()))
        assert fired(scan_tls(f"https://{host}:{port}", ("tls.pin-mismatch",), pin=[pin])) == set()


def test_server_name_decides_the_hostname_check(strong_server: str, ca_path: Path) -> None:
    result = scan_tls(strong_server, ("tls.certificate-hostname",), ca_file=str(ca_path), server_name="api.other.test")
    assert fired(result) == {"tls.certificate-hostname"}
    assert "api.other.test" in result.findings[0].title


def test_out_of_scope_host_is_never_contacted() -> None:
    config = BastionConfig.model_validate({"target": {"url": "https://127.0.0.1:8443"},
                                           "tls": {"host": "203.0.113.9", "port": 443}})
    with pytest.raises(TlsScopeError):
        endpoint_for_scan(config, Target.from_url("https://127.0.0.1:8443"))
    result = scan_tls("https://127.0.0.1:9", host="203.0.113.9", port=443)
    assert fired(result) == set()
    skipped = [u.skipped for c in result.checks for u in c.unit_records if c.check_id != "tls.pin-mismatch"]
    assert skipped and all(s and "out of scope" in s for s in skipped)


def test_http_target_without_tls_section_skips() -> None:
    result = run_scan(Target.from_url("http://127.0.0.1:9"), Surface(), ScanOptions(checks=["tls"]))
    assert fired(result) == set()


def test_stdlib_fallback_without_sslyze(weak_server: str, strong_server: str, ca_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sslyze", None)  # import sslyze -> ImportError
    weak = scan_tls(weak_server, ("tls.protocol-outdated", "tls.weak-cipher"))
    assert fired(weak) == {"tls.protocol-outdated", "tls.weak-cipher"}
    assert "python-ssl" in weak.findings[0].evidence[0].summary
    assert fired(scan_tls(strong_server, ("tls.protocol-outdated", "tls.weak-cipher"), ca_file=str(ca_path))) == set()


# --- in-process services: the model names the server's own SSLContext (tls.context) -------------------

def _flask_shop() -> Any:
    from flask import Flask

    app = Flask("shop")

    @app.get("/")
    def index() -> str:
        return "shop"

    return app


def scan_context(spec: str, ca: Path | None) -> ScanResult:
    app = _flask_shop()
    config = BastionConfig.model_validate({"target": {"app": "shop:app"},
                                           "tls": {"context": spec, **({"ca_file": str(ca)} if ca else {})}})
    target = Target.from_app(app, spec="shop:app", base_url="https://shop.example.test")
    return run_scan(target, Surface(), ScanOptions(checks=["tls"], config=config))


def test_service_context_hardened_is_silent(tmp_path: Path) -> None:
    result = scan_context("test_tls_checks:strong_shop_context", ca_file(_CA, tmp_path))
    assert fired(result) == set()


def test_service_context_legacy_fires(tmp_path: Path) -> None:
    result = scan_context("test_tls_checks:legacy_shop_context", ca_file(_CA, tmp_path))
    assert {"tls.protocol-outdated", "tls.weak-cipher", "tls.certificate-hostname"} <= fired(result)
    # Findings name the service, not the loopback port the context was served on for the check.
    assert {f.location.url for f in result.findings} == {"https://shop.example.test"}
    assert all(not f.reproduction.curl for f in result.findings)


def test_context_needs_an_in_process_target() -> None:
    result = scan_tls("https://127.0.0.1:9", context="test_tls_checks:legacy_shop_context")
    assert fired(result) == set()
    assert any("in-process" in (u.skipped or "") for c in result.checks for u in c.unit_records)


# --- the demo: weak_tls_config planted vs the hardened twin ------------------------------------------

def test_demo_weak_tls_config_found(scan_demo: Any) -> None:
    result = scan_demo(flaws="weak_tls_config", checks=["tls"])
    assert fired(result) == {"tls.protocol-outdated", "tls.weak-cipher"}


def test_demo_weak_tls_certificate_found(scan_demo: Any) -> None:
    result = scan_demo(flaws="weak_tls_certificate", checks=["tls"])
    assert fired(result) == {*CERT_CHECKS, "tls.pin-mismatch"}
    assert {f.location.url for f in result.findings} == {"https://demo.bastion.local"}


def test_demo_hardened_tls_is_silent(scan_demo: Any) -> None:
    result = scan_demo(flaws="none", checks=["tls"])
    assert fired(result) == set()
    # Every TLS check really ran against the served context (nothing skipped).
    assert not [u.skipped for c in result.checks for u in c.unit_records if u.skipped]


# --- `bastion tls` ------------------------------------------------------------------------------------

def test_cli_weak_endpoint_exits_1(weak_server: str) -> None:
    import json

    from click.testing import CliRunner

    from bastion.cli import cli

    result = CliRunner().invoke(cli, ["tls", weak_server, "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert {f["check_id"] for f in doc["findings"]} >= set(ALL_CHECKS)


def test_cli_strong_endpoint_exits_0(strong_server: str, ca_path: Path) -> None:
    from click.testing import CliRunner

    from bastion.cli import cli

    result = CliRunner().invoke(cli, ["tls", strong_server, "--ca-file", str(ca_path)])
    assert result.exit_code == 0, result.output
    assert "no TLS findings" in result.stdout
    assert CliRunner().invoke(cli, ["tls", "http://127.0.0.1:9"]).exit_code != 0
