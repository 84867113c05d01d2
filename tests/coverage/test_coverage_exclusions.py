"""Exclusions in coverage (checks, scope, accepted: with reason/owner/expiry), expired ones as findings, ctx.skip."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bastion.checks.registry import REGISTRY, CheckSpec
from bastion.coverage import NOT_TESTED, Coverage, compute_coverage
from bastion.engine.runner import ScanResult, run_scan
from bastion.findings.model import Severity
from bastion.session import plan_scan

APP = '''
from flask import Flask, request


def create_app():
    app = Flask(__name__)

    @app.get("/")
    def index():
        return "<html><body><p>hello</p></body></html>"

    @app.get("/items")
    def items():
        return {"q": request.args.get("q", "")}

    @app.post("/items")
    def add_item():
        return {"name": request.form.get("name", "")}, 201

    @app.get("/admin/items")
    def admin_items():
        return {"q": request.args.get("q", "")}

    return app
'''

CONFIG = '''\
target: {app: "covapp_excl:create_app()"}
scope: {exclude_paths: ["/admin/items"]}
checks: {exclude: [injection.sql]}
accepted:
  - {threat: headers.csp-missing, reason: "legacy page, rewrite planned", owner: web-team, until: 2030-01-01}
  - threat: headers.xcto-missing
    reason: "old decision"
    until: 2020-06-30
'''
EXPIRED_LINE = 6  # the line of the second `accepted:` item above


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("covapp")
    (folder / "covapp_excl.py").write_text(textwrap.dedent(APP))
    path = folder / "bastion.yaml"
    path.write_text(CONFIG)
    return path


def _scan(config_file: Path, today: date, checks: list[str]) -> ScanResult:
    plan = plan_scan(config=str(config_file), checks=checks)
    plan.options.today = today  # the pinned clock
    return run_scan(plan.target, plan.surface, plan.options)


@pytest.fixture(scope="module")
def result(config_file: Path) -> ScanResult:
    return _scan(config_file, date(2025, 1, 1), ["headers", "injection.sql", "injection.xss-reflected"])


@pytest.fixture(scope="module")
def coverage(result: ScanResult) -> Coverage:
    return compute_coverage(result)


def test_expired_exclusion_is_a_finding_at_its_config_line(result: ScanResult) -> None:
    expired = [f for f in result.findings if f.check_id == "model.expired-exclusion"]
    assert len(expired) == 1
    f = expired[0]
    assert f.threat_id == "model.expired-exclusion" and f.severity == Severity.medium
    assert f.location.file is not None and f.location.file.endswith("bastion.yaml")
    assert f.location.line == EXPIRED_LINE
    assert "headers.xcto-missing" in f.title and "2020-06-30" in f.title
    # The note comes from the suppression logic: the finding the entry hid counts again.
    assert "count again" in f.evidence[0].content and "old decision" in f.evidence[0].summary


def test_the_clock_decides_what_is_expired(config_file: Path) -> None:
    early = _scan(config_file, date(2020, 6, 30), ["headers.xcto-missing"])  # `until` day itself still holds
    assert not [f for f in early.findings if f.check_id == "model.expired-exclusion"]
    cov = compute_coverage(early)
    assert cov.get("model.expired-exclusion").status == "tested"  # type: ignore[union-attr]


def test_accepted_entry_excludes_with_reason_owner_and_expiry(coverage: Coverage) -> None:
    csp = coverage.get("headers.csp-missing")
    assert csp is not None and csp.status == NOT_TESTED and csp.reason == "excluded"
    detail = " ".join(r.detail for r in csp.rows)
    assert "legacy page, rewrite planned" in detail and "web-team" in detail and "2030-01-01" in detail


def test_expired_exclusion_row_says_so(coverage: Coverage) -> None:
    xcto = coverage.get("headers.xcto-missing")
    assert xcto is not None and xcto.status == "finding"
    assert any("exclusion expired on 2020-06-30" in r.notes for r in xcto.rows)
    assert coverage.get("model.expired-exclusion").status == "finding"  # type: ignore[union-attr]


def test_excluded_checks_and_scope_exclusions(coverage: Coverage) -> None:
    sql = coverage.get("injection.sql")
    assert sql is not None and sql.reason == "excluded" and "checks.exclude" in sql.rows[0].detail
    xss = coverage.get("injection.xss-reflected")
    assert xss is not None
    admin = [r for r in xss.rows if r.entry == "GET /admin/items"]
    assert admin and admin[0].reason == "excluded" and "exclude_paths" in admin[0].detail
    tested = [r for r in xss.rows if r.entry == "GET /items"]
    assert tested and tested[0].status == "tested"
    # An entry point without inputs is not applicable to an input-scope check.
    index = [r for r in xss.rows if r.entry == "GET /"]
    assert index and index[0].reason == "not applicable" and "no inputs" in index[0].detail


async def _skipping_check(ctx: Any) -> AsyncIterator[Any]:
    """A test check: skips writes and GETs without query inputs, probes the rest."""
    if ctx.ep.method != "GET":
        ctx.skip("writes not allowed")
        return
    if not any(i.location == "query" for i in ctx.ep.inputs):
        ctx.skip("no payloads")
        return
    await ctx.baseline()
    if False:
        yield


def test_checks_record_skip_reasons(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = CheckSpec(id="zz-coverage-test.skipper", threat="config.stack-trace", title="test", severity=Severity.low,
                     cwe=209, owasp=("A05:2021",), mitigation="-", scope="entry", func=_skipping_check)
    monkeypatch.setitem(REGISTRY, spec.id, spec)
    cov = compute_coverage(_scan(config_file, date(2025, 1, 1), [spec.id]))
    rows = {r.entry: r for r in cov.get("config.stack-trace").rows}  # type: ignore[union-attr]
    assert rows["POST /items"].reason == "writes not allowed"
    assert rows["GET /"].reason == "no payloads"
    assert rows["GET /items"].status == "tested"
    assert rows["GET /admin/items"].reason == "excluded"
