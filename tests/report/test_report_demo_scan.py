"""Reports from a real (small) demo scan: every format valid, and same seed -> same findings.json."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from report_sarif_schema import assert_valid_sarif

from bastion.report import findings_json, write_reports
from bastion.report.junit import entry_of_location
from bastion.session import scan_from_options

# Checks whose evidence is deterministic today (see the report to the lead for the others).
CHECKS = ("cors", "headers.csp-missing")


def test_demo_scan_reports_are_valid(scan_demo, tmp_path):
    result = scan_demo(flaws="all", checks=CHECKS)
    assert result.findings, "the demo plants CORS and CSP flaws"
    paths = {p.name: p for p in write_reports(result, ["json", "sarif", "junit", "html", "md"], tmp_path)}
    doc = json.loads(paths["findings.json"].read_text("utf-8"))
    assert len(doc["findings"]) == len(result.findings)
    assert_valid_sarif(json.loads(paths["bastion.sarif"].read_text("utf-8")))
    root = ET.parse(paths["junit.xml"]).getroot()
    failing = {(f.check_id, entry_of_location(f.location)) for f in result.findings}
    assert int(root.get("failures")) == len(failing)
    assert int(root.get("tests")) >= len(failing) and root.get("errors") == "0"
    assert "Content-Security-Policy" in paths["report.html"].read_text("utf-8")


def test_same_seed_same_findings_json(scan_demo):
    first = scan_demo(flaws="all", checks=CHECKS, seed=5)
    again = scan_from_options(demo=True, flaws="all", checks=list(CHECKS), seed=5)
    assert findings_json(first, include_timings=False) == findings_json(again, include_timings=False)
