"""Secret scanning: detect-secrets as a library, redacted previews only, detect-secrets baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion.errors import ConfigError
from bastion.static.cli import static
from bastion.static.runner import run_static

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GH_TOKEN = "ghp_1234567890abcdefghijklmnopqrstuvwxyz12"


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\nTOKEN = "{GH_TOKEN}"\n')
    (tmp_path / "clean.py").write_text('import os\nTOKEN = os.environ["TOKEN"]\n')
    return tmp_path


def test_provider_patterns_are_found_with_redacted_previews(tmp_path: Path) -> None:
    result = run_static([_tree(tmp_path)], bandit=False)
    findings = [f for f in result.findings if f.check_id.startswith("static.secret.")]
    by_id = {f.check_id: f for f in findings}
    assert "static.secret.aws-access-key" in by_id
    aws = by_id["static.secret.aws-access-key"]
    assert aws.threat_id == "static.hardcoded-secret" and aws.cwe == 798 and aws.location.line == 1
    assert aws.evidence[0].content == "AWS Access Key: AK******"
    dumped = json.dumps([f.public_dict() for f in findings])
    assert AWS_KEY not in dumped and GH_TOKEN not in dumped and "1234567890abcdef" not in dumped
    assert all(f.location.file and f.location.file.endswith("settings.py") for f in findings)


def test_baseline_drops_accepted_secrets(tmp_path: Path) -> None:
    from detect_secrets import SecretsCollection
    from detect_secrets.core import baseline
    from detect_secrets.settings import default_settings

    (tmp_path / "src").mkdir()
    tree = _tree(tmp_path / "src")
    collection = SecretsCollection()
    with default_settings():
        collection.scan_file(str(tree / "settings.py"))
        baseline_file = tmp_path / ".secrets.baseline"
        baseline.save_to_file(collection, str(baseline_file))
    result = run_static([tree], bandit=False, secrets_baseline=baseline_file)
    assert not [f for f in result.findings if f.check_id.startswith("static.secret.")]


def test_bad_baseline_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "baseline.json"
    bad.write_text("[1, 2")
    with pytest.raises(ConfigError, match="baseline"):
        run_static([tmp_path], secrets_baseline=bad)
    res = CliRunner().invoke(static, [str(tmp_path), "--secrets-baseline", str(bad)])
    assert res.exit_code == 2 and "baseline" in res.output
