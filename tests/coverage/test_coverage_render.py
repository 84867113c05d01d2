"""Coverage sections render hostile paths and titles inertly (HTML escaped, Markdown escaped, rich as text)."""

from __future__ import annotations

import re

from rich.console import Console

from bastion.coverage import compute_coverage
from bastion.coverage.render import console_text, coverage_markdown
from bastion.engine.context import CheckStats
from bastion.engine.runner import ScanResult
from bastion.engine.units import RunPlanRecord, UnitRecord
from bastion.findings.model import Confidence, Finding, Location, Severity
from bastion.report import html_report, markdown_report, print_summary
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target

HOSTILE = "/x/<script>document.title='PWNED'</script>[link](javascript:alert(1))"


def _result() -> ScanResult:
    ep = EntryPoint("GET", HOSTILE, inputs=[Input("query", "q<img src=x onerror=alert(1)>")])
    stats = CheckStats("injection.xss-reflected", requests=3, units=["x"],
                       unit_records=[UnitRecord("GET", HOSTILE, "query:q", None, requests=3, findings=1)])
    finding = Finding(check_id="injection.xss-reflected", threat_id="injection.xss-reflected",
                      title="XSS <script>alert(1)</script>", severity=Severity.high, confidence=Confidence.firm,
                      location=Location(method="GET", path=HOSTILE))
    return ScanResult(target=Target.from_url("http://127.0.0.1:1"), surface=Surface([ep]), seed=0,
                      started_at="2025-01-01T00:00:00+00:00", duration_s=0.1, requests=3, checks=[stats],
                      findings=[finding], coverage_plan=RunPlanRecord())


def test_html_escapes_coverage_cells() -> None:
    html = html_report(_result())
    assert 'id="coverage"' in html
    assert "<script>document.title" not in html and "<img src=x" not in html
    assert "&lt;script&gt;document.title" in html


def test_markdown_and_console_are_inert() -> None:
    result = _result()
    cov = compute_coverage(result)
    xss = cov.get("injection.xss-reflected")
    assert xss is not None and xss.status == "finding" and xss.rows[0].entry == f"GET {HOSTILE}"
    md = coverage_markdown(cov, detail=True)
    outside_code = re.sub(r"(`+).*?\1", "", md)  # code spans are literal text in GFM
    assert "<script>" not in outside_code and "](javascript" not in outside_code and "<img" not in outside_code
    assert "## Threat coverage" in markdown_report(result)
    text = console_text(cov, detail=True, width=400)
    assert "<script>document.title='PWNED'</script>" in text  # shown as text, not interpreted as markup
    console = Console(record=True, width=200)
    print_summary(result, console)
    assert "Threat coverage:" in console.export_text()
