"""`bastion static --import`: other tools' SARIF merged in, Bastion's own SARIF round-trips, hostile SARIF refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bastion.errors import InputFileError
from bastion.static.cli import static
from bastion.static.sarif_import import import_sarif, load_sarif

APPS = Path(__file__).parent / "apps"


def _semgrep_like() -> dict[str, Any]:
    return {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "runs": [{
        "tool": {"driver": {"name": "Semgrep OSS", "rules": [{
            "id": "python.flask.security.xss.direct-use-of-jinja2",
            "shortDescription": {"text": "Direct use of jinja2"},
            "defaultConfiguration": {"level": "warning"},
            "properties": {"precision": "very-high", "tags": ["CWE-79: Improper Neutralization", "security",
                                                                "external/cwe/cwe-79"]}}]}},
        "results": [
            {"ruleId": "python.flask.security.xss.direct-use-of-jinja2", "ruleIndex": 0, "level": "error",
             "message": {"text": "Detected direct use of jinja2 with password=hunter2hunter2 in the call"},
             "locations": [{"physicalLocation": {"artifactLocation": {"uri": "app/views%20x.py"},
                                                 "region": {"startLine": 12}}}],
             "partialFingerprints": {"primaryLocationLineHash": "abc123:1"}},
            {"ruleId": "generic.secrets.gitleaks", "message": {"text": "note only"},
             "properties": {"security-severity": "9.1"},
             "locations": [{"physicalLocation": {"artifactLocation": {"uri": "file:///srv/app/settings.py"}}}]},
            {"ruleId": "passed.rule", "kind": "pass", "message": {"text": "ok"}},
        ]}]}


def test_foreign_results_become_findings(tmp_path: Path) -> None:
    sarif = tmp_path / "semgrep.sarif"
    sarif.write_text(json.dumps(_semgrep_like()))
    first, second = sorted(import_sarif(sarif), key=lambda f: f.check_id)
    assert second.check_id == "static.imported.semgrep-oss.python-flask-security-xss-direct-use-of-jinja2"
    assert second.threat_id == "static.imported-finding" and second.severity == "high" and second.cwe == 79
    assert second.confidence == "firm"  # the rule's precision is very-high
    assert (second.location.file, second.location.line) == ("app/views x.py", 12)
    assert "hunter2hunter2" not in second.model_dump_json()  # secret-shaped text redacted
    assert first.severity == "critical" and first.location.file == "/srv/app/settings.py"
    assert first.confidence == "tentative"
    again = import_sarif(sarif)
    assert sorted(f.fingerprint for f in again) == sorted([first.fingerprint, second.fingerprint])


def test_bastion_sarif_round_trips_to_the_same_fingerprints(tmp_path: Path) -> None:
    out = tmp_path / "first"
    res = CliRunner().invoke(static, [str(APPS / "vuln_flask.py"), "--no-secrets", "--format", "json,sarif",
                                      "--out", str(out), "--fail-on", "none"])
    assert res.exit_code == 0, res.output
    original = json.loads((out / "findings.json").read_text())["findings"]
    again = tmp_path / "again"
    res = CliRunner().invoke(static, ["--import", str(out / "bastion.sarif"), "--format", "json,sarif",
                                      "--out", str(again), "--fail-on", "none"])
    assert res.exit_code == 0, res.output
    reimported = json.loads((again / "findings.json").read_text())["findings"]
    assert {f["fingerprint"] for f in reimported} == {f["fingerprint"] for f in original}
    by_fp = {f["fingerprint"]: f for f in reimported}
    for f in original:
        twin = by_fp[f["fingerprint"]]
        assert (twin["check_id"], twin["threat_id"], twin["severity"], twin["confidence"]) == (
            f["check_id"], f["threat_id"], f["severity"], f["confidence"])
    load_sarif(again / "bastion.sarif")  # the merged run's SARIF validates against the schema


def test_import_merges_with_a_scan_and_gates(tmp_path: Path) -> None:
    sarif = tmp_path / "semgrep.sarif"
    sarif.write_text(json.dumps(_semgrep_like()))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "ok.py").write_text("x = 1\n")
    res = CliRunner().invoke(static, [str(tmp_path / "src"), "--import", str(sarif), "--import", str(sarif),
                                      "--format", "json", "--out", str(tmp_path / "out")])
    assert res.exit_code == 1, res.output
    findings = json.loads((tmp_path / "out" / "findings.json").read_text())["findings"]
    assert len(findings) == 2  # the same file imported twice dedupes


def _deep(depth: int) -> str:
    return '{"version": "2.1.0", "runs": [], "properties": ' + '{"a": ' * depth + "1" + "}" * depth + "}"


HOSTILE: dict[str, bytes] = {
    "not-json": b"this is not json",
    "non-utf8": b'{"version": "2.1.0", "runs": [], "x": "\xff\xfe"}',
    "utf16": "\ufeff{}".encode("utf-16"),
    "wrong-version": b'{"version": "1.0.0", "runs": []}',
    "no-version": b'{"runs": []}',
    "top-level-array": b"[1, 2]",
    "schema-invalid": b'{"version": "2.1.0", "runs": [{"tool": {}}]}',
    "results-not-list": b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": 3}]}',
    "deep": _deep(5000).encode(),
    "bad-level": (b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": '
                  b'[{"message": {"text": "m"}, "level": "catastrophic"}]}]}'),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_sarif_exits_2_naming_the_file_and_writes_nothing(tmp_path: Path, case: str) -> None:
    sarif = tmp_path / f"{case}.sarif"
    sarif.write_bytes(HOSTILE[case])
    with pytest.raises(InputFileError) as err:
        load_sarif(sarif)
    assert str(sarif) in str(err.value)
    out = tmp_path / "out"
    res = CliRunner().invoke(static, [str(APPS / "safe_flask.py"), "--import", str(sarif), "--format", "json",
                                      "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert str(sarif) in res.output and not out.exists()


def test_size_node_and_result_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = [{"ruleId": "r", "message": {"text": "m"}} for _ in range(50)]
    doc = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": results}]}
    sarif = tmp_path / "many.sarif"
    sarif.write_text(json.dumps(doc))
    assert len(import_sarif(sarif)) == 1  # one rule, no location, one message: one flaw
    for limit, value, message in (("MAX_SARIF_BYTES", 100, "larger than"), ("MAX_NODES", 40, "objects/arrays"),
                                  ("MAX_RESULTS", 10, "results")):
        with monkeypatch.context() as m:
            m.setattr(f"bastion.static.sarif_import.{limit}", value)
            with pytest.raises(InputFileError, match=message):
                load_sarif(sarif)


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    text = "[" * 200 + '\\"{'
    doc = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
                                         "results": [{"ruleId": "r", "message": {"text": text}}]}]}
    sarif = tmp_path / "s.sarif"
    sarif.write_text(json.dumps(doc))
    (finding,) = import_sarif(sarif)
    assert finding.evidence[0].content.startswith("[[[")
