"""bandit, used as a library (BanditManager), with its issues mapped onto Bastion Findings.

Severity × confidence mapping: bandit's severity gives the Finding severity (HIGH→high,
MEDIUM→medium, LOW→low, UNDEFINED→info), lowered one step when bandit's confidence is LOW;
confidence HIGH→firm, MEDIUM/LOW→tentative (bandit matches patterns, it proves nothing).
A bandit issue on a line where one of Bastion's own rules reports the same flaw is dropped (the
Bastion finding carries taint and route information bandit has not).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bastion.findings.model import Confidence, Finding, Severity
from bastion.static.files import Skipped
from bastion.static.rules import static_finding, static_rule

_SEVERITY = {"HIGH": Severity.high, "MEDIUM": Severity.medium, "LOW": Severity.low}
_LOWER = {Severity.critical: Severity.high, Severity.high: Severity.medium, Severity.medium: Severity.low,
          Severity.low: Severity.info, Severity.info: Severity.info}
# bandit tests whose flaw is a catalog threat Bastion also tests at runtime.
_THREATS = {"B608": "injection.sql", "B602": "injection.command", "B605": "injection.command",
            "B604": "injection.command", "B609": "injection.command", "B307": "injection.code",
            "B102": "injection.code", "B301": "static.insecure-deserialization",
            "B302": "static.insecure-deserialization", "B506": "static.insecure-deserialization",
            "B501": "static.tls-verify-disabled", "B323": "static.tls-verify-disabled",
            "B201": "config.debug-exposed", "B105": "static.hardcoded-secret-key",
            "B106": "static.hardcoded-secret-key", "B324": "static.weak-password-hash",
            "B305": "static.weak-cipher", "B304": "static.weak-cipher",
            "B701": "static.template-unescaped", "B702": "static.template-unescaped",
            "B703": "injection.xss-reflected", "B704": "injection.xss-reflected"}
# bandit tests that one of Bastion's rules covers better, by the Bastion rule id.
SUPERSEDED_BY = {
    "B608": "static.sql-string-building", "B602": "static.command-injection",
    "B605": "static.command-injection", "B307": "static.eval-request-data", "B102": "static.eval-request-data",
    "B506": "static.yaml-unsafe-load", "B301": "static.pickle-loads", "B403": "static.pickle-loads",
    "B501": "static.tls-verify-disabled", "B201": "static.debug-enabled", "B105": "static.hardcoded-secret-key",
    "B106": "static.hardcoded-secret-key", "B324": "static.weak-password-hash", "B303": "static.weak-password-hash",
    "B305": "static.weak-cipher", "B311": "static.insecure-random", "B704": "static.markup-request-data",
    "B703": "static.markup-request-data",
}


def run_bandit(files: list[tuple[Path, str]], skipped: list[Skipped]) -> list[Finding]:
    """Run every bandit test on the given (path, display name) Python files; never raises on bad input."""
    if not files:
        return []
    from bandit.core import config as bandit_config
    from bandit.core import manager as bandit_manager

    # bandit logs every file it cannot parse, and stevedore every optional formatter it cannot load.
    quiet = [logging.getLogger(name) for name in ("bandit", "stevedore.extension")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    try:
        return _run(files, skipped, bandit_config, bandit_manager)
    finally:
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)


def _run(files: list[tuple[Path, str]], skipped: list[Skipped], bandit_config: Any,
         bandit_manager: Any) -> list[Finding]:
    mgr = bandit_manager.BanditManager(bandit_config.BanditConfig(), "file", quiet=True)
    display = {str(path): name for path, name in files}
    mgr.files_list = sorted(display)
    try:
        mgr.run_tests()
    except Exception as exc:  # bandit's own bug on a hostile file must not end the scan
        skipped.append(Skipped("bandit", f"bandit failed: {type(exc).__name__}: {exc}"))
        return []
    for fname, reason in mgr.skipped:
        skipped.append(Skipped(display.get(fname, fname), f"bandit: {reason}"))
    out: list[Finding] = []
    for issue in mgr.get_issue_list():
        out.append(_finding(issue, display.get(issue.fname, issue.fname)))
    return out


def _finding(issue: object, file: str) -> Finding:
    test_id = str(getattr(issue, "test_id", "B000"))
    rule = static_rule(f"static.bandit.{test_id}", _THREATS.get(test_id, "static.bandit"),
                       title=f"bandit {test_id}: {getattr(issue, 'test', '')}".rstrip(": "))
    severity = _SEVERITY.get(str(getattr(issue, "severity", "")), Severity.info)
    bandit_confidence = str(getattr(issue, "confidence", ""))
    if bandit_confidence == "LOW":
        severity = _LOWER[severity]
    cwe_obj = getattr(issue, "cwe", None)
    cwe = getattr(cwe_obj, "id", None) or None
    line = int(getattr(issue, "lineno", 0) or 0)
    code = _code_line(getattr(issue, "fname", ""), line)
    return static_finding(rule, file=file, line=line, code_line=code, detail=str(getattr(issue, "text", "")),
                          confidence=Confidence.firm if bandit_confidence == "HIGH" else Confidence.tentative,
                          severity=severity, cwe=int(cwe) if cwe else rule.cwe,
                          meta={"rule": rule.id, "bandit_test": test_id,
                                "bandit_severity": str(getattr(issue, "severity", "")),
                                "bandit_confidence": bandit_confidence})


def _code_line(fname: str, line: int) -> str:
    """The issue's line, re-read from the (already size-checked) file."""
    try:
        with open(fname, encoding="utf-8", errors="replace") as fh:
            for number, text in enumerate(fh, start=1):
                if number == line:
                    return text
    except OSError:
        return ""
    return ""


def drop_superseded(bandit: list[Finding], own: list[Finding]) -> list[Finding]:
    """bandit findings minus those on a line where the Bastion rule that supersedes them fired."""
    covered = {(f.check_id, f.location.file, f.location.line) for f in own}
    kept = []
    for f in bandit:
        test_id = f.check_id.rsplit(".", 1)[-1]
        bastion_rule = SUPERSEDED_BY.get(test_id)
        if bastion_rule and (bastion_rule, f.location.file, f.location.line) in covered:
            continue
        kept.append(f)
    return kept
