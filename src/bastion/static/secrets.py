"""Secret scanning with detect-secrets (used as a library, default plugin set) and its baseline format.

Findings show a redacted preview only: the detector's type, the line, and the first two characters
of the match. The secret, its hash and the code line never reach a Finding. A detect-secrets baseline
(`detect-secrets scan > .secrets.baseline`) lists accepted secrets by file and hash; they are dropped.
Not scanned (yet): git history.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bastion.errors import ConfigError
from bastion.findings.model import Confidence, Evidence, Finding, Location
from bastion.safeyaml import read_limited
from bastion.static.files import Skipped
from bastion.static.rules import static_rule

MAX_BASELINE_BYTES = 20 * 1024 * 1024
# Detectors that only measure entropy: weaker evidence than a provider pattern.
_ENTROPY_TYPES = {"Base64 High Entropy String", "Hex High Entropy String"}


def preview(secret: str | None) -> str:
    """`ghp_abc...` → `gh******`: enough to find it, never enough to use it."""
    return (secret or "")[:2] + "******"


def load_baseline(path: str | Path) -> set[tuple[str, str]]:
    """(file, hashed_secret) pairs accepted in a detect-secrets baseline; a bad file is a ConfigError."""
    raw = read_limited(path, max_bytes=MAX_BASELINE_BYTES)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"not a detect-secrets baseline (invalid JSON: {exc})", file=str(path)) from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise ConfigError("not a detect-secrets baseline (no 'results' mapping)", file=str(path))
    accepted: set[tuple[str, str]] = set()
    for file, entries in results.items():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("hashed_secret"), str):
                accepted.add((str(file), entry["hashed_secret"]))
    return accepted


def _in_baseline(file: str, hashed: str, accepted: set[tuple[str, str]]) -> bool:
    return any(h == hashed and (f == file or file.endswith("/" + f) or f.endswith("/" + file))
               for f, h in accepted)


def _rule_id(secret_type: str) -> str:
    return "static.secret." + re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")


def scan_secrets(files: list[tuple[Path, str]], skipped: list[Skipped],
                 baseline: set[tuple[str, str]] | None = None) -> list[Finding]:
    """Findings for the secrets detect-secrets sees in the given (path, display name) files."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    collection = SecretsCollection()
    display = {str(path): name for path, name in files}
    with default_settings():
        for path, name in files:
            try:
                collection.scan_file(str(path))
            except Exception as exc:  # a plugin's bug on one hostile file must not end the scan
                skipped.append(Skipped(name, f"secret scan failed: {type(exc).__name__}"))
    best: dict[tuple[str, int], tuple[str, str | None]] = {}
    for filename, secret in collection:
        name = display.get(filename, filename)
        if baseline and _in_baseline(name, secret.secret_hash, baseline):
            continue
        key = (name, secret.line_number)
        if key not in best or best[key][0] in _ENTROPY_TYPES:  # a provider pattern beats entropy
            best[key] = (secret.type, secret.secret_value)
    return [_finding(name, line, kind, value) for (name, line), (kind, value) in sorted(best.items())]


def _finding(file: str, line: int, secret_type: str, value: str | None) -> Finding:
    rule = static_rule(_rule_id(secret_type), "static.hardcoded-secret", title=f"Secret in source: {secret_type}")
    entropy_only = secret_type in _ENTROPY_TYPES
    evidence = Evidence(kind="source", summary=f"{file}:{line}", content=f"{secret_type}: {preview(value)}",
                        meta={"rule": rule.id, "detector": secret_type})
    return Finding(check_id=rule.id, threat_id=rule.threat, title=rule.title,
                   severity=rule.severity, confidence=Confidence.tentative if entropy_only else Confidence.firm,
                   cwe=rule.cwe, owasp=list(rule.owasp), location=Location(file=file, line=line),
                   evidence=[evidence], remediation=rule.mitigation)
