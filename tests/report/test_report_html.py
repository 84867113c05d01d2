"""report.html: self-contained, autoescaped, CSP-locked; proven in a real headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import html5lib
import pytest
from report_samples import ALL_XSS, UNICODE, XSS, make_result, many_findings

from bastion.report import html_report, write_reports

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=2000", "--dump-dom"]


def _parse(markup: str):
    return html5lib.parse(markup, namespaceHTMLElements=False)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _csp(doc) -> str:
    meta = doc.find(".//head/meta[@http-equiv='Content-Security-Policy']")
    assert meta is not None, "no CSP meta element"
    return meta.get("content")


def test_self_contained_no_external_assets(result):
    page = html_report(result)
    doc = _parse(page)
    for el in doc.iter():
        for attr in ("src", "href", "action", "data", "poster", "srcset"):
            value = (el.get(attr) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "javascript:")), (el.tag, attr, value)
    assert doc.find(".//link") is None and doc.find(".//iframe") is None
    scripts = doc.findall(".//script")
    assert len(scripts) == 1 and scripts[0].get("src") is None
    assert "url(" not in doc.find(".//style").text and "@import" not in doc.find(".//style").text


def test_csp_allows_only_the_report_script_and_style_by_hash(result):
    doc = _parse(html_report(result))
    head = doc.find("head")
    # The policy must come before any content it governs.
    assert head[1].get("http-equiv") == "Content-Security-Policy"
    csp = dict(part.strip().split(" ", 1) for part in _csp(doc).split(";"))
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == _sha256(doc.find(".//script").text)
    assert csp["style-src"] == _sha256(doc.find(".//style").text)
    assert "unsafe-inline" not in _csp(doc) and "unsafe-eval" not in _csp(doc)


def test_hostile_strings_are_escaped_text(result):
    page = html_report(result)
    for payload in XSS.values():
        if "<" in payload or '"' in payload:
            assert payload not in page, payload
    assert "&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;" in page
    assert "{{7*7}}" in page and UNICODE in page
    text = "".join(_parse(page).find("body").itertext())
    for payload in XSS.values():
        assert payload in text  # visible to the reader as text


def test_shows_run_info_counts_stats_and_reproductions(result):
    doc = _parse(html_report(result))
    counts = {d.get("data-count-severity"): d.find("b").text
              for d in doc.iter("div") if d.get("data-count-severity")}
    assert counts == {"critical": "1", "high": "1", "medium": "2", "low": "1", "info": "1"}
    assert len(doc.findall(".//details[@class='finding']")) == len(result.findings)
    text = "".join(doc.find("body").itertext())
    for needle in ("Seed", "Requests", "65", "scan stopped early: request budget", "injection.sql", "0.300",
                   "RuntimeError: boom <b>", "curl -i 'http://127.0.0.1:8000/search?q=%27'",
                   "def test_sql_is_fixed():", "Use parameterised queries.", "app/search.py:41"):
        assert needle in text, needle


def test_many_findings_render():
    page = html_report(make_result(findings=many_findings(3000)))
    assert page.count('<details class="finding"') == 3000


# --- real browser -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI for the HTML report browser tests")
        pytest.skip("chromium not installed")
    return path


def _load(chromium: str, page: Path, tmp_path: Path, fragment: str = ""):
    """Load `page` in headless Chromium, let scripts run, return the resulting DOM (parsed)."""
    profile = tmp_path / f"profile-{page.stem}"
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                           page.resolve().as_uri() + fragment],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    return _parse(proc.stdout)


def _pwned(doc) -> list[str]:
    """Marks a payload leaves when it runs."""
    marks = []
    title = doc.find(".//title")
    if title is not None and (title.text or "").strip() == "PWNED":
        marks.append("title")
    if any(el.get("id") == "pwned" for el in doc.iter()):
        marks.append("div#pwned")
    if doc.find("body").get("data-pwned") is not None:
        marks.append("body[data-pwned]")
    return marks


def _js_ran(doc) -> bool:
    return doc.find("body").get("data-filter") is not None  # only the report script sets it


def _active_payloads() -> str:
    return ALL_XSS + "<a id=lnk href=\"javascript:document.body.setAttribute('data-pwned','1')\">x</a>" \
        "<script>document.getElementById('lnk').click()</script>"


def test_control_the_detector_sees_payloads_that_run(chromium, tmp_path):
    page = tmp_path / "control.html"
    page.write_text("<!DOCTYPE html><html><head><title>t</title></head>"
                    f"<body>{_active_payloads()}</body></html>")
    assert set(_pwned(_load(chromium, page, tmp_path))) >= {"title", "div#pwned"}


def test_payloads_in_the_report_do_not_run(chromium, tmp_path, result):
    [page] = write_reports(result, ["html"], tmp_path)
    doc = _load(chromium, page, tmp_path)
    assert _pwned(doc) == []
    assert _js_ran(doc), "the report's own script did not run under its CSP"
    text = "".join(doc.find("body").itertext())
    for payload in XSS.values():
        assert payload in text


def test_escaping_alone_holds_without_the_csp(chromium, tmp_path, result):
    page = tmp_path / "nocsp.html"
    source = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html_report(result))
    assert "http-equiv=\"Content-Security-Policy\"" not in source
    page.write_text(source, encoding="utf-8")
    assert _pwned(_load(chromium, page, tmp_path)) == []


def test_csp_alone_blocks_script_an_escaping_bug_would_inject(chromium, tmp_path, result):
    page = tmp_path / "bug.html"
    page.write_text(html_report(result).replace("<main>", "<main>" + _active_payloads(), 1), encoding="utf-8")
    doc = _load(chromium, page, tmp_path)
    assert _pwned(doc) == []
    assert _js_ran(doc)


def _visible(doc) -> dict[str, str]:
    return {d.get("id"): d.get("data-severity") for d in doc.iter("details")
            if d.get("class") == "finding" and d.get("hidden") is None}


def test_severity_filter_from_the_url_fragment(chromium, tmp_path, result):
    [page] = write_reports(result, ["html"], tmp_path)
    doc = _load(chromium, page, tmp_path, "#severity=high")
    assert list(_visible(doc).values()) == ["high"]
    assert doc.find("body").get("data-shown") == "1" and doc.find("body").get("data-filter") == "high"
    assert doc.find(".//*[@id='shown-count']").text == "1"

    doc = _load(chromium, page, tmp_path, "#severity=critical,medium&q=sql")
    assert list(_visible(doc).values()) == ["medium"]  # the medium SQL finding; the critical one is XSS

    doc = _load(chromium, page, tmp_path, "#severity=low&q=no-such-text")
    assert _visible(doc) == {} and doc.find(".//*[@id='no-match']").get("hidden") is None


def test_authz_matrix_section_marks_drift_and_escapes_role_names() -> None:
    import dataclasses

    from bastion.identity.matrix import AuthzCell

    hostile = "<img src=x onerror=alert(1)>"
    cells = [AuthzCell("GET", "/admin", "admin", "allow", "allow", 200),
             AuthzCell("GET", "/admin", hostile, "deny", "allow", 200)]
    page = html_report(dataclasses.replace(make_result(), authz_matrix=cells))
    assert 'id="authz-matrix"' in page
    assert hostile not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert '<td class="drift">ALLOW (policy: deny)</td>' in page
    assert "<td>allow</td>" in page


def test_no_matrix_section_without_roles() -> None:
    assert 'id="authz-matrix"' not in html_report(make_result())
