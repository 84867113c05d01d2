"""report.md: renders (CommonMark + GFM tables, raw HTML on, as GitHub parses it) with no live markup."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from report_samples import HOSTILE_FENCE, UNICODE, XSS, make_result, many_findings

from bastion.report import markdown_report
from bastion.report.markdown import md_code, md_fence, md_text


def _render(text: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


def test_structure(result):
    text = markdown_report(result)
    assert text.startswith("# Bastion security report\n")
    for heading in ("## Summary", "## Findings", "## Details", "## Checks", "### Check errors"):
        assert f"\n{heading}\n" in text
    assert "| critical | 1 |" in text and "| medium | 2 |" in text and "| **total** | **6** |" in text
    assert "| `injection.sql` | 40 | 4 | 2 | 0.300 | 1 |" in text
    assert UNICODE in text
    assert "> **Note:** scan stopped early: request budget" in text
    assert "<details><summary>Reproduce</summary>" in text


def test_rendered_html_has_no_hostile_markup(result):
    html = _render(markdown_report(result))
    for tag in ("<script", "<img", "<svg", "<textarea", "<style", "<iframe"):
        assert tag not in html.lower()
    assert 'href="javascript' not in html.lower()
    # hostile text is still there, as text
    assert "&lt;script&gt;document.title='PWNED'&lt;/script&gt;" in html
    assert "{{7*7}}" in html


def test_rendered_tables_and_sections(result):
    html = _render(markdown_report(result))
    findings_table = html.split("<h2>Findings</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr>", findings_table)
    assert len(rows) == 1 + len(result.findings)  # header + one row per finding: no cell split by '|'
    assert all(row.count("<td") == 6 for row in findings_table.split("<tr>")[2:])
    assert len(re.findall(r"<h3>\d+\. ", html)) == len(result.findings)
    assert "<h1>" in html and html.count("<h1>") == 1  # "# not a heading" stayed inside its fence
    with_repro = sum(bool(f.reproduction.curl or f.reproduction.pytest) for f in result.findings)
    # only our own blocks: the "</details>" inside the evidence stayed text
    assert html.count("<details>") == html.count("</details>") == with_repro == 3


def test_evidence_cannot_close_its_fence():
    fenced = md_fence(HOSTILE_FENCE)
    assert fenced.startswith("`````text\n") and fenced.endswith("\n`````")
    html = _render(fenced)
    assert html.count("<pre>") == 1 and "# not a heading" in html and "<h1>" not in html


def test_inline_helpers():
    assert md_text("a | b\n*c* [x](javascript:1) <b>") == "a \\| b \\*c\\* \\[x\\](javascript:1) &lt;b&gt;"
    assert md_code("a`b") == "``a`b``" and md_code("`x") == "`` `x ``" and md_code("") == "(none)"
    assert md_code("a|b", table=True) == "`a\\|b`"
    assert XSS["template"] in md_text(XSS["template"]).replace("\\", "")


def test_no_findings_and_many_findings():
    assert "No findings." in markdown_report(make_result(findings=[], checks=[], events=[]))
    text = markdown_report(make_result(findings=many_findings(2000)))
    assert text.count("\n### ") == 2000 + 1  # plus "### Check errors"
