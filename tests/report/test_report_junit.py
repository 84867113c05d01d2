"""junit.xml: one testcase per check x entry point, failures where findings are, errors for check errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from report_samples import make_result, many_findings

from bastion.engine.context import CheckStats
from bastion.findings.model import Confidence, Finding, Location, Severity
from bastion.report import junit_xml
from bastion.report.junit import entry_of_unit


def _cases(xml: str) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(xml.encode("utf-8"))
    return {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}


def test_parses_with_the_right_counts(result):
    root = ET.fromstring(junit_xml(result).encode("utf-8"))
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root.findall("testsuite")] == ["headers", "injection", "static"]
    cases = list(root.iter("testcase"))
    failures = [c for c in cases if c.find("failure") is not None]
    errors = [c for c in cases if c.find("error") is not None]
    # xss@POST /x/..., sql@GET /search (two inputs, one case), csp@target, banner@GET /, secret@file
    assert len(failures) == 5 and len(errors) == 1 and len(cases) == 9
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("9", "5", "1")
    for suite in root.findall("testsuite"):
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
        failing = sum(c.find("failure") is not None for c in suite.iter("testcase"))
        assert int(suite.get("failures")) == failing


def test_input_units_collapse_to_entry_points(result):
    cases = _cases(junit_xml(result))
    sql = sorted(name for cls, name in cases if cls == "injection.sql")
    assert sql == ["GET /search", "POST /api/items", "POST /login"]
    failure = cases[("injection.sql", "GET /search")].find("failure")
    assert failure.get("type") == "high" and "(+1 more)" in failure.get("message")
    assert "[query:q]" in failure.text and "[query:page]" in failure.text
    assert cases[("injection.sql", "POST /api/items")].find("failure") is None
    error = cases[("injection.sql", "POST /login")].find("error")
    assert error.get("message") == "POST /login [form:user]: RuntimeError: boom <b>"


def test_target_and_unplanned_locations(result):
    cases = _cases(junit_xml(result))
    assert cases[("headers.csp-missing", "target")].find("failure").get("type") == "medium"
    assert cases[("headers.server-banner", "GET /")].find("failure") is not None
    assert cases[("headers.server-banner", "GET /search")].find("failure") is None
    assert cases[("static.secret", "config/settings.py")].find("failure").get("type") == "low"
    xss = [name for cls, name in cases if cls == "injection.xss"]
    assert "GET /search" in xss and any(name.startswith('POST /x/"><script>') for name in xss)


def test_entry_of_unit():
    assert entry_of_unit("GET /x [query:q]") == "GET /x"
    assert entry_of_unit("POST /api/items [json:items[].sku]") == "POST /api/items"
    assert entry_of_unit("GET /x") == "GET /x" and entry_of_unit("target") == "target"


def test_characters_xml_cannot_hold_are_escaped():
    bad = Finding(check_id="x.y", threat_id="x", title="nul \x00 esc \x1b surrogate \udcff ok ✓",
                  severity=Severity.high, confidence=Confidence.firm,
                  location=Location(method="GET", path="/\x07"))
    res = make_result(findings=[bad], checks=[CheckStats("x.y", units=["GET /\x07"],
                                                         errors=["GET /\x07: Boom: \x00"])])
    cases = _cases(junit_xml(res))
    case = cases[("x.y", "GET /\\x07")]
    assert "nul \\x00 esc \\x1b surrogate \\udcff ok ✓" in case.find("failure").get("message")
    assert "\\x00" in case.find("system-err").text


def test_many_findings():
    res = make_result(findings=many_findings(3000), checks=[])
    root = ET.fromstring(junit_xml(res).encode("utf-8"))
    assert root.get("tests") == root.get("failures") == "3000"
