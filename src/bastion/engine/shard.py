"""`--shard i/n`: split a run's planned (check, unit) probes into n deterministic, cost-balanced parts.

Probes are first put into groups that must run in the same process, because their units share state
the engine cannot split: a target-scope check is one unit anyway; the units of one check on one entry
point share per-entry memos (a baseline sent once); a few checks share state across all their units,
a few families across their checks (each check declares it: `@check(shard=...)`). Groups are then
assigned greedily, longest first (LPT), to the least-loaded shard, over a stable order: the same plan
always gives the same split, every probe lands in exactly one shard, and a shard's units keep their
plan index so `bastion report --merge` can put them back in the unsharded order.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bastion.checks.registry import CheckSpec
from bastion.errors import BastionError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_SHARDS = 1000

# Estimated cost of one unit (≈ requests it sends) by check scope, for checks that declare no `cost=`.
# Only the ratios matter: they balance the shards. What must stay together is declared by each check
# (`@check(shard="entry"|"check"|"family")`), so the engine knows no check by name.
SCOPE_UNIT_COST = {"target": 40.0, "entry": 4.0, "input": 6.0}

Unit = TypeVar("Unit", bound=tuple[Any, ...])


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (1-based, as written on the command line)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`"2/3"` -> Shard(2, 3); anything else is a BastionError naming the expected shape."""
        m = _SHARD.match(text or "")
        if m is None:
            raise BastionError(f"--shard {text!r}: expected i/n, e.g. 1/3")
        index, count = int(m[1]), int(m[2])
        if not 1 <= count <= MAX_SHARDS or not 1 <= index <= count:
            raise BastionError(f"--shard {text!r}: need 1 <= i <= n <= {MAX_SHARDS}")
        return cls(index, count)

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class ShardPlan:
    """What one shard runs: per check, the plan indices of its units (the rest run in other shards)."""

    shard: Shard
    # A digest of the whole plan (checks and their unit labels): shards of one run share it.
    plan_key: str
    planned: dict[str, int] = field(default_factory=dict)  # check id -> units in the whole plan
    indices: dict[str, list[int]] = field(default_factory=dict)  # check id -> plan indices run here
    loads: list[float] = field(default_factory=list)  # estimated cost per shard (all shards)

    def run_info(self) -> dict[str, Any]:
        return {"index": self.shard.index, "count": self.shard.count, "plan_key": self.plan_key}


@dataclass(frozen=True)
class _Group:
    key: tuple[str, ...]
    cost: float
    members: tuple[tuple[str, int], ...]  # (check id, unit index)


def unit_cost(spec: CheckSpec) -> float:
    """Estimated cost of one unit of this check."""
    return spec.cost if spec.cost is not None else SCOPE_UNIT_COST.get(spec.scope, 5.0)


def _entry_key(unit: tuple[Any, ...]) -> str:
    ep = unit[0]
    return ep.key if ep is not None else "target"


def _group_key(spec: CheckSpec, unit: tuple[Any, ...]) -> tuple[str, ...]:
    """Units with the same key must run in the same shard."""
    if spec.shard == "family":  # before the scope test: a family may mix target- and entry-scope checks
        return ("family", spec.family)
    if spec.scope == "target" or spec.shard == "check":
        return ("check", spec.id)
    return ("entry", spec.id, _entry_key(unit))


def _groups(plans: Sequence[tuple[CheckSpec, Sequence[tuple[Any, ...]]]]) -> list[_Group]:
    costs: dict[tuple[str, ...], float] = {}
    members: dict[tuple[str, ...], list[tuple[str, int]]] = {}
    for spec, units in plans:
        for i, unit in enumerate(units):
            key = _group_key(spec, unit)
            costs[key] = costs.get(key, 0.0) + unit_cost(spec)
            members.setdefault(key, []).append((spec.id, i))
    return [_Group(k, costs[k], tuple(members[k])) for k in costs]


def plan_key(plans: Sequence[tuple[CheckSpec, Sequence[tuple[Any, ...]]]]) -> str:
    """A digest of the plan: the checks and their units' entry points, inputs and roles, in order."""
    data = [[spec.id, [_unit_text(u) for u in units]] for spec, units in plans]
    return hashlib.sha256(json.dumps(data, separators=(",", ":")).encode()).hexdigest()[:24]


def _unit_text(unit: tuple[Any, ...]) -> str:
    ep, inp = unit[0], unit[1]
    role = unit[2] if len(unit) > 2 else None
    return "|".join([ep.key if ep is not None else "target", f"{inp.location}:{inp.name}" if inp else "",
                     role or ""])


def assign(plans: Sequence[tuple[CheckSpec, Sequence[tuple[Any, ...]]]],
           count: int) -> tuple[dict[tuple[str, int], int], list[float]]:
    """(check id, unit index) -> shard index (1-based), and each shard's estimated load."""
    loads = [0.0] * count
    where: dict[tuple[str, int], int] = {}
    # Longest first; ties by key so the order never depends on dict or set iteration.
    for group in sorted(_groups(plans), key=lambda g: (-g.cost, g.key)):
        target = min(range(count), key=lambda s: (loads[s], s))
        loads[target] += group.cost
        for member in group.members:
            where[member] = target + 1
    return where, loads


def shard_plans(plans: list[tuple[CheckSpec, list[Unit]]],
                shard: Shard) -> tuple[list[tuple[CheckSpec, list[Unit]]], ShardPlan]:
    """This shard's part of the plan (every check kept, possibly with no units) and its record."""
    where, loads = assign(plans, shard.count)
    record = ShardPlan(shard=shard, plan_key=plan_key(plans), loads=[round(x, 1) for x in loads])
    mine: list[tuple[CheckSpec, list[Unit]]] = []
    for spec, units in plans:
        picked = [i for i in range(len(units)) if where[(spec.id, i)] == shard.index]
        record.planned[spec.id] = len(units)
        record.indices[spec.id] = picked
        mine.append((spec, [units[i] for i in picked]))
    return mine, record
