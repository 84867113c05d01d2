"""`--shard i/n`: a deterministic partition of the plan, cost-balanced, with state-sharing units kept together."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion.checks.registry import select_checks
from bastion.cli import cli
from bastion.engine.runner import plan_units
from bastion.engine.shard import Shard, _groups, assign, shard_plans
from bastion.errors import BastionError
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.scope import Scope


def _surface(n_entries: int = 12) -> Surface:
    """A third-party-shaped surface: reads with query inputs, writes with JSON bodies, path parameters."""
    eps = []
    for i in range(n_entries):
        eps.append(EntryPoint("GET", f"/api/things{i}", inputs=[Input("query", "q"), Input("query", "page")]))
        eps.append(EntryPoint("POST", f"/api/things{i}", inputs=[Input("json", "name"), Input("json", "note")]))
        eps.append(EntryPoint("GET", f"/api/things{i}/{{id}}", inputs=[Input("path", "id")]))
    return Surface(entry_points=eps)


def _plans(n_entries: int = 12) -> list:
    scope = Scope.for_base_url("http://127.0.0.1:8000", [], [])
    surface = _surface(n_entries)
    return [(spec, [(ep, inp, None) for ep, inp in plan_units(spec, surface, scope)])
            for spec in select_checks(None)]


@pytest.mark.parametrize("text,expected", [("1/1", Shard(1, 1)), ("2/3", Shard(2, 3)), (" 3 / 3 ", Shard(3, 3))])
def test_parse(text: str, expected: Shard) -> None:
    assert Shard.parse(text) == expected
    assert expected.label == f"{expected.index}/{expected.count}"


@pytest.mark.parametrize("text", ["", "3", "0/2", "3/2", "1/0", "a/b", "1/2/3", "-1/2", "1/100000"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(BastionError, match="--shard"):
        Shard.parse(text)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_every_probe_in_exactly_one_shard(count: int) -> None:
    plans = _plans()
    seen: Counter[tuple[str, int]] = Counter()
    for index in range(1, count + 1):
        mine, record = shard_plans(plans, Shard(index, count))
        assert [spec.id for spec, _ in mine] == [spec.id for spec, _ in plans]  # every check listed
        for spec, units in plans:
            assert record.planned[spec.id] == len(units)
            assert record.indices[spec.id] == sorted(record.indices[spec.id])  # plan order kept
            seen.update((spec.id, i) for i in record.indices[spec.id])
    expected = {(spec.id, i) for spec, units in plans for i in range(len(units))}
    assert set(seen) == expected and set(seen.values()) == {1}


def test_split_is_deterministic_and_shared_plan_key() -> None:
    first = [shard_plans(_plans(), Shard(i, 3))[1] for i in (1, 2, 3)]
    again = [shard_plans(_plans(), Shard(i, 3))[1] for i in (1, 2, 3)]
    assert [r.indices for r in first] == [r.indices for r in again]
    assert len({r.plan_key for r in first}) == 1
    assert shard_plans(_plans(5), Shard(1, 3))[1].plan_key != first[0].plan_key


def test_state_sharing_units_stay_together() -> None:
    plans = _plans()
    where, _ = assign(plans, 4)
    for spec, units in plans:
        family = spec.family
        shards = {where[(spec.id, i)] for i in range(len(units))}
        if spec.scope == "target" or spec.shard == "check":
            assert len(shards) <= 1, spec.id
        by_entry: dict[str, set[int]] = {}
        for i, unit in enumerate(units):
            by_entry.setdefault(unit[0].key if unit[0] else "target", set()).add(where[(spec.id, i)])
        assert all(len(s) == 1 for s in by_entry.values()), spec.id  # one entry point's units share memos
        if spec.shard == "family":
            assert {where[(s.id, i)] for s, u in plans if s.id.startswith(family + ".")
                    for i in range(len(u))} == shards
    # Input-scope checks are really split (the point of sharding).
    injection = next(spec for spec, _ in plans if spec.id == "injection.xss-reflected")
    units = dict(plans)[injection]
    assert len({where[(injection.id, i)] for i in range(len(units))}) == 4


def test_balanced_by_cost_lpt_bound() -> None:
    plans = _plans(20)
    for count in (2, 3, 4):
        _, loads = assign(plans, count)
        biggest = max(g.cost for g in _groups(plans))
        # Greedy LPT: no shard exceeds another by more than the largest group it could not split.
        assert max(loads) - min(loads) <= biggest
        assert sum(loads) == pytest.approx(sum(g.cost for g in _groups(plans)))


def test_cli_rejects_a_bad_shard() -> None:
    res = CliRunner().invoke(cli, ["scan", "--demo", "--shard", "3/2", "--no-history", "-q"])
    assert res.exit_code == 2
    assert "--shard '3/2'" in res.output


def test_grouping_is_declared_by_the_checks_not_known_by_the_engine() -> None:
    from bastion.checks.registry import load_checks

    checks = load_checks()
    assert checks["authz.bola"].shard == "check" and checks["fuzz.contract"].shard == "family"
    assert checks["injection.sql"].shard == "entry" and checks["injection.sql"].cost is not None
    source = (Path(__file__).parents[2] / "src" / "bastion" / "engine" / "shard.py").read_text()
    assert not [cid for cid in checks if f'"{cid}"' in source]
