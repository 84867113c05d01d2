"""Coverage of the demo: every catalog threat has a status; planted flaws show `finding` where they sit."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bastion.catalog import load_catalog
from bastion.coverage import FINDING, NOT_TESTED, TESTED, Coverage, compute_coverage
from bastion.coverage.findings_file import coverage_from_findings_file
from bastion.coverage.model import STATUSES
from bastion.engine.runner import ScanResult
from bastion.report import findings_document, html_report, markdown_report

CHECKS = ["injection.path-traversal", "authz.bola", "headers.csp-missing"]
# Threat -> (entry point of its planted demo flaw, cell that a clean run marks tested). Tests may name
# demo routes (the demo is the oracle); checks may not. A target-scope check's units are "target".
PLANTED = {"injection.path-traversal": ("GET /files/{name}", "GET /files/{name}"),
           "authz.bola": ("GET /api/invoices/{invoice_id}", "GET /api/invoices/{invoice_id}"),
           "headers.csp-missing": ("GET /", "target")}


def _cell(coverage: Coverage, threat: str, entry: str) -> str:
    t = coverage.get(threat)
    assert t is not None, threat
    statuses = {r.status for r in t.rows if r.entry == entry}
    assert statuses, f"{threat}: no row for {entry}: {[r.entry for r in t.rows][:20]}"
    return min(statuses, key=[FINDING, TESTED, NOT_TESTED].index)


def test_every_catalog_threat_has_a_status(scan_demo: Callable[..., ScanResult]) -> None:
    coverage = compute_coverage(scan_demo(flaws="all"))
    ids = [t.id for t in coverage.threats]
    assert set(load_catalog()) <= set(ids)
    for t in coverage.threats:
        assert t.status in STATUSES and t.rows, t.id
        if t.status == NOT_TESTED:
            assert t.reason, t.id
    assert coverage.get("injection.sql").status == FINDING  # type: ignore[union-attr]
    # No threat model with accepted: entries for the demo, so nothing to judge for expiry.
    assert coverage.get("model.expired-exclusion").reason == "not applicable"  # type: ignore[union-attr]


@pytest.mark.parametrize("threat", sorted(PLANTED))
def test_planted_flaw_is_a_finding_at_its_entry_point_and_tested_on_the_twin(
        scan_demo: Callable[..., ScanResult], threat: str) -> None:
    flawed = compute_coverage(scan_demo(flaws="all", checks=CHECKS))
    hardened = compute_coverage(scan_demo(flaws="none", checks=CHECKS))
    flaw_entry, clean_entry = PLANTED[threat]
    assert _cell(flawed, threat, flaw_entry) == FINDING
    assert flawed.get(threat).status == FINDING  # type: ignore[union-attr]
    assert hardened.get(threat).status == TESTED  # type: ignore[union-attr]
    assert _cell(hardened, threat, clean_entry) == TESTED


def test_not_tested_cells_say_why(scan_demo: Callable[..., ScanResult]) -> None:
    coverage = compute_coverage(scan_demo(flaws="none", checks=CHECKS))
    bola = coverage.get("authz.bola")
    assert bola is not None
    post = [r for r in bola.rows if r.entry.startswith("POST ")]
    assert post and all(r.reason == "not applicable" and "only GET" in r.detail for r in post)
    # Checks left out by --checks are excluded, with the reason.
    sql = coverage.get("injection.sql")
    assert sql is not None and sql.status == NOT_TESTED and sql.reason == "excluded"
    assert "--checks" in sql.rows[0].detail
    # A threat no check implements says so.
    assert any(t.reason in ("no check", "static only") for t in coverage.threats)


def test_reports_carry_the_coverage_section(scan_demo: Callable[..., ScanResult], tmp_path) -> None:  # noqa: ANN001
    result = scan_demo(flaws="all", checks=CHECKS)
    doc = findings_document(result)
    assert list(doc)[:3] == ["schema", "run", "findings"]
    assert doc["coverage"]["schema"] == "bastion-coverage/1"
    assert {t["id"] for t in doc["coverage"]["threats"]} >= set(load_catalog())
    path = tmp_path / "findings.json"
    path.write_text(json.dumps(doc))
    again = coverage_from_findings_file(path)
    assert again.as_dict() == compute_coverage(result).as_dict()
    assert "## Threat coverage" in markdown_report(result)
    html = html_report(result)
    assert 'id="coverage"' in html and "injection.path-traversal" in html
