"""Secrets in git history: the lines the last N commits added, through detect-secrets' plugins.

`git log -p` runs as a subprocess with fixed arguments (no shell, no pager, no external diff or
textconv drivers, the pathspec after `--`), its output capped in bytes and time. A secret deleted
in a later commit is still a finding: it sits in every clone, so it must be rotated. Findings carry
the commit, file and line and a redacted preview only; a detect-secrets baseline accepts known ones.
The fingerprint is the rule, the file, the commit that added the secret and the detector — never
the secret or its hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from bastion.findings.model import Confidence, Evidence, Finding, Location
from bastion.static.files import MAX_FILE_BYTES, Skipped
from bastion.static.rules import static_rule
from bastion.static.secrets import _ENTROPY_TYPES, _in_baseline, preview

RULE_ID = "secrets.git-history"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 10_000
MAX_LINE_CHARS = 4_000  # longer added lines are minified or generated files, not hand-typed secrets
GIT_TIMEOUT_S = 120.0
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
_SHA = re.compile(r"^commit:([0-9a-f]{40,64})$")


@dataclass(frozen=True)
class HistorySecret:
    commit: str
    file: str
    line: int
    kind: str
    value: str | None
    hashed: str


def _git(args: list[str], cwd: Path) -> list[str]:
    """The git command line: config that could run programs is pinned off."""
    return ["git", "-c", "core.fsmonitor=false", "-c", "core.quotepath=off", "-C", str(cwd), *args]


def repo_root(path: Path) -> Path | None:
    """The top of the git work tree holding `path`, or None when it is not in one."""
    start = path if path.is_dir() else path.parent
    try:
        proc = subprocess.run(_git(["rev-parse", "--show-toplevel"], start), capture_output=True, text=True,
                              timeout=30, env=_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    top = proc.stdout.strip()
    return Path(top) if proc.returncode == 0 and top else None


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_PAGER="cat", PAGER="cat", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def added_lines(root: Path, pathspecs: list[str], depth: int, max_bytes: int,
                skipped: list[Skipped]) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """(commit, file) → [(line number, text)] of lines added in the last `depth` commits."""
    depth = max(1, min(int(depth), MAX_DEPTH))
    args = ["log", "-p", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames", "-U0",
            "--format=commit:%H", f"--max-count={depth}", "--diff-filter=ACMR", "--", *pathspecs]
    proc = subprocess.Popen(_git(args, root), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env())
    timed_out = threading.Event()

    def _stop() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(GIT_TIMEOUT_S, _stop)
    timer.start()
    out: dict[tuple[str, str], list[tuple[int, str]]] = {}
    commit, file, line_no, size, truncated = "", "", 0, 0, False
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            size += len(raw)
            if size > max_bytes:
                truncated = True
                skipped.append(Skipped(str(root), f"git history: over {max_bytes} bytes of diff, rest not scanned"))
                break
            text = raw.decode("utf-8", "replace").rstrip("\n")
            if m := _SHA.match(text):
                commit, file = m.group(1), ""
            elif text.startswith("diff --git "):
                file = ""
            elif text.startswith("+++ "):
                target = text[4:].strip().strip('"')
                file = target[2:] if target.startswith("b/") else ""
            elif m := _HUNK.match(text):
                line_no = int(m.group(1))
            elif text.startswith("+") and file and commit:
                if len(text) <= MAX_LINE_CHARS:
                    out.setdefault((commit, file), []).append((line_no, text[1:]))
                line_no += 1
    finally:
        timer.cancel()
        if truncated:
            proc.kill()
        proc.wait()
    if timed_out.is_set():
        skipped.append(Skipped(str(root), f"git history: git log ran over {GIT_TIMEOUT_S:g}s, rest not scanned"))
    elif not truncated and proc.returncode != 0:
        skipped.append(Skipped(str(root), f"git history: git log failed (exit {proc.returncode})"))
    return out


def find_secrets(added: dict[tuple[str, str], list[tuple[int, str]]]) -> list[HistorySecret]:
    """detect-secrets' default plugins and filters over the added lines, oldest commit first."""
    from detect_secrets.core.scan import _process_line_based_plugins
    from detect_secrets.settings import default_settings

    found: list[HistorySecret] = []
    with default_settings():
        for (commit, file), lines in reversed(list(added.items())):  # git log lists newest first
            for secret in _process_line_based_plugins(lines, filename=file):
                found.append(HistorySecret(commit=commit, file=file, line=secret.line_number, kind=secret.type,
                                           value=secret.secret_value, hashed=secret.secret_hash))
    return found


def scan_git_history(paths: list[str | Path], depth: int, *, max_bytes: int = DEFAULT_MAX_BYTES,
                     baseline: set[tuple[str, str]] | None = None,
                     skipped: list[Skipped] | None = None) -> list[Finding]:
    """Findings for secrets added in the last `depth` commits touching `paths` (one per secret)."""
    skipped = skipped if skipped is not None else []
    findings: list[Finding] = []
    by_root: dict[Path, list[str]] = {}
    for p in paths:
        path = Path(p).resolve()
        root = repo_root(path)
        if root is None:
            skipped.append(Skipped(str(p), "git history: not inside a git work tree"))
            continue
        by_root.setdefault(root, []).append(os.path.relpath(path, root))
    for root, specs in sorted(by_root.items()):
        added = added_lines(root, sorted(set(specs)), depth, max_bytes, skipped)
        first: dict[tuple[str, str], HistorySecret] = {}
        for secret in find_secrets(added):
            first.setdefault((secret.file, secret.hashed), secret)  # the commit that introduced it
        best: dict[tuple[str, str, int], HistorySecret] = {}
        for secret in first.values():
            if baseline and _in_baseline(secret.file, secret.hashed, baseline):
                continue
            key = (secret.commit, secret.file, secret.line)
            if key not in best or best[key].kind in _ENTROPY_TYPES:  # a provider pattern beats entropy
                best[key] = secret
        findings.extend(_finding(root, s) for _, s in sorted(best.items()))
    return findings


def _still_in_tree(root: Path, secret: HistorySecret) -> bool:
    path = root / secret.file
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return False
        return bool(secret.value) and str(secret.value) in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _finding(root: Path, secret: HistorySecret) -> Finding:
    rule = static_rule(RULE_ID, RULE_ID)
    present = _still_in_tree(root, secret)
    state = "still in the current tree" if present else "removed from the tree but still in history; rotate it"
    evidence = [Evidence(kind="source", summary=f"{secret.file}:{secret.line} @ {secret.commit[:12]}",
                         content=f"{secret.kind}: {preview(secret.value)}",
                         meta={"rule": rule.id, "detector": secret.kind, "commit": secret.commit,
                               "still_in_tree": "true" if present else "false"}),
                Evidence(kind="note", summary=f"added in commit {secret.commit[:12]}; {state}")]
    fingerprint = hashlib.sha256("\x1f".join((rule.id, secret.file, secret.commit, secret.kind)).encode())
    return Finding(check_id=rule.id, threat_id=rule.threat, title=f"Secret in git history: {secret.kind}",
                   severity=rule.severity,
                   confidence=Confidence.tentative if secret.kind in _ENTROPY_TYPES else Confidence.firm,
                   cwe=rule.cwe, owasp=list(rule.owasp), location=Location(file=secret.file, line=secret.line),
                   evidence=evidence, remediation=rule.mitigation, fingerprint=fingerprint.hexdigest()[:24])
