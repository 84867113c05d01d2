"""bastion.sarif: valid SARIF 2.1.0 (schema + formats), rules, levels, locations, fingerprints."""

from __future__ import annotations

import json

import jsonschema
import pytest
from report_samples import make_result, many_findings
from report_sarif_schema import assert_valid_sarif, format_checker

import bastion.report.rules as rules_module
from bastion.catalog import Threat
from bastion.checks.registry import CheckSpec
from bastion.findings.model import Severity
from bastion.report import sarif_document, sarif_json
from bastion.report.sarif import as_uri


@pytest.fixture(autouse=True)
def no_registry(monkeypatch):
    """Hand-built findings: rule metadata comes from the findings, whatever checks exist in the tree."""
    monkeypatch.setattr(rules_module, "load_checks", dict)
    monkeypatch.setattr(rules_module, "load_catalog", dict)


def test_valid_against_the_sarif_schema(result):
    assert_valid_sarif(json.loads(sarif_json(result)))


def testformat_checker_catches_bad_uris():
    schema = {"type": "object", "properties": {"u": {"type": "string", "format": "uri"}}}
    validator = jsonschema.Draft7Validator(schema, format_checker=format_checker())
    assert not validator.is_valid({"u": "/x/{id} y"}) and validator.is_valid({"u": "http://a/%7Bid%7D"})


def test_validation_rejects_broken_sarif(result):
    for breakage in (lambda d: d["runs"][0]["results"][0].update(level="fatal"),
                     lambda d: d["runs"][0]["invocations"][0].update(startTimeUtc="yesterday"),
                     lambda d: d["runs"][0]["tool"]["driver"].update(informationUri="not a uri"),
                     lambda d: d["runs"][0]["tool"]["driver"].pop("name")):
        doc = sarif_document(result)
        breakage(doc)
        with pytest.raises(AssertionError):
            assert_valid_sarif(doc)


def test_driver_and_rules(result):
    run = sarif_document(result)["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "Bastion" and driver["version"] and driver["informationUri"].startswith("https://")
    ids = [r["id"] for r in driver["rules"]]
    # every check that ran, plus checks that only reported (static.secret), sorted
    assert ids == ["headers.csp-missing", "headers.server-banner", "injection.sql", "injection.xss",
                   "static.secret"]
    sql = driver["rules"][ids.index("injection.sql")]
    assert "CWE-89" in sql["properties"]["tags"] and "A03:2021" in sql["properties"]["tags"]
    assert sql["properties"]["security-severity"] == "8.0"
    assert sql["defaultConfiguration"]["level"] == "error"
    assert sql["help"]["text"] and sql["help"]["markdown"] and sql["fullDescription"]["text"]


async def _no_check(ctx):  # pragma: no cover - never run
    yield None


def test_rules_come_from_the_registry_and_catalog(monkeypatch, result):
    threat = Threat(id="injection.sql", title="SQL injection", stride=["tampering"], cwe=89,
                    severity=Severity.critical, owasp=["A03:2021"], owasp_api=["API8:2023"],
                    summary="User input changes a SQL statement.",
                    why="Attackers read or change the database.",
                    mitigation="Catalog mitigation.")
    spec = CheckSpec(id="injection.sql", threat="injection.sql", title="SQL injection (registry)",
                     severity=Severity.critical, cwe=89, owasp=("A03:2021", "API8:2023"),
                     mitigation="Bind parameters.", scope="input", func=_no_check)
    monkeypatch.setattr(rules_module, "load_catalog", lambda: {"injection.sql": threat})
    monkeypatch.setattr(rules_module, "load_checks", lambda: {"injection.sql": spec})
    rules = {r["id"]: r for r in sarif_document(result)["runs"][0]["tool"]["driver"]["rules"]}
    sql = rules["injection.sql"]
    assert sql["shortDescription"]["text"] == "SQL injection (registry)"
    assert sql["fullDescription"]["text"] == "Attackers read or change the database."
    assert "Bind parameters." in sql["help"]["text"]
    assert {"CWE-89", "API8:2023", "STRIDE:tampering"} <= set(sql["properties"]["tags"])
    assert sql["properties"]["security-severity"] == "9.5"
    # a check with no registry entry and no catalog threat falls back to its findings
    assert rules["static.secret"]["shortDescription"]["text"] == "Hard-coded secret"


def test_results_levels_indexes_and_fingerprints(result):
    run = sarif_document(result)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    levels = {Severity.critical: "error", Severity.high: "error", Severity.medium: "warning",
              Severity.low: "note", Severity.info: "note"}
    assert len(run["results"]) == len(result.findings)
    for res, f in zip(run["results"], result.findings, strict=True):
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"] == f.check_id
        assert res["level"] == levels[f.severity]
        assert res["partialFingerprints"] == {"bastion/v1": f.fingerprint} == res["fingerprints"]
        assert res["properties"]["confidence"] == f.confidence.value
        assert res["properties"]["severity"] == f.severity.value


def test_locations_file_line_url_and_http_properties(result):
    by_check = {}
    for res in sarif_document(result)["runs"][0]["results"]:
        by_check.setdefault(res["ruleId"], []).append(res["locations"][0])
    sql = by_check["injection.sql"][0]
    assert sql["physicalLocation"]["artifactLocation"]["uri"] == "app/search.py"
    assert sql["physicalLocation"]["region"] == {"startLine": 41}
    assert sql["properties"] == {"method": "GET", "path": "/search", "url": "http://bastion.local/search?q=%27",
                                 "input": {"in": "query", "name": "q"}}
    assert sql["logicalLocations"][0]["name"] == "GET /search"
    url_only = by_check["headers.csp-missing"][0]
    assert url_only["physicalLocation"]["artifactLocation"]["uri"] == "https://example.test/only-url/%7Bid%7D?a=b%20c"
    assert "region" not in url_only["physicalLocation"]
    # a javascript: URL never becomes a link target: base URL + (escaped) path instead
    xss = by_check["injection.xss"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert xss.startswith("http://bastion.local/x/%22%3E%3Cscript%3E") and "javascript" not in xss


def test_invocation_reports_check_errors_and_events(result):
    inv = sarif_document(result)["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert inv["startTimeUtc"] == "2026-01-02T03:04:05.000Z"
    assert inv["endTimeUtc"] == "2026-01-02T03:04:06.250Z"
    texts = [n["message"]["text"] for n in inv["toolExecutionNotifications"]]
    assert texts == ["injection.sql: POST /login [form:user]: RuntimeError: boom <b>",
                     "scan stopped early: request budget"]
    clean = make_result(checks=[], events=[])
    assert sarif_document(clean)["runs"][0]["invocations"][0] == {
        "executionSuccessful": True, "startTimeUtc": "2026-01-02T03:04:05.000Z",
        "endTimeUtc": "2026-01-02T03:04:06.250Z"}


def test_as_uri_escapes_what_uris_cannot_hold():
    assert as_uri("/users/{id}") == "/users/%7Bid%7D"
    assert as_uri("/a b/é") == "/a%20b/%C3%A9"
    assert as_uri("/x?q=%27&r=100%") == "/x?q=%27&r=100%25"


def test_many_findings_stay_valid():
    big = make_result(findings=many_findings(400), checks=[])
    doc = json.loads(sarif_json(big))
    assert len(doc["runs"][0]["results"]) == 400
    assert_valid_sarif(doc)
