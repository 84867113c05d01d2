"""Threat coverage as data: per threat × entry point × role, tested / finding / not tested (with why)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from bastion.errors import ConfigError

SCHEMA = "bastion-coverage/1"

FINDING = "finding"
TESTED = "tested"
NOT_TESTED = "not tested"
STATUSES = (FINDING, TESTED, NOT_TESTED)

# Why something was not tested. Checks may also give their own text with ctx.skip(reason).
NOT_APPLICABLE = "not applicable"
EXCLUDED = "excluded"
NO_CHECK = "no check"
STATIC_ONLY = "static only"
CHECK_ERROR = "check error"
USER_TEST_SKIPPED = "user test skipped"
# When a threat is not tested for several reasons, the summary names the first in this order.
REASON_PRIORITY = (EXCLUDED, "budget exhausted", "writes not allowed", "no payloads", CHECK_ERROR,
                   USER_TEST_SKIPPED, STATIC_ONLY, NOT_APPLICABLE, NO_CHECK)
_RANK = {FINDING: 0, TESTED: 1, NOT_TESTED: 2}

# Pseudo entry points for rows that are not about one route.
ALL_ENTRIES = "(all)"
USER_TEST = "(user test)"
ANY_ROLE = "any"


@dataclass(frozen=True)
class CoverageRow:
    """One threat × entry point × role cell."""

    entry: str  # "GET /search", "target", a file, or a pseudo entry such as "(all)"
    role: str  # a role name, or "any" when the check picks its roles itself
    status: str
    reason: str | None = None  # only for "not tested"
    detail: str = ""
    checks: tuple[str, ...] = ()
    findings: int = 0
    notes: tuple[str, ...] = ()

    def label(self) -> str:
        """Status with its reason, e.g. "not tested: excluded" or "tested (user test: t.py::test_a)"."""
        if self.status == NOT_TESTED and self.reason:
            return f"{NOT_TESTED}: {self.reason}"
        if self.entry == USER_TEST and self.detail:
            return f"{self.status} ({self.detail})"
        return self.status

    def as_dict(self) -> dict[str, Any]:
        return {"entry": self.entry, "role": self.role, "status": self.status, "reason": self.reason,
                "detail": self.detail, "checks": list(self.checks), "findings": self.findings,
                "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CoverageRow:
        return cls(entry=str(data["entry"]), role=str(data["role"]), status=_status(data["status"]),
                   reason=_opt_str(data.get("reason")), detail=str(data.get("detail") or ""),
                   checks=tuple(str(c) for c in data.get("checks") or ()), findings=int(data.get("findings") or 0),
                   notes=tuple(str(n) for n in data.get("notes") or ()))


@dataclass
class ThreatCoverage:
    """A catalog threat: the checks implementing it, its rows, and a summary status."""

    id: str
    title: str
    severity: str
    checks: list[str] = field(default_factory=list)
    rows: list[CoverageRow] = field(default_factory=list)

    @property
    def status(self) -> str:
        return min((r.status for r in self.rows), key=_RANK.__getitem__, default=NOT_TESTED)

    @property
    def reason(self) -> str | None:
        """For a threat not tested anywhere: the most telling reason among its rows."""
        if self.status != NOT_TESTED:
            return None
        reasons = [r.reason for r in self.rows if r.reason]
        for known in REASON_PRIORITY:
            if known in reasons:
                return known
        return reasons[0] if reasons else NO_CHECK

    def entry_counts(self) -> dict[str, int]:
        """Entry points by their best status across roles (pseudo entries such as "(all)" left out)."""
        best: dict[str, str] = {}
        for r in self.rows:
            if r.entry.startswith("("):
                continue
            if r.entry not in best or _RANK[r.status] < _RANK[best[r.entry]]:
                best[r.entry] = r.status
        counts = Counter(best.values())
        return {s: counts.get(s, 0) for s in STATUSES}

    def roles(self) -> list[str]:
        """Roles the threat was exercised as (tested or finding)."""
        return sorted({r.role for r in self.rows if r.status != NOT_TESTED})

    def summary_label(self) -> str:
        return f"{NOT_TESTED}: {self.reason}" if self.status == NOT_TESTED else self.status

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "severity": self.severity, "status": self.status,
                "reason": self.reason, "checks": list(self.checks), "entry_points": self.entry_counts(),
                "roles": self.roles(), "rows": [r.as_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThreatCoverage:
        return cls(id=str(data["id"]), title=str(data.get("title") or data["id"]),
                   severity=str(data.get("severity") or ""), checks=[str(c) for c in data.get("checks") or ()],
                   rows=[CoverageRow.from_dict(r) for r in data.get("rows") or ()])


@dataclass
class Coverage:
    """Every catalog threat with a status; warnings (e.g. unknown threat ids in user tests)."""

    threats: list[ThreatCoverage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def get(self, threat_id: str) -> ThreatCoverage | None:
        return next((t for t in self.threats if t.id == threat_id), None)

    def counts(self) -> dict[str, int]:
        """Threats by summary status."""
        counts = Counter(t.status for t in self.threats)
        return {s: counts.get(s, 0) for s in STATUSES}

    def reason_counts(self) -> dict[str, int]:
        """Not-tested threats by reason, most common first."""
        counts = Counter(t.reason for t in self.threats if t.status == NOT_TESTED and t.reason)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def summary_line(self) -> str:
        """One line for consoles: threats by status, not-tested ones by reason."""
        c = self.counts()
        reasons = ", ".join(f"{r} {n}" for r, n in self.reason_counts().items())
        return (f"Threat coverage: {len(self.threats)} threats: {c[FINDING]} with findings, {c[TESTED]} tested, "
                f"{c[NOT_TESTED]} not tested" + (f" ({reasons})" if reasons else ""))

    def as_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "summary": {"threats": len(self.threats), **self.counts()},
                "threats": [t.as_dict() for t in self.threats], "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "coverage") -> Coverage:
        """Read the `coverage` section of a findings.json; malformed data is a ConfigError naming `source`."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ConfigError(f"expected a coverage section with schema {SCHEMA!r}", file=source, key="coverage")
        try:
            return cls(threats=[ThreatCoverage.from_dict(t) for t in data.get("threats") or ()],
                       warnings=[str(w) for w in data.get("warnings") or ()])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"malformed coverage section: {exc}", file=source, key="coverage") from None


def best_row(a: CoverageRow, b: CoverageRow) -> CoverageRow:
    """Two checks' verdicts on one cell: the stronger status wins, the checks and findings add up."""
    first, second = (a, b) if _RANK[a.status] <= _RANK[b.status] else (b, a)
    if first.status == NOT_TESTED and second.status == NOT_TESTED:
        order = {r: i for i, r in enumerate(REASON_PRIORITY)}
        if order.get(second.reason or "", 99) < order.get(first.reason or "", 99):
            first, second = second, first
    detail = "; ".join(d for d in dict.fromkeys((first.detail, second.detail)) if d)
    return replace(first, checks=tuple(dict.fromkeys((*first.checks, *second.checks))),
                   findings=first.findings + second.findings, detail=detail,
                   notes=tuple(dict.fromkeys((*first.notes, *second.notes))))


def sort_rows(rows: list[CoverageRow]) -> list[CoverageRow]:
    """Findings first, then tested, then the rest; within each, real entry points before pseudo ones."""
    return sorted(rows, key=lambda r: (_RANK[r.status], r.entry.startswith("("), r.entry, r.role, r.detail))


def _status(value: Any) -> str:
    if value not in STATUSES:
        raise ValueError(f"unknown status {value!r}")
    return str(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
