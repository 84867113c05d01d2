"""Coverage units: what a run exercised, parsed from the engine's unit labels and stored per run."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bastion.engine.runner import ScanResult

# The engine's `unit_label`: "target", "GET /items", "GET /items [query:q]", each optionally " as alice".
# Input names may hold brackets themselves (`json:items[].sku`), so the input part runs to the last "]".
_UNIT = re.compile(r"^(?P<entry>target|[A-Z]+ [^\s\[]\S*)(?: \[(?P<input>[a-z]+:.*)\])?(?: as (?P<role>[^\]]+))?$")


@dataclass(frozen=True, order=True)
class Unit:
    """One unit a check ran on: entry point ("METHOD /path" or "target"), input ("in:name"), role."""

    check_id: str
    entry: str
    input: str | None = None
    role: str | None = None


def parse_unit(check_id: str, label: str) -> Unit:
    """A unit from its label; a label in an unknown shape is kept whole as the entry point."""
    m = _UNIT.match(label.strip())
    if m is None:
        return Unit(check_id, label.strip() or "target")
    return Unit(check_id, m["entry"], m["input"], m["role"])


def check_threats(result: ScanResult | None = None) -> dict[str, str]:
    """Check id -> threat id: registered DAST checks, static rules, and whatever the run's findings say."""
    from bastion.checks.registry import load_checks
    from bastion.static import static_checks_by_threat
    from bastion.static.rules import STATIC_RULES

    static_checks_by_threat()  # imports the rule modules, which register their rules
    mapping = {cid: spec.threat for cid, spec in load_checks().items()}
    mapping.update({rid: rule.threat for rid, rule in STATIC_RULES.items()})
    if result is not None:
        for f in result.findings:
            mapping.setdefault(f.check_id, f.threat_id)
    return mapping


def units_of_run(result: ScanResult) -> list[Unit]:
    """Every unit of every check the run executed, de-duplicated, in a stable order."""
    return sorted({parse_unit(c.check_id, label) for c in result.checks for label in c.units})


def unit_rows(run_id: int, units: Iterable[Unit], threats: Mapping[str, str]) -> list[dict[str, object]]:
    """Rows for the run_units table."""
    return [{"run_id": run_id, "check_id": u.check_id, "threat_id": threats.get(u.check_id), "entry": u.entry,
             "input": u.input, "role": u.role} for u in units]
