"""The CI gate: exit 1 when a finding reaches the `--fail-on` severity, else 0."""

from __future__ import annotations

from collections.abc import Iterable

from bastion.engine.runner import ScanResult
from bastion.errors import BastionError
from bastion.findings.model import Finding, Severity

# Spellings of "never fail on findings" accepted from the command line.
NEVER = ("none", "never", "off")


def parse_fail_on(fail_on: str | None) -> Severity | None:
    """`"high"` -> Severity.high; None or "none" -> None; anything else is a BastionError."""
    if fail_on is None or fail_on.strip().lower() in NEVER:
        return None
    try:
        return Severity.parse(fail_on.strip())
    except ValueError as exc:
        raise BastionError(f"--fail-on: {exc} (or 'none')") from None


def exit_code(result: ScanResult, fail_on: str | None, findings: Iterable[Finding] | None = None) -> int:
    """0 if no finding is at or above `fail_on` (None: never fail), 1 otherwise.

    `findings` narrows the gate (e.g. to those not baselined or suppressed); default: all of the run's.
    """
    threshold = parse_fail_on(fail_on)
    if threshold is None:
        return 0
    gated = result.findings if findings is None else findings
    return int(any(f.severity.rank >= threshold.rank for f in gated))
