"""DefectDojo "Generic Findings Import" export: only documented fields, the right types, secrets redacted."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from history_fakes import make_finding, make_result

from bastion.findings.model import Confidence, Evidence, Finding, Location, Severity
from bastion.report import write_reports
from bastion.report.defectdojo import defectdojo_document, defectdojo_json

# DefectDojo's generic JSON parser (dojo/tools/generic/json_parser.py): required keys, and the keys it
# accepts besides them (anything else fails the import). Written out here, not imported from Bastion.
DOJO_REQUIRED = {"title", "severity", "description"}
DOJO_ALLOWED = DOJO_REQUIRED | {
    "date", "cwe", "cve", "cvssv3", "cvssv3_score", "mitigation", "impact", "steps_to_reproduce",
    "severity_justification", "references", "active", "verified", "false_p", "out_of_scope", "risk_accepted",
    "under_review", "is_mitigated", "thread_id", "mitigated", "numerical_severity", "param", "payload", "line",
    "file_path", "component_name", "component_version", "static_finding", "dynamic_finding",
    "scanner_confidence", "unique_id_from_tool", "vuln_id_from_tool", "sast_source_object", "sast_sink_object",
    "sast_source_line", "sast_source_file_path", "nb_occurences", "publish_date", "service",
    "planned_remediation_date", "planned_remediation_version", "effort_for_fixing", "endpoints", "files",
    "vulnerability_ids",
}
DOJO_SEVERITIES = {"Critical", "High", "Medium", "Low", "Info"}
ENDPOINT_KEYS = {"protocol", "userinfo", "host", "port", "path", "query", "fragment"}
TYPES = {"title": str, "description": str, "severity": str, "mitigation": str, "impact": str, "references": str,
         "cwe": int, "file_path": str, "line": int, "unique_id_from_tool": str, "vuln_id_from_tool": str,
         "date": str, "active": bool, "verified": bool, "static_finding": bool, "dynamic_finding": bool,
         "endpoints": list, "param": str, "steps_to_reproduce": str, "scanner_confidence": int}
DEMO_PASSWORDS = ("admin-Corr3ct-Horse", "alice-Wonder1and", "bob-Bu1lder-42")


def _assert_importable(doc: dict) -> None:
    assert set(doc) <= {"name", "type", "version", "findings"}
    assert isinstance(doc["findings"], list)
    ids = [f["unique_id_from_tool"] for f in doc["findings"]]
    assert len(ids) == len(set(ids))
    for item in doc["findings"]:
        assert DOJO_REQUIRED <= set(item), item.keys()
        assert set(item) <= DOJO_ALLOWED, set(item) - DOJO_ALLOWED
        for key, value in item.items():
            assert isinstance(value, TYPES[key]), (key, value)
        assert item["title"] and item["description"]
        assert item["severity"] in DOJO_SEVERITIES
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", item["date"])
        assert item["static_finding"] != item["dynamic_finding"]
        for endpoint in item["endpoints"]:
            assert isinstance(endpoint, dict) and set(endpoint) <= ENDPOINT_KEYS and endpoint["host"]
            assert isinstance(endpoint.get("port", 0), int)
            assert not endpoint.get("path", "").startswith("/")  # DefectDojo stores paths without the slash


def test_demo_scan_exports_documented_fields(scan_demo) -> None:
    result = scan_demo(flaws="all", checks=["config", "headers"])
    assert result.findings
    doc = json.loads(defectdojo_json(result))
    _assert_importable(doc)
    assert len(doc["findings"]) == len(result.findings)
    by_id = {f["unique_id_from_tool"]: f for f in doc["findings"]}
    for f in result.findings:
        item = by_id[f.fingerprint]
        assert item["vuln_id_from_tool"] == f.check_id
        assert item["severity"] == f.severity.value.capitalize()
        assert item["verified"] == (f.confidence is Confidence.confirmed)
        assert item.get("cwe") == f.cwe
        assert bool(item["endpoints"]) == bool(f.location.url)


def test_static_finding_carries_file_and_line() -> None:
    static = Finding(check_id="static.bandit.B602", threat_id="static.command", title="shell=True",
                     severity=Severity.high, confidence=Confidence.firm, cwe=78,
                     location=Location(file="app/run.py", line=12))
    doc = defectdojo_document(make_result([static, make_finding()]))
    _assert_importable(doc)
    item = next(f for f in doc["findings"] if f["vuln_id_from_tool"] == "static.bandit.B602")
    assert (item["file_path"], item["line"], item["static_finding"], item["endpoints"]) == ("app/run.py", 12, True,
                                                                                           [])
    dynamic = next(f for f in doc["findings"] if f["vuln_id_from_tool"] == "injection.sql")
    assert dynamic["dynamic_finding"] and dynamic["param"] == "q"
    assert dynamic["endpoints"] == [{"protocol": "http", "host": "127.0.0.1", "port": 9, "path": "items"}]


def test_secret_shaped_text_is_redacted() -> None:
    leaky = make_finding().model_copy(update={"evidence": [Evidence(
        kind="request", summary="probe",
        content="GET /items HTTP/1.1\nAuthorization: Bearer s3cr3t-t0ken-value-123\n"
                "Cookie: session=abcdef0123456789\n\neyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl")]})
    text = defectdojo_json(make_result([leaky]))
    for secret in ("s3cr3t-t0ken-value-123", "abcdef0123456789", "eyJzdWIiOiJhbGljZSJ9"):
        assert secret not in text


def test_role_scan_export_never_holds_the_role_passwords(scan_demo) -> None:
    result = scan_demo(flaws="all", checks=["authz"])
    assert result.findings and any(f.role for f in result.findings)
    text = defectdojo_json(result)
    _assert_importable(json.loads(text))
    for password in DEMO_PASSWORDS:
        assert password not in text


def test_written_by_the_report_writer_as_defectdojo_json(tmp_path: Path) -> None:
    result = dataclasses.replace(make_result([make_finding()]), started_at="2026-04-01T23:30:00-02:00")
    written = write_reports(result, ["defectdojo"], tmp_path)
    assert written == [tmp_path / "defectdojo.json"]
    doc = json.loads(written[0].read_text(encoding="utf-8"))
    assert doc["findings"][0]["date"] == "2026-04-02"  # the run's day in UTC
