"""bandit as a library: its issues become Findings (id, CWE, severity × confidence) without duplicates."""

from __future__ import annotations

from pathlib import Path

from bastion.static.runner import run_static

APPS = Path(__file__).parent / "apps"


def test_bandit_issues_map_to_findings(tmp_path: Path) -> None:
    src = tmp_path / "tool.py"
    src.write_text("import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n")
    findings = run_static([src]).findings
    b602 = next(f for f in findings if f.check_id == "static.bandit.B602")
    assert b602.threat_id == "injection.command" and b602.cwe == 78
    assert b602.location.line == 4 and "shell=True" in b602.evidence[0].content
    assert b602.evidence[0].meta["bandit_severity"] == "HIGH"
    b404 = next(f for f in findings if f.check_id == "static.bandit.B404")
    assert b404.severity.value == "low" and b404.threat_id == "static.bandit"


def test_bandit_duplicates_of_bastion_rules_are_dropped() -> None:
    findings = run_static([APPS / "vuln_flask.py"]).findings
    lines = {(f.check_id, f.location.line) for f in findings}
    assert ("static.command-injection", 30) in lines
    assert ("static.bandit.B602", 30) not in lines  # same flaw, Bastion's finding has the taint
    assert ("static.bandit.B506", 85) not in lines
    assert any(cid.startswith("static.bandit.") for cid, _ in lines)


def test_nosec_is_honoured(tmp_path: Path) -> None:
    src = tmp_path / "tool.py"
    src.write_text("import subprocess  # nosec B404\n\nsubprocess.call('ls', shell=True)  # nosec\n")
    assert [f for f in run_static([src]).findings if f.check_id.startswith("static.bandit.")] == []
