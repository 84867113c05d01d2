"""The `bastion` command: exit codes and one-line errors for bad input."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from bastion.cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_catalog_lists_and_shows_a_threat() -> None:
    listing = invoke("catalog", "--format", "json")
    assert listing.exit_code == 0
    threats = json.loads(listing.output)
    assert {"injection.sql", "headers.csp-missing", "cors.origin-reflection"} <= {t["id"] for t in threats}
    assert all(t["checks"] for t in threats), "every catalog threat has a check in this release"
    one = invoke("catalog", "injection.sql")
    assert one.exit_code == 0
    assert "CWE-89" in one.output and "How to fix" in one.output


def test_unknown_threat_is_a_usage_error() -> None:
    result = invoke("catalog", "no.such-threat")
    assert result.exit_code == 2
    assert "no.such-threat" in result.output


def test_unknown_format_and_severity_exit_2() -> None:
    assert invoke("scan", "--demo", "--format", "pdf").exit_code == 2
    assert invoke("scan", "--demo", "--fail-on", "catastrophic").exit_code == 2


def test_nothing_to_scan_exit_2() -> None:
    result = invoke("scan")
    assert result.exit_code == 2
    assert "nothing to scan" in result.output


def test_unreachable_url_is_one_line_exit_2(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nobody listens there
    result = invoke("scan", "--url", f"http://127.0.0.1:{port}", "--format", "json", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert f"127.0.0.1:{port}" in result.output and "cannot reach" in result.output
    assert not (tmp_path / "findings.json").exists()


def test_bad_app_spec_exit_2() -> None:
    result = invoke("scan", "--app", "no_such_module_xyz:create_app()")
    assert result.exit_code == 2
    assert "no_such_module_xyz" in result.output


def test_bad_config_file_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text("target:\n  app: x:y\nunknown_key: 1\n")
    result = invoke("scan", "--config", str(cfg))
    assert result.exit_code == 2
    assert "bastion.yaml" in result.output and "unknown_key" in result.output


def test_console_script_runs_as_a_process() -> None:
    proc = subprocess.run([sys.executable, "-m", "bastion.cli", "checks"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0
    assert "injection.sql" in proc.stdout


def test_demo_flaws_lists_the_registry() -> None:
    result = invoke("demo", "flaws")
    assert result.exit_code == 0
    assert "sqli_error" in result.output and "injection.sql" in result.output


def test_scan_driven_by_a_threat_model_file(tmp_path: Path) -> None:
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(
        "target:\n"
        "  app: \"bastion.demo:create_app(flaws='missing_security_headers')\"\n"
        "  base_url: https://shop.example.test\n"
        "checks: { include: [headers], exclude: [headers.cookie-flags] }\n"
        "budgets: { max_requests: 400, concurrency: 2 }\n")
    out = tmp_path / "out"
    result = invoke("scan", "--config", str(cfg), "-q", "--format", "json", "--out", str(out), "--fail-on", "medium")
    assert result.exit_code == 1, result.output
    doc = json.loads((out / "findings.json").read_text())
    assert {f["check_id"] for f in doc["findings"]} == {
        "headers.csp-missing", "headers.xcto-missing", "headers.frame-options-missing",
        "headers.referrer-policy-missing"}
    assert {c["id"] for c in doc["run"]["checks"]} == {
        "headers.csp-missing", "headers.xcto-missing", "headers.frame-options-missing",
        "headers.referrer-policy-missing", "headers.hsts-missing"}
    assert doc["run"]["requests"] <= 400
    assert all(f["location"]["url"] is None or f["location"]["url"].startswith("https://shop.example.test")
               for f in doc["findings"])


def test_init_writes_a_loadable_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    from bastion.model import load_config

    out = tmp_path / "bastion.yaml"
    first = invoke("init", "--app", "bastion.demo:create_app(flaws='none')", "--out", str(out))
    assert first.exit_code == 0, first.output
    cfg = load_config(out)
    assert cfg.target.app == "bastion.demo:create_app(flaws='none')"
    again = invoke("init", "--app", "bastion.demo:create_app(flaws='none')", "--out", str(out))
    assert again.exit_code == 2 and "bastion.yaml" in again.output


def test_surface_lists_inputs_with_source_lines() -> None:
    result = invoke("surface", "--demo", "--format", "json", "--no-crawl")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    header = [r for r in rows if r["in"] == "header" and r["name"] == "X-Tenant"]
    assert header and header[0]["source"].endswith(tuple(f":{n}" for n in range(1, 10000)))
    assert any(r["in"] == "cookie" for r in rows) and any(r["in"] == "path" for r in rows)


def test_demo_serve_runs_a_real_server_on_loopback() -> None:
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "bastion.cli", "demo", "serve", "--port", str(port),
                             "--flaws", "none"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):  # bounded wait for the server to listen (not a timing assertion)
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise AssertionError(f"demo server did not start: {proc.stdout.read1(4096) if proc.stdout else b''!r}")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_demo_serve_refuses_non_loopback_hosts() -> None:
    result = invoke("demo", "serve", "--host", "0.0.0.0", "--port", "8000")
    assert result.exit_code == 2
    assert "0.0.0.0" in result.output


def test_scan_with_static_merges_source_evidence_into_confirmed_findings(tmp_path: Path) -> None:
    result = invoke("scan", "--demo", "--static", "--checks", "injection.sql", "-q", "--no-history",
                    "--format", "json,sarif", "--out", str(tmp_path), "--fail-on", "none")
    assert result.exit_code == 0, result.output
    findings = json.loads((tmp_path / "findings.json").read_text())["findings"]
    sql = [f for f in findings if f["check_id"] == "injection.sql"]
    from bastion.demo import FLAWS

    assert len(sql) == sum("injection.sql" in flaw.checks for flaw in FLAWS.values())
    for f in sql:  # each runtime-confirmed SQL injection carries the source line that builds the query
        assert f["confidence"] == "confirmed"
        assert any(e["kind"] == "source" for e in f["evidence"]), f["location"]
    assert any(f["check_id"].startswith("iac.") for f in findings)  # infra files of the demo tree


def test_static_command_is_registered(tmp_path: Path) -> None:
    import bastion.demo

    vulnerable = Path(bastion.demo.__file__).parent / "infra" / "vulnerable"
    assert vulnerable.is_dir()
    result = invoke("static", str(vulnerable), "--format", "json", "--out", str(tmp_path), "--fail-on", "high")
    assert result.exit_code == 1, result.output
    ids = {f["check_id"] for f in json.loads((tmp_path / "findings.json").read_text())["findings"]}
    assert any(i.startswith("iac.") for i in ids) and any(i.startswith("ci.") for i in ids)
