"""What the engine ran, unit by unit, and why some checks or units were not tested (for coverage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

# Reasons a check may give with `ctx.skip(reason)`; free text is allowed too, these are the common ones.
SKIP_NO_PAYLOADS = "no payloads"
SKIP_BUDGET = "budget exhausted"
SKIP_WRITES = "writes not allowed"
SKIP_REASONS = (SKIP_NO_PAYLOADS, SKIP_BUDGET, SKIP_WRITES)


@dataclass
class UnitRecord:
    """One unit a check ran on: where, as whom, how many requests it sent, and any skip reason."""

    method: str | None = None  # None: a target-scope unit
    path: str | None = None
    input: str | None = None  # "location:name" for input-scope units
    role: str | None = None
    requests: int = 0
    findings: int = 0
    skipped: str | None = None  # set by ctx.skip(reason) or by the engine (budget exhausted)
    error: str | None = None  # first line of an exception the check raised here

    @property
    def entry(self) -> str:
        """"METHOD /path", or "target" for a target-scope unit."""
        return f"{self.method} {self.path}" if self.method else "target"

    def as_dict(self) -> dict[str, Any]:
        return {"entry": self.entry, "input": self.input, "role": self.role, "requests": self.requests,
                "findings": self.findings, "skipped": self.skipped, "error": self.error}


@dataclass
class RunPlanRecord:
    """The engine's plan as coverage needs it: checks not run (and why), scope exclusions, roles, exclusions."""

    # check id -> why it did not run: "excluded by --checks", "excluded by exclude_checks", "budget exhausted"
    not_run: dict[str, str] = field(default_factory=dict)
    # Entry points ("METHOD /path") the scope's exclude_paths removed from every check's plan.
    excluded_entries: list[str] = field(default_factory=list)
    # Logged-in roles of the run, in config order.
    roles: list[str] = field(default_factory=list)
    # The threat model's `accepted:` entries (bastion.model.schema.AcceptedRisk) and the day they were judged on.
    accepted: list[Any] = field(default_factory=list)
    today: date | None = None
