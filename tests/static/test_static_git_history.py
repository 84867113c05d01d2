"""Secrets in git history: temporary repositories built in the test, bounded `git log -p`, baselines."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion.static.cli import static
from bastion.static.files import Skipped
from bastion.static.git_history import scan_git_history
from bastion.static.runner import run_static

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GH_TOKEN = "ghp_1234567890abcdefghijklmnopqrstuvwxyz12"


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false",
           "-C", str(repo), *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, files: dict[str, str | None], message: str) -> str:
    for name, text in files.items():
        path = repo / name
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """added key → removed key → unrelated commits; a token still in the tree; a file with a space in its name."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    shas = {"added": _commit(root, {"app/settings.py": f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\nDEBUG = False\n'},
                             "settings")}
    shas["removed"] = _commit(root, {"app/settings.py": 'import os\nAWS_ACCESS_KEY_ID = os.environ["AWS"]\n'},
                              "use env")
    shas["token"] = _commit(root, {"deploy/my config.py": f'TOKEN = "{GH_TOKEN}"\n'}, "token")
    for i in range(3):
        _commit(root, {"README.md": f"docs {i}\n"}, f"docs {i}")
    return root, shas


def test_removed_secret_is_still_a_finding_with_commit_and_redacted_preview(repo: tuple[Path, dict[str, str]]) -> None:
    root, shas = repo
    findings = {f.location.file: f for f in scan_git_history([root], 50)}
    aws = findings["app/settings.py"]
    assert aws.check_id == "secrets.git-history" and aws.location.line == 1 and aws.cwe == 798
    assert aws.evidence[0].meta["commit"] == shas["added"] and aws.evidence[0].meta["still_in_tree"] == "false"
    assert "rotate it" in aws.evidence[1].summary
    token = findings["deploy/my config.py"]
    assert token.evidence[0].meta["still_in_tree"] == "true"
    dumped = json.dumps([f.public_dict() for f in findings.values()])
    assert AWS_KEY not in dumped and GH_TOKEN not in dumped and AWS_KEY[2:10] not in dumped
    assert "AK******" in dumped


def test_depth_bounds_the_commits_read(repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = repo
    assert scan_git_history([root], 3) == []  # only the docs commits
    assert {f.location.file for f in scan_git_history([root], 4)} == {"deploy/my config.py"}


def test_pathspec_limits_history_to_the_scanned_paths(repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = repo
    assert {f.location.file for f in scan_git_history([root / "deploy"], 50)} == {"deploy/my config.py"}


def test_byte_cap_stops_reading_and_says_so(repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = repo
    skipped: list[Skipped] = []
    scan_git_history([root], 50, max_bytes=200, skipped=skipped)
    assert any("rest not scanned" in s.reason for s in skipped)


def test_baseline_accepts_a_known_secret(repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = repo
    hashed = hashlib.sha1(AWS_KEY.encode()).hexdigest()
    findings = scan_git_history([root], 50, baseline={("app/settings.py", hashed)})
    assert {f.location.file for f in findings} == {"deploy/my config.py"}


def test_not_a_repository_is_recorded_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    skipped: list[Skipped] = []
    assert scan_git_history([tmp_path], 10, skipped=skipped) == []
    assert any("not inside a git work tree" in s.reason for s in skipped)


def test_fingerprints_are_stable_and_free_of_secret_material(repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = repo
    first = sorted(f.fingerprint for f in scan_git_history([root], 50))
    assert first == sorted(f.fingerprint for f in scan_git_history([root], 50))
    assert hashlib.sha1(AWS_KEY.encode()).hexdigest()[:24] not in first


def test_cli_git_depth_and_run_static(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, _ = repo
    result = run_static([root], bandit=False, git_depth=50)
    ids = {f.check_id for f in result.findings}
    assert "secrets.git-history" in ids and "static.secret.github-token" in ids
    assert any("git history" in n for n in result.notes)
    res = CliRunner().invoke(static, [str(root / "app"), "--git-depth", "50", "--no-bandit", "--format", "json",
                                      "--out", str(tmp_path / "out")])
    assert res.exit_code == 1, res.output  # the removed key is high severity: rotate it
    findings = json.loads((tmp_path / "out" / "findings.json").read_text())["findings"]
    assert [f["check_id"] for f in findings] == ["secrets.git-history"]
    assert CliRunner().invoke(static, [str(root / "app"), "--no-bandit", "--fail-on", "low"]).exit_code == 0
