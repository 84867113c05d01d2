"""Queue and inter-service checks: unsafe consumers, lost poison, dead letters without trace ids, replayed
and unsigned messages, service tokens for another audience."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bastion.engine.runner import ScanResult
from bastion.testing import findings_of

from .deps_services import SHIPMENTS_DEPS, WORKER_DEPS, audit_worker, scan_service, shipments_service
from .test_resilience import MINE, QUEUES

DEMO_FLAWS = {
    "queues.unsafe-deserialization": "pickle_queue_consumer",
    "queues.poison-lost": "poison_message_lost",
    "queues.dlq-trace": "dlq_without_trace_id",
    "queues.replay-accepted": "queue_replay_accepted",
    "queues.unsigned-accepted": "queue_unsigned_accepted",
    "queues.service-token": "service_token_wrong_audience",
}
WORKER_CHECKS = [c for c in QUEUES if c != "queues.service-token"]


@pytest.mark.parametrize("check_id", QUEUES)
def test_fires_on_the_demo_flaw(scan_demo: Callable[..., ScanResult], check_id: str) -> None:
    found = findings_of(scan_demo(flaws="all", checks=MINE), check_id)
    expected = "/api/partner/orders" if check_id == "queues.service-token" else "/api/jobs/drain"
    assert [f.location.path for f in found] == [expected]
    assert found[0].confidence.value == "confirmed"


@pytest.mark.parametrize("check_id", QUEUES)
def test_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult], check_id: str) -> None:
    assert findings_of(scan_demo(flaws="none", checks=MINE), check_id) == []


def test_each_queue_flaw_alone_is_found_by_its_check(scan_demo: Callable[..., ScanResult]) -> None:
    flaws = ",".join(DEMO_FLAWS.values())
    result = scan_demo(flaws=flaws, checks=QUEUES)
    assert sorted({f.check_id for f in result.findings}) == sorted(QUEUES)


def test_demo_findings_say_what_was_observed(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="all", checks=MINE)
    [pickled] = findings_of(result, "queues.unsafe-deserialization")
    assert "pickle" in pickled.title and any(e.summary == "sensor proof" for e in pickled.evidence)
    [token] = findings_of(result, "queues.service-token")
    assert "another audience" in token.title and "expired" not in token.title
    [trace] = findings_of(result, "queues.dlq-trace")
    assert "bastion-" in trace.evidence[0].content


# --- third-party services ----------------------------------------------------------------------------------


def test_weak_audit_worker() -> None:
    result = scan_service(lambda: audit_worker(unsafe_yaml=True, drop_poison=True, replay=True, unsigned=True),
                          WORKER_DEPS, WORKER_CHECKS)
    found = {f.check_id: f for f in result.findings}
    assert sorted(found) == ["queues.poison-lost", "queues.replay-accepted", "queues.unsafe-deserialization",
                             "queues.unsigned-accepted"]
    assert "yaml" in found["queues.unsafe-deserialization"].title
    assert all(f.location.path == "/internal/worker/run" for f in found.values())
    assert not [e for c in result.checks for e in c.errors]


def test_safe_audit_worker_scans_clean() -> None:
    result = scan_service(audit_worker, WORKER_DEPS, WORKER_CHECKS)
    assert findings_of(result, "queues.poison-lost") == [] and result.findings == []
    skipped = {c.check_id: c.unit_records[0].skipped for c in result.checks}
    assert not any(skipped.values()), skipped


def test_service_that_ignores_the_audience() -> None:
    result = scan_service(lambda: shipments_service(any_audience=True), SHIPMENTS_DEPS, ["queues.service-token"])
    [f] = findings_of(result, "queues.service-token")
    assert f.location.path == "/v1/shipments" and "another audience" in f.title


def test_service_that_checks_the_audience_is_clean() -> None:
    result = scan_service(shipments_service, SHIPMENTS_DEPS, ["queues.service-token"])
    assert findings_of(result, "queues.service-token") == []
