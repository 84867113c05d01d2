"""Resilience checks: fail-open, error leaks, recovery, retry storms and timeouts with a dependency broken."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable

import httpx
import pytest
from flask import Flask

from bastion.engine.runner import ScanResult
from bastion.model import BastionConfig
from bastion.resilience import doubles_for, queue_from_setting, wire_dependencies
from bastion.session import scan_from_options
from bastion.testing import findings_of

from .deps_services import SHIPMENTS_DEPS, scan_service, shipments_service

RESILIENCE = ["resilience.error-leak", "resilience.fail-open", "resilience.no-recovery", "resilience.retry-storm",
              "resilience.timeout"]
QUEUES = ["queues.dlq-trace", "queues.poison-lost", "queues.replay-accepted", "queues.service-token",
          "queues.unsafe-deserialization", "queues.unsigned-accepted"]
# One scan of the demo per twin for both test files (scan_demo caches by the check list).
MINE = RESILIENCE + QUEUES

DEMO_FLAWS = {
    "resilience.fail-open": "idp_outage_fail_open",
    "resilience.error-leak": "idp_error_leak",
    "resilience.no-recovery": "idp_no_recovery",
    "resilience.retry-storm": "idp_retry_storm",
    "resilience.timeout": "idp_no_timeout",
}


@pytest.mark.parametrize("check_id", RESILIENCE)
def test_fires_on_the_demo_flaw(scan_demo: Callable[..., ScanResult], check_id: str) -> None:
    # The demo's database and cache flaws are resilience.fail-open findings too (test_resilience_db_cache.py).
    found = [f for f in findings_of(scan_demo(flaws="all", checks=MINE), check_id)
             if not f.location.path.startswith("/api/deps/")]
    assert [f.location.path for f in found] == ["/api/partner/orders"]
    assert "'idp' (oidc)" in found[0].title


@pytest.mark.parametrize("check_id", RESILIENCE)
def test_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult], check_id: str) -> None:
    assert findings_of(scan_demo(flaws="none", checks=MINE), check_id) == []


def test_fail_open_alone_is_found_with_its_evidence(scan_demo: Callable[..., ScanResult]) -> None:
    [f] = findings_of(scan_demo(flaws=DEMO_FLAWS["resilience.fail-open"], checks=["resilience.fail-open"]),
                      "resilience.fail-open")
    assert f.confidence.value == "confirmed" and f.cwe == 636
    assert "fails open" in f.title and "let in" in f.title  # the first caller denied while the IdP is healthy
    assert any("denied" in e.summary for e in f.evidence) and any("let in" in e.summary for e in f.evidence)


def test_probe_tokens_and_wiring_secrets_stay_out_of_findings(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="all", checks=MINE)
    text = json.dumps([f.model_dump(mode="json") for f in result.findings])
    assert "Bearer eyJ" not in text
    assert "OIDC_CLIENT_SECRET" not in text and "QUEUE_SIGNING_KEY" not in text


# --- a third-party service ---------------------------------------------------------------------------------


def test_weak_shipments_service_fails_every_way() -> None:
    result = scan_service(lambda: shipments_service(fail_open=True, retries=6, timeout=None, sticky=True),
                          SHIPMENTS_DEPS, RESILIENCE)
    for check_id in RESILIENCE:
        if check_id != "resilience.error-leak":  # it fails open: no error answer to leak in
            assert [f.location.path for f in findings_of(result, check_id)] == ["/v1/shipments"], check_id


def test_leaky_shipments_service_names_the_idp_but_reports_mask_its_secret() -> None:
    secrets: list[str] = []

    def service() -> Flask:
        secrets.append(os.environ["OIDC_CLIENT_SECRET"])
        return shipments_service(leak=True)

    result = scan_service(service, SHIPMENTS_DEPS, ["resilience.error-leak"])
    [leak] = findings_of(result, "resilience.error-leak")
    assert leak.location.path == "/v1/shipments"
    assert "address <sso double>" in leak.evidence[-1].content
    text = json.dumps(leak.model_dump(mode="json"))
    assert "as bastion-target:***" in text and secrets[0] not in text


def test_safe_shipments_service_scans_clean() -> None:
    result = scan_service(lambda: shipments_service(retries=2), SHIPMENTS_DEPS, RESILIENCE)
    assert [f.check_id for f in result.findings] == []


def test_sticky_failure_alone_is_only_a_recovery_finding() -> None:
    result = scan_service(lambda: shipments_service(sticky=True), SHIPMENTS_DEPS, RESILIENCE)
    assert sorted({f.check_id for f in result.findings}) == ["resilience.no-recovery"]


# --- wiring ------------------------------------------------------------------------------------------------


def _config(deps: dict) -> BastionConfig:
    return BastionConfig.model_validate({"target": {"app": "svc:create_app()"}, "dependencies": deps})


def test_wiring_sets_the_environment_for_the_factory_and_stops_the_doubles() -> None:
    cfg = _config({"sso": {"kind": "oidc", "double": True, "env": {"OIDC_ISSUER": "SSO_URL"}},
                   "bus": {"kind": "queue", "double": True, "topic": "t"},
                   "secrets": {"kind": "vault", "double": True}})
    before = dict(os.environ)
    wired = wire_dependencies(cfg.dependencies)
    assert wired is not None
    issuer, queue_url = os.environ["SSO_URL"], os.environ["QUEUE_URL"]
    assert "OIDC_ISSUER" not in os.environ and os.environ["QUEUE_TOPIC"] == "t"
    assert httpx.get(issuer + "/.well-known/openid-configuration").status_code == 200
    assert httpx.get(os.environ["VAULT_ADDR"] + "/v1/sys/health").status_code == 200
    queue_from_setting(queue_url).publish("t", b"x")

    class App:
        pass

    app = App()
    wired.attach(app)
    assert dict(os.environ) == before and doubles_for(app) is wired
    wired.close()
    port = int(issuer.rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    with pytest.raises(ValueError, match="scan has ended"):
        queue_from_setting(queue_url)


def test_doubles_started_by_a_scan_stop_at_its_end() -> None:
    def serving() -> int:
        return sum(t.name.startswith("bastion-double-") for t in threading.enumerate())

    before = serving()
    result = scan_from_options(demo=True, flaws="none", checks=["resilience.retry-storm"])
    assert findings_of(result, "resilience.retry-storm") == []
    assert doubles_for(result.target) is None and serving() == before


def test_plain_declarations_start_nothing() -> None:
    assert wire_dependencies(_config({"db": {"kind": "sqlite"}}).dependencies) is None


def test_no_double_for_a_database() -> None:
    with pytest.raises(ValueError, match="no double"):
        _config({"db": {"kind": "postgresql", "double": True}})


def test_checks_skip_without_wired_dependencies(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="all", checks=["resilience.fail-open"], framework="fastapi")
    assert findings_of(result, "resilience.fail-open") == []
    [stats] = [c for c in result.checks if c.check_id == "resilience.fail-open"]
    assert "double" in (stats.unit_records[0].skipped or "")
