"""Baselines, suppressions with expiry, SARIF baselineState, and `bastion baseline create`."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from history_fakes import make_finding, make_result

from bastion.errors import ConfigError
from bastion.findings.baseline import (
    BASELINE_SCHEMA,
    apply_baseline,
    apply_suppressions,
    create_baseline,
    load_baseline,
    load_findings_file,
    sarif_baseline_states,
)
from bastion.history.cli import baseline_group
from bastion.model.schema import AcceptedRisk
from bastion.report.json_report import findings_json
from bastion.report.sarif import sarif_document

A = make_finding(path="/a")
B = make_finding(path="/b", severity="medium")
CSP = make_finding(check_id="headers.csp-missing", path="/legacy", param=None, severity="low",
                   threat_id="T-HDR-CSP")
TODAY = date(2026, 6, 1)


def test_baseline_round_trip_and_gate(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "bastion-baseline.json"
    written = create_baseline([A, CSP, A], path, reviewer="sec-team")
    doc = json.loads(path.read_text())
    assert doc["schema"] == BASELINE_SCHEMA and doc["reviewer"] == "sec-team"
    assert [e["fingerprint"] for e in doc["findings"]] == [CSP.fingerprint, A.fingerprint]
    assert doc["findings"][1] == {"fingerprint": A.fingerprint, "check_id": "injection.sql",
                                  "location": "GET /a [query:q]",
                                  "title": A.title}
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp file left behind
    loaded = load_baseline(path)
    assert loaded.fingerprints == written.fingerprints == {A.fingerprint, CSP.fingerprint}
    new, baselined = apply_baseline([A, B, CSP], loaded)
    assert new == [B] and baselined == [A, CSP]


HOSTILE = {
    "not json": b"{nope",
    "not utf8": b"\xff\xfe\x00",
    "a list": b"[]",
    "wrong schema": json.dumps({"schema": "bastion-baseline/9", "findings": []}).encode(),
    "findings not a list": json.dumps({"schema": BASELINE_SCHEMA, "findings": {}}).encode(),
    "entry not an object": json.dumps({"schema": BASELINE_SCHEMA, "findings": ["abc"]}).encode(),
    "bad fingerprint": json.dumps({"schema": BASELINE_SCHEMA, "findings": [{"fingerprint": "../../etc"}]}).encode(),
    "title not text": json.dumps({"schema": BASELINE_SCHEMA,
                                  "findings": [{"fingerprint": "abcdef12", "title": {"x": 1}}]}).encode(),
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_malformed_baseline_is_a_config_error_naming_the_file(tmp_path: Path, case: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_bytes(HOSTILE[case])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ConfigError) as info:
        load_baseline(path)
    assert str(path) in str(info.value) and info.value.exit_code == 2
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_missing_or_huge_baseline(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_baseline(tmp_path / "absent.json")
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"schema": BASELINE_SCHEMA, "findings": []}))
    monkeypatch.setattr("bastion.findings.baseline.MAX_FILE_BYTES", 10)
    with pytest.raises(ConfigError, match="over the 10-byte limit"):
        load_baseline(big)


def _risk(**kwargs) -> AcceptedRisk:
    return AcceptedRisk(**{"threat": "headers.csp-missing", "reason": "legacy UI, replaced in Q3",
                           "until": date(2026, 9, 1), **kwargs})


def test_suppression_by_check_id_path_and_method() -> None:
    active, suppressed, notes = apply_suppressions([A, B, CSP], [_risk(path="/legacy", method="GET")], TODAY)
    assert active == [A, B] and suppressed == [CSP] and notes == []
    # A different path or method does not match; a threat id or a check-id prefix does.
    assert apply_suppressions([CSP], [_risk(path="/other")], TODAY)[1] == []
    assert apply_suppressions([CSP], [_risk(method="POST")], TODAY)[1] == []
    assert apply_suppressions([CSP], [_risk(threat="T-HDR-CSP")], TODAY)[1] == [CSP]
    assert apply_suppressions([CSP], [_risk(threat="headers")], TODAY)[1] == [CSP]
    assert apply_suppressions([CSP], [_risk(threat="head")], TODAY)[1] == []
    # Path templates match whatever the parameter is called.
    param = make_finding(check_id="authz.bola", path="/invoices/<int:id>", param=None)
    assert apply_suppressions([param], [_risk(threat="authz.bola", path="/invoices/{invoice_id}")],
                              TODAY)[1] == [param]


def test_expired_suppression_turns_the_finding_back_on_and_says_so() -> None:
    expired = _risk(until=date(2026, 5, 31), owner="web-team", path="/legacy")
    still_valid_today = _risk(until=TODAY, threat="injection.sql")
    active, suppressed, notes = apply_suppressions([A, CSP], [expired, still_valid_today], TODAY)
    assert active == [CSP] and suppressed == [A]
    assert len(notes) == 1
    note = notes[0]
    for part in ("headers.csp-missing", "/legacy", "expired on 2026-05-31", "web-team", "legacy UI", "1 finding"):
        assert part in note
    # An expired entry that matches nothing still gets a note, so it is cleaned up.
    _, _, idle = apply_suppressions([A], [expired], TODAY)
    assert len(idle) == 1 and "matches no finding" in idle[0]


def test_sarif_baseline_states_and_sarif_output(tmp_path: Path) -> None:
    baseline = create_baseline([A, CSP], tmp_path / "b.json")
    states = sarif_baseline_states([A, B], baseline)
    assert states == {A.fingerprint: "unchanged", B.fingerprint: "new", CSP.fingerprint: "absent"}
    assert sarif_baseline_states([A], [A, B]) == {A.fingerprint: "unchanged", B.fingerprint: "absent"}
    assert sarif_baseline_states([B], [A.fingerprint]) == {B.fingerprint: "new", A.fingerprint: "absent"}

    result = make_result([A, B])
    results = sarif_document(result, baseline_states=states)["runs"][0]["results"]
    assert {r["partialFingerprints"]["bastion/v1"]: r["baselineState"] for r in results} == {
        A.fingerprint: "unchanged", B.fingerprint: "new"}
    assert all("baselineState" not in r for r in sarif_document(result)["runs"][0]["results"])


def test_baseline_create_command(tmp_path: Path) -> None:
    source = tmp_path / "findings.json"
    source.write_text(findings_json(make_result([A, B])))
    assert [f.fingerprint for f in load_findings_file(source)] == [A.fingerprint, B.fingerprint]
    out = tmp_path / "bastion-baseline.json"
    run = CliRunner().invoke(baseline_group, ["create", "--from", str(source), "--out", str(out),
                                              "--reviewer", "ada"])
    assert run.exit_code == 0, run.output
    assert "2 finding(s)" in run.output
    assert load_baseline(out).fingerprints == {A.fingerprint, B.fingerprint}


@pytest.mark.parametrize("content", [b"not json", b'{"schema": "other"}',
                                     b'{"schema": "bastion-findings/1", "findings": [{"check_id": 3}]}'])
def test_baseline_create_refuses_bad_findings_file(tmp_path: Path, content: bytes) -> None:
    source = tmp_path / "findings.json"
    source.write_bytes(content)
    out = tmp_path / "baseline.json"
    run = CliRunner().invoke(baseline_group, ["create", "--from", str(source), "--out", str(out)])
    assert run.exit_code == 2 and str(source) in run.output
    assert not out.exists()


def test_baseline_state_values_are_valid_sarif() -> None:
    import jsonschema

    # The repository keeps a copy of the reference schema next to the report tests.
    schema_file = Path(__file__).resolve().parents[1] / "report/data/sarif-schema-2.1.0.json"
    schema = json.loads(schema_file.read_text())
    doc = sarif_document(make_result([A, B]), baseline_states={A.fingerprint: "unchanged", B.fingerprint: "new"})
    jsonschema.Draft7Validator(schema).validate(doc)
    allowed = schema["definitions"]["result"]["properties"]["baselineState"]["enum"]
    assert {"new", "unchanged", "absent"} <= set(allowed)
