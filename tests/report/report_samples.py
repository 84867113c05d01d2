"""Hand-built ScanResults for the report tests: hostile strings, unicode, file/line and URL-only findings."""

from __future__ import annotations

from bastion.engine.context import CheckStats
from bastion.engine.runner import ScanResult
from bastion.findings.model import (
    Confidence,
    Evidence,
    Finding,
    InputRef,
    Location,
    Reproduction,
    Severity,
)
from bastion.surface.model import Surface
from bastion.target.target import Target

# Each payload, if it ever ran, leaves a mark the browser test looks for: the title "PWNED",
# an element with id "pwned", or a data-pwned attribute on <body>.
MARK_TITLE = "document.title='PWNED'"
MARK_DIV = "document.body.appendChild(Object.assign(document.createElement('div'),{id:'pwned'}))"
XSS = {
    "script": f"<script>{MARK_TITLE}</script>",
    "img": f'<img src=x onerror="{MARK_DIV}">',
    "svg": f"</pre><svg onload=\"{MARK_TITLE}\">",
    "attr": f"\"><script>{MARK_DIV}</script>",
    "js_url": "javascript:document.body.setAttribute('data-pwned','1')",
    "template": "{{7*7}}",
    "close": f"</textarea></title></style></script><script>{MARK_TITLE}</script>",
}
ALL_XSS = " ".join(XSS.values())
UNICODE = "Ünïcödé ✓ 日本語 🚀"
HOSTILE_FENCE = "```\n# not a heading\n````\n</details>\n| a | b |"


def _findings() -> list[Finding]:
    sql = Finding(
        check_id="injection.sql", threat_id="injection.sql", title=f"SQL injection in q {UNICODE}",
        severity=Severity.high, confidence=Confidence.confirmed, cwe=89, owasp=["A03:2021"],
        location=Location(method="GET", path="/search", url="http://bastion.local/search?q=%27",
                          input=InputRef(in_="query", name="q"), file="app/search.py", line=41),
        evidence=[Evidence(kind="request", summary="GET /search?q='", content="GET /search?q=' HTTP/1.1"),
                  Evidence(kind="sensor", summary="tainted SQL",
                           content="SELECT * FROM t WHERE q = ''' \x00")],
        reproduction=Reproduction(curl="curl -i 'http://127.0.0.1:8000/search?q=%27'",
                                  pytest="def test_sql_is_fixed():\n    assert True\n"),
        remediation="Use parameterised queries.",
    )
    xss = Finding(
        check_id="injection.xss", threat_id="injection.xss", title=f"Reflected XSS {XSS['script']}",
        severity=Severity.critical, confidence=Confidence.confirmed, cwe=79, owasp=["A03:2021"],
        location=Location(method="POST", path=f"/x/{XSS['attr']}", url=XSS["js_url"],
                          input=InputRef(in_="form", name=XSS["img"])),
        evidence=[Evidence(kind="response", summary=XSS["svg"], content=ALL_XSS + "\n" + HOSTILE_FENCE)],
        reproduction=Reproduction(curl=f"curl -d 'x={XSS['close']}' {XSS['js_url']}",
                                  pytest=f"# {XSS['template']}\n{XSS['close']}\n"),
        remediation=f"Escape output. {XSS['template']} [link](javascript:alert(1))", role="alice",
    )
    header = Finding(
        check_id="headers.csp-missing", threat_id="headers.csp-missing", title="CSP header missing",
        severity=Severity.medium, confidence=Confidence.firm, cwe=693,
        location=Location(url="https://example.test/only-url/{id}?a=b c"),
        evidence=[Evidence(kind="response", summary="no Content-Security-Policy", content="HTTP/1.1 200 OK")],
    )
    static = Finding(
        check_id="static.secret", threat_id="static.secret", title="Hard-coded secret", severity=Severity.low,
        confidence=Confidence.tentative, location=Location(file="config/settings.py", line=7),
    )
    info = Finding(
        check_id="headers.server-banner", threat_id="headers.server-banner", title="Server banner",
        severity=Severity.info, confidence=Confidence.firm, location=Location(method="GET", path="/"),
    )
    sql_second_input = sql.model_copy(update={
        "location": Location(method="GET", path="/search", input=InputRef(in_="query", name="page")),
        "fingerprint": "", "severity": Severity.medium, "title": "SQL injection in page"})
    sql_second_input = Finding.model_validate(sql_second_input.model_dump(by_alias=True))
    return sorted([sql, xss, header, static, info, sql_second_input], key=Finding.sort_key)


def _checks() -> list[CheckStats]:
    return [
        CheckStats("headers.csp-missing", requests=3, duration_s=0.1, units=["target"]),
        CheckStats("headers.server-banner", requests=2, duration_s=0.05, units=["GET /", "GET /search"]),
        CheckStats("injection.sql", requests=40, duration_s=0.3,
                   units=["GET /search [query:page]", "GET /search [query:q]", "POST /login [form:user]",
                          "POST /api/items [json:items[].sku]"],
                   errors=["POST /login [form:user]: RuntimeError: boom <b>\nTraceback: ..."]),
        CheckStats("injection.xss", requests=20, duration_s=0.2, units=["GET /search [query:q]"]),
    ]


def make_result(findings: list[Finding] | None = None, checks: list[CheckStats] | None = None,
                started_at: str = "2026-01-02T03:04:05+00:00", duration_s: float = 1.25,
                events: list[str] | None = None, seed: int = 7) -> ScanResult:
    """A ScanResult built by hand (no scan): the default has six findings over four checks."""
    target = Target(kind="wsgi", base_url="http://bastion.local",
                    spec=f"demo.app:create_app() {XSS['script']}")
    return ScanResult(target=target, surface=Surface(), seed=seed, started_at=started_at,
                      duration_s=duration_s, requests=65,
                      checks=_checks() if checks is None else checks,
                      findings=_findings() if findings is None else findings,
                      events=["scan stopped early: request budget"] if events is None else events)


def many_findings(n: int) -> list[Finding]:
    """n distinct findings over a handful of checks and severities."""
    sevs = list(Severity)
    out = [Finding(check_id=f"perf.check{i % 7}", threat_id="perf", title=f"finding {i}",
                   severity=sevs[i % len(sevs)], confidence=Confidence.firm,
                   location=Location(method="GET", path=f"/p/{i}", input=InputRef(in_="query", name="q")),
                   evidence=[Evidence(kind="response", summary="s", content="x" * 200)])
           for i in range(n)]
    return sorted(out, key=Finding.sort_key)
