"""IaC/CI rules: each fires on the demo's vulnerable infra twin and stays silent on the hardened one."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from bastion.findings.model import Finding
from bastion.static.infra import INFRA_RULES, scan_infra
from bastion.static.runner import StaticResult, run_static

INFRA = Path(str(resources.files("bastion.demo") / "infra"))


@pytest.fixture(scope="module")
def vulnerable() -> StaticResult:
    return run_static([INFRA / "vulnerable"], bandit=False)


@pytest.fixture(scope="module")
def hardened() -> StaticResult:
    return run_static([INFRA / "hardened"], bandit=False)


@pytest.mark.parametrize("rule", [r.id for r in INFRA_RULES])
def test_rule_fires_on_vulnerable_twin(rule: str, vulnerable: StaticResult) -> None:
    assert any(f.check_id == rule for f in vulnerable.findings), rule


def test_hardened_twin_is_clean(hardened: StaticResult) -> None:
    assert [(f.check_id, f.location.label()) for f in hardened.findings] == []
    assert hardened.skipped == []
    # the four infra files, .env.example and requirements.txt (secret scan only; deps audit is opt-in)
    assert hardened.files_scanned == 6


def test_every_kind_of_file_reports(vulnerable: StaticResult) -> None:
    files = {Path(f.location.file or "").name for f in vulnerable.findings}
    assert files == {"Dockerfile", "docker-compose.yml", "deployment.yaml", "ci.yml", ".env"}


def test_secret_values_never_reach_findings(vulnerable: StaticResult) -> None:
    dumped = " ".join(str(f.public_dict()) for f in vulnerable.findings)
    for secret in ("hunter2", "sk_test_demo_not_a_real_key", "not-so-secret-demo-key", "ghp_demo0000"):
        assert secret not in dumped


def test_lines_point_at_the_offending_key(vulnerable: StaticResult) -> None:
    priv = [f for f in vulnerable.findings if f.check_id == "iac.privileged-container"
            and f.location.file and f.location.file.endswith("docker-compose.yml")]
    assert priv and priv[0].location.line == 4
    assert priv[0].evidence[0].content == "privileged: true"


def test_hostile_yaml_is_skipped_with_a_reason_not_a_crash() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(12))
    skipped: list = []
    assert scan_infra("compose", "services: {}\n" + bomb, "docker-compose.yml", skipped) == []
    assert skipped and "alias" in skipped[0].reason.lower()
    skipped.clear()
    assert scan_infra("workflow", "jobs: [unclosed\n", "ci.yml", skipped) == []
    assert skipped and "YAML" in skipped[0].reason


def test_multi_document_manifest_keeps_line_numbers() -> None:
    text = ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n"
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            "    - name: c\n      image: img:1\n      securityContext: {privileged: true}\n")
    findings: list[Finding] = scan_infra("yaml", text, "pod.yaml", [])
    priv = [f for f in findings if f.check_id == "iac.privileged-container"]
    assert priv and priv[0].location.line == 12


def test_unexpected_structures_never_crash() -> None:
    odd = [("compose", "services: {api: {ports: 5432, environment: 7, privileged: yes}}\n"),
           ("compose", "services: [1, 2]\n"),
           ("workflow", "on: 5\njobs: {a: {steps: 'run'}, b: [1], c: {steps: [{uses: 7, run: [1]}]}}\n"),
           ("yaml", "apiVersion: v1\nkind: Pod\nspec: {volumes: 3, containers: {a: 1}}\n"),
           ("yaml", "apiVersion: v1\nkind: CronJob\nspec: {jobTemplate: 5}\n"),
           ("dockerfile", "FROM\nUSER\nENV\nADD\n\\\n"),
           ("env", "=\nexport\n")]
    for kind, text in odd:
        skipped: list = []
        scan_infra(kind, text, "x", skipped)
