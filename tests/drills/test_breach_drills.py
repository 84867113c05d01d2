"""Breach drills: the narrative runner and `bastion drill breach` on the demo and on a third-party app, the
drills.credential-stuffing-undetected check, the `alerts:` schema, redaction and the output formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion.cli import cli
from bastion.demo.db import USERS
from bastion.drills.narratives import load_narratives
from bastion.drills.timeline import DrillRun, PlaybookAnswer, StepRecord
from bastion.findings.redact import Redactor
from bastion.session import scan_from_options

CHECK = "drills.credential-stuffing-undetected"
HERE = Path(__file__).parent
DEMO_PASSWORDS = [password for _, _, password, _, _ in USERS]
THIRD_PARTY_PASSWORD = "Carol-Pass-2024!"


def _drill(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["drill", "breach", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# --- the check on the demo -------------------------------------------------------------------------------


def test_check_fires_on_the_flawed_demo(scan_demo) -> None:
    result = scan_demo(flaws="all", checks=[CHECK])
    found = [f for f in result.findings if f.check_id == CHECK]
    assert len(found) == 1, [c.errors for c in result.checks]
    finding = found[0]
    assert finding.location.method == "POST" and finding.location.path
    text = "\n".join(e.content for e in finding.evidence)
    assert "stuffing:" in text and "succeeded" in text and "detected by: audit" in text
    assert "✘ Did an alert fire" in text
    assert not any(p in text for p in DEMO_PASSWORDS)


def test_check_silent_on_the_hardened_demo(scan_demo) -> None:
    result = scan_demo(flaws="none", checks=[CHECK])
    assert [f for f in result.findings if f.check_id == CHECK] == []
    assert not [c.errors for c in result.checks if c.errors]


# --- the CLI on the demo ---------------------------------------------------------------------------------


def test_cli_flawed_demo_exits_1_with_a_redacted_json_timeline(tmp_path: Path) -> None:
    out = tmp_path / "drill.json"
    code, _, _ = _drill("--demo", "--narrative", "credential-stuffing", "--narrative", "leaked-key",
                        "--format", "json", "--out", str(out))
    assert code == 1
    raw = out.read_text()
    doc = json.loads(raw)
    assert doc["schema"] == "bastion-drill-breach/1" and doc["passed"] is False
    assert [n["narrative"] for n in doc["narratives"]] == ["credential-stuffing", "leaked-key"]
    stuffing = doc["narratives"][0]["steps"][0]
    keys = {"step", "action", "did", "outcome", "alerted", "audited", "detected_by", "start_ms", "unmet"}
    assert keys <= set(stuffing)
    assert stuffing["outcome"] == "succeeded" and stuffing["alerted"] is False and stuffing["unmet"]
    escalation = doc["narratives"][1]["steps"][0]
    assert escalation["outcome"] == "succeeded"  # the demo's admin export lets any signed-in user in
    assert {p["answer"] for p in doc["narratives"][0]["playbook"]} <= {"yes", "no", "unknown"}
    # Passwords and the session's bearer token never reach the output.
    assert not any(p in raw for p in DEMO_PASSWORDS)
    assert "Bearer ey" not in raw and "eyJ" not in raw


def test_cli_hardened_demo_exits_0_alerted_on_both_channels() -> None:
    code, stdout, _ = _drill("--demo", "--flaws", "none", "--format", "json")
    assert code == 0, stdout
    doc = json.loads(stdout)
    assert doc["passed"] is True
    stuffing = doc["narratives"][0]["steps"][0]
    assert stuffing["alerted"] is True
    assert any(a.startswith("log: WARNING shop.security") for a in stuffing["alerts"])
    assert any(a.startswith("webhook: POST /alert") for a in stuffing["alerts"])
    checklist = {p["item"]: p["answer"] for p in doc["narratives"][0]["playbook"]}
    assert checklist["alert-fired"] == "yes" and checklist["attacker-identifiable"] == "yes"
    assert checklist["export-audited"] == "yes"
    poison = doc["narratives"][2]["steps"][0]
    assert poison["outcome"] == "blocked"


def test_cli_markdown_and_console_output(tmp_path: Path) -> None:
    md = tmp_path / "drill.md"
    code, _, _ = _drill("--demo", "--flaws", "none", "--narrative", "poisoned-message", "--format", "md",
                        "--out", str(md))
    assert code == 0
    text = md.read_text()
    assert text.startswith("# Breach drills")
    assert "| +ms | step | action | outcome | detected by |" in text
    assert "### Incident-playbook checklist" in text and "✔ Was the poisoned message kept" in text
    code, stdout, _ = _drill("--demo", "--flaws", "none", "--narrative", "poisoned-message")
    assert code == 0 and "Poisoned queue message" in stdout and "✔" in stdout


@pytest.mark.parametrize(("alerts", "key"), [
    ("{log: {logger: shop.security, pattern: '(('}}", "alerts.log.pattern"),
    ("{}", "alerts"),
    ("{webhook: {env: 'NOT A VAR'}}", "alerts.webhook.env"),
    ("{log: {logger: a, pattern: b, level: x}}", "alerts.log.level"),
    ("{webhook: {env: HOOK, port: true}}", "alerts.webhook.port"),
    ("[log]", "alerts"),
])
def test_hostile_alerts_config_exits_2_naming_the_key(tmp_path: Path, alerts: str, key: str) -> None:
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(f"target: {{app: 'thirdparty_shop:create_app()'}}\nalerts: {alerts}\n")
    code, _, stderr = _drill("-c", str(cfg))
    assert code == 2
    assert key in stderr and "Traceback" not in stderr


def test_unknown_narrative_and_missing_target_exit_2() -> None:
    code, _, stderr = _drill("--demo", "--narrative", "nope")
    assert code == 2 and "unknown narrative nope" in stderr
    code, _, stderr = _drill()
    assert code == 2 and "--demo" in stderr


def test_url_targets_need_allow_destructive(tmp_path: Path) -> None:
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text("target: {url: 'http://127.0.0.1:9'}\n")
    code, _, stderr = _drill("-c", str(cfg))
    assert code == 2 and "Traceback" not in stderr


# --- a third-party app with an alert webhook --------------------------------------------------------------


def _third_party_config(tmp_path: Path, alerting: bool) -> Path:
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(
        f"target: {{app: 'thirdparty_shop:create_app(alerting={alerting})'}}\n"
        "roles:\n"
        f"  carol: {{login: {{path: /signin, form: {{login: carol, password: '{THIRD_PARTY_PASSWORD}'}}}}}}\n"
        "alerts: {webhook: {env: SEC_ALERT_URL}}\n"
        "audit: {log: 'GET /audit'}\n")
    return cfg


@pytest.fixture
def third_party(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


@pytest.mark.usefixtures("third_party")
def test_third_party_app_with_a_webhook_alert_passes(tmp_path: Path) -> None:
    code, stdout, _ = _drill("-c", str(_third_party_config(tmp_path, True)), "--narrative", "credential-stuffing",
                             "--format", "json")
    assert code == 0, stdout
    steps = json.loads(stdout)["narratives"][0]["steps"]
    assert steps[0]["alerted"] is True and "brute force from" in steps[0]["alerts"][0]
    assert steps[0]["did"].startswith("POST /signin ×20")
    assert steps[2]["outcome"] == "succeeded" and steps[2]["audited"] is True and steps[2]["actor_named"] is True
    assert THIRD_PARTY_PASSWORD not in stdout
    result = scan_from_options(config=str(_third_party_config(tmp_path, True)), checks=[CHECK])
    assert [f for f in result.findings if f.check_id == CHECK] == []


@pytest.mark.usefixtures("third_party")
def test_third_party_app_without_alerting_is_a_finding(tmp_path: Path) -> None:
    result = scan_from_options(config=str(_third_party_config(tmp_path, False)), checks=[CHECK])
    found = [f for f in result.findings if f.check_id == CHECK]
    assert len(found) == 1, [c.errors for c in result.checks]
    assert found[0].location.path == "/signin"
    assert THIRD_PARTY_PASSWORD not in found[0].model_dump_json()


# --- units -----------------------------------------------------------------------------------------------


def test_redaction_masks_secrets_in_every_text() -> None:
    step = StepRecord(step="s", action="credential-stuffing", says="x", expect=["detected"],
                      did="POST /login password=Hunter-Secret-9", outcome="succeeded",
                      reason="token tok-abcdef123456 issued", alerts=["log: pw Hunter-Secret-9"],
                      audit_records=["actor=x password=Hunter-Secret-9"])
    run = DrillRun("n", "t", "target", [step],
                   [PlaybookAnswer("alert-fired", "q?", "no", "saw tok-abcdef123456")])
    clean = run.redacted(Redactor(["Hunter-Secret-9", "tok-abcdef123456"]))
    dumped = json.dumps(clean.as_dict())
    assert "Hunter-Secret-9" not in dumped and "tok-abcdef123456" not in dumped and "***" in dumped


def test_expectations_judge_outcomes_and_detections() -> None:
    def rec(outcome: str, alerted: bool | None, audited: bool | None = None, named: bool | None = None,
            expect: tuple[str, ...] = ("detected",)) -> StepRecord:
        return StepRecord(step="s", action="a", says="x", expect=list(expect), outcome=outcome,  # type: ignore[arg-type]
                          alerted=alerted, audited=audited, actor_named=named)

    assert rec("rate-limited", False).unmet() == []
    assert rec("succeeded", True).unmet() == []
    assert rec("succeeded", False).unmet() and rec("succeeded", None).unmet()
    assert rec("skipped", None).unmet() == []
    assert rec("succeeded", None, True, False, ("audited",)).unmet()
    assert rec("succeeded", None, None, None, ("audited",)).unmet() == []  # no trail declared: not judged
    assert rec("succeeded", None, expect=("blocked",)).unmet()


def test_narratives_are_data_with_known_actions() -> None:
    narratives = load_narratives()
    assert list(narratives) == ["credential-stuffing", "leaked-key", "poisoned-message"]
    assert [s.action for s in narratives["credential-stuffing"].steps] == \
        ["credential-stuffing", "session-reuse", "data-export"]
