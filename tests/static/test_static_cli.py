"""The `static` click command (registered in bastion.cli by the lead) and the report factory."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from click.testing import CliRunner

from bastion.static.cli import static
from bastion.static.runner import run_static, static_scan_result

INFRA = Path(str(resources.files("bastion.demo") / "infra"))
APPS = Path(__file__).parent / "apps"


def test_vulnerable_tree_fails_the_gate_and_writes_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(static, [str(INFRA / "vulnerable"), str(APPS / "vuln_flask.py"),
                                      "--format", "console,json,sarif", "--out", str(out)])
    assert res.exit_code == 1, res.output
    doc = json.loads((out / "findings.json").read_text())
    ids = {f["check_id"] for f in doc["findings"]}
    assert {"iac.privileged-container", "ci.script-injection", "static.sql-string-building"} <= ids
    assert any(i.startswith("static.bandit.B") for i in ids)
    sarif = json.loads((out / "bastion.sarif").read_text())
    assert sarif["runs"][0]["results"]


def test_hardened_tree_passes(tmp_path: Path) -> None:
    res = CliRunner().invoke(static, [str(INFRA / "hardened"), str(APPS / "safe_fastapi.py"),
                                      "--no-bandit", "--fail-on", "low", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "No findings" in res.output


def test_app_option_correlates_routes(tmp_path: Path) -> None:
    demo = Path(str(resources.files("bastion.demo") / "flask_app.py"))
    res = CliRunner().invoke(static, [str(demo), "--app", "bastion.demo:create_app()", "--format", "json",
                                      "--out", str(tmp_path), "--fail-on", "none", "--no-bandit"])
    assert res.exit_code == 0, res.output
    findings = json.loads((tmp_path / "findings.json").read_text())["findings"]
    assert any(f["location"].get("path") == "/products" and f["threat_id"] == "injection.sql" for f in findings)


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert CliRunner().invoke(static, [str(tmp_path), "--format", "pdf"]).exit_code == 2
    assert CliRunner().invoke(static, [str(tmp_path), "--app", "no_such_module_xyz:app"]).exit_code == 2
    assert CliRunner().invoke(static, [str(tmp_path), "--fail-on", "severe"]).exit_code == 2


def test_scan_result_factory_records_skipped_files(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def (:\n")
    result = static_scan_result(run_static([tmp_path]), [tmp_path])
    assert result.target.base_url.startswith("file://") and result.requests == 0
    assert any("bad.py" in e for e in result.events)


def test_every_static_threat_has_a_rule_and_every_rule_a_threat() -> None:
    from bastion.catalog import load_catalog
    from bastion.checks.registry import load_checks
    from bastion.static import static_checks_by_threat

    catalog = load_catalog()
    by_threat = static_checks_by_threat()
    assert set(by_threat) <= set(catalog)
    from bastion.coverage.expired import CHECK_ID as EXPIRED_EXCLUSION

    # The engine itself reports expired exclusions (no registered check).
    dast_threats = {spec.threat for spec in load_checks().values()} | {EXPIRED_EXCLUSION}
    static_only = {t for t in catalog if t.startswith(("static.", "iac.", "ci."))}
    assert static_only <= set(by_threat), static_only - set(by_threat)
    # With static rules counted, every catalog threat has a check (what `bastion catalog` should show).
    assert set(catalog) <= dast_threats | set(by_threat)
    assert "static.sql-string-building" in by_threat["injection.sql"]
