"""`bastion report --merge`: join the findings.json of `--shard i/n` runs into the unsharded run's reports.

A shard's findings.json carries, besides the public run and findings, a `shard` section with what the
other reports need and the public part leaves out: the surface, every check's unit records with their
plan index, the authorization matrix and the coverage plan. Merging checks that the files are shards of
one plan (same plan key, seed, target and shard count, each index once, every planned unit run exactly
once), puts units back in plan order, de-duplicates findings by fingerprint, sums requests and unions
checks — giving a ScanResult that every report renderer treats like the unsharded run's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bastion.engine.context import CheckStats
from bastion.engine.runner import ScanResult
from bastion.engine.units import RunPlanRecord, UnitRecord
from bastion.errors import ConfigError
from bastion.findings.baseline import read_json_file
from bastion.findings.dedup import dedupe
from bastion.findings.model import Finding
from bastion.identity.matrix import AuthzCell
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target

FINDINGS_SCHEMA = "bastion-findings/1"
SHARD_SCHEMA = "bastion-shard/1"


# --- writing: the shard section of a shard's findings.json ---------------------------------------------


def shard_section(result: ScanResult) -> dict[str, Any]:
    """What `report --merge` needs from one shard beyond the public run info and findings."""
    plan = result.shard
    assert plan is not None
    cov = result.coverage_plan
    return {
        "schema": SHARD_SCHEMA, **plan.run_info(), "loads": plan.loads,
        "target": {"kind": result.target.kind, "base_url": result.target.base_url, "spec": result.target.spec,
                   "name": result.target.name},
        "surface": [dataclasses.asdict(ep) for ep in result.surface.entry_points],
        "checks": [{"id": c.check_id, "planned": plan.planned.get(c.check_id, len(c.units)),
                    "indices": plan.indices.get(c.check_id, list(range(len(c.units)))),
                    "units": list(c.units), "records": [dataclasses.asdict(r) for r in c.unit_records],
                    "requests": c.requests, "duration_s": c.duration_s, "errors": list(c.errors)}
                   for c in result.checks],
        "authz_matrix": [dataclasses.asdict(cell) for cell in result.authz_matrix],
        "plan": None if cov is None else {
            "not_run": cov.not_run, "excluded_entries": cov.excluded_entries, "roles": cov.roles,
            "accepted": [a.model_dump(mode="json") for a in cov.accepted],
            "today": cov.today.isoformat() if cov.today else None},
    }


# --- reading --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ShardFile:
    """One shard's findings.json, parsed."""

    path: str
    run: dict[str, Any]
    findings: list[Finding]
    shard: dict[str, Any]

    @property
    def index(self) -> int:
        return int(self.shard["index"])


def _need(cond: bool, message: str, path: str, key: str | None = None) -> None:
    if not cond:
        raise ConfigError(message, file=path, key=key)


def load_shard_file(path: str | Path) -> ShardFile:
    """Parse and validate a shard's findings.json; anything malformed is a ConfigError naming file and key."""
    name = str(path)
    doc = read_json_file(Path(path), "shard findings file")
    _need(isinstance(doc, dict) and doc.get("schema") == FINDINGS_SCHEMA,
          f"not a Bastion findings file (expected schema {FINDINGS_SCHEMA!r})", name)
    run, shard = doc.get("run"), doc.get("shard")
    _need(isinstance(run, dict), "must be an object", name, "run")
    _need(isinstance(shard, dict) and shard.get("schema") == SHARD_SCHEMA,
          "no shard section: this file was not written by `bastion scan --shard i/n --format json`", name, "shard")
    for key, kind in (("index", int), ("count", int), ("plan_key", str), ("checks", list), ("surface", list),
                      ("target", dict), ("authz_matrix", list)):
        _need(isinstance(shard.get(key), kind), f"must be {kind.__name__}", name, f"shard.{key}")
    _need(1 <= shard["index"] <= shard["count"], "index must be between 1 and count", name, "shard.index")
    items = doc.get("findings")
    _need(isinstance(items, list), "must be a list", name, "findings")
    findings = []
    for index, item in enumerate(items):
        try:
            findings.append(Finding.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(first["msg"], file=name,
                              key=f"findings[{index}]." + ".".join(str(p) for p in first["loc"])) from None
    return ShardFile(path=name, run=run, findings=findings, shard=shard)


def _check_set(shards: Sequence[ShardFile]) -> None:
    """The files are the n distinct shards of one plan, for one target and seed."""
    first = shards[0]
    count = int(first.shard["count"])
    for s in shards[1:]:
        for what, mine, theirs in (("plan", s.shard["plan_key"], first.shard["plan_key"]),
                                   ("shard count", s.shard["count"], count),
                                   ("seed", s.run.get("seed"), first.run.get("seed")),
                                   ("target", s.run.get("target"), first.run.get("target"))):
            _need(mine == theirs, f"not a shard of the same run as {first.path}: {what} differs "
                  f"({theirs!r} vs {mine!r}); merge the shards of one `--shard i/n` run with one seed", s.path)
    seen: dict[int, str] = {}
    for s in shards:
        _need(s.index not in seen, f"shard {s.index}/{count} given twice (also {seen.get(s.index)})", s.path)
        seen[s.index] = s.path
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise ConfigError(f"incomplete set of shards: missing {', '.join(f'{i}/{count}' for i in missing)}",
                          file=first.path)


def _merge_checks(shards: Sequence[ShardFile]) -> list[CheckStats]:
    """Per check: units and records back in plan order, requests and durations summed, errors joined."""
    order: list[str] = []
    parts: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for s in shards:
        for item in s.shard["checks"]:
            _need(isinstance(item, dict) and isinstance(item.get("id"), str), "malformed check entry", s.path,
                  "shard.checks")
            if item["id"] not in parts:
                order.append(item["id"])
            parts.setdefault(item["id"], []).append((s.path, item))
    merged = []
    for cid in order:
        slots: dict[int, tuple[str, UnitRecord]] = {}
        planned = int(parts[cid][0][1].get("planned", 0))
        stats = CheckStats(check_id=cid)
        for path, item in parts[cid]:
            indices, units, records = (item.get(k) for k in ("indices", "units", "records"))
            if not (isinstance(indices, list) and isinstance(units, list) and isinstance(records, list)
                    and len(indices) == len(units) == len(records) and int(item.get("planned", -1)) == planned):
                raise ConfigError(f"unit lists of check {cid} do not match its plan", file=path, key="shard.checks")
            for i, label, rec in zip(indices, units, records, strict=True):
                _need(isinstance(i, int) and 0 <= i < planned and i not in slots,
                      f"check {cid}: unit {i} is out of the plan or in two shards", path, "shard.checks")
                slots[i] = (str(label), UnitRecord(**rec))
            stats.requests += int(item.get("requests", 0))
            stats.duration_s += float(item.get("duration_s", 0.0))
            stats.errors += [str(e) for e in item.get("errors", [])]
        _need(len(slots) == planned, f"check {cid}: {planned - len(slots)} planned unit(s) ran in no shard",
              parts[cid][0][0], "shard.checks")
        stats.units = [slots[i][0] for i in range(planned)]
        stats.unit_records = [slots[i][1] for i in range(planned)]
        merged.append(stats)
    return merged


def _surface(data: list[dict[str, Any]]) -> Surface:
    eps = [EntryPoint(**{**ep, "inputs": [Input(**i) for i in ep.get("inputs", [])]}) for ep in data]
    return Surface(entry_points=eps)


def _plan(data: dict[str, Any] | None, shards: Sequence[ShardFile]) -> RunPlanRecord | None:
    if data is None:
        return None
    from datetime import date

    from bastion.model.schema import AcceptedRisk

    not_run: dict[str, str] = {}
    for s in shards:  # a check the budget stopped in any shard did not fully run
        not_run.update((s.shard.get("plan") or {}).get("not_run") or {})
    return RunPlanRecord(not_run=not_run,
                         excluded_entries=list(data.get("excluded_entries") or []),
                         roles=list(data.get("roles") or []),
                         accepted=[AcceptedRisk.model_validate(a) for a in data.get("accepted") or []],
                         today=date.fromisoformat(data["today"]) if data.get("today") else None)


def merge_shards(shards: Sequence[ShardFile]) -> ScanResult:
    """One ScanResult from the complete set of shards of one run."""
    if not shards:
        raise ConfigError("nothing to merge: give the findings.json of every shard")
    shards = sorted(shards, key=lambda s: s.index)
    _check_set(shards)
    first = shards[0]
    try:
        target = Target(**first.shard["target"])
        surface = _surface(first.shard["surface"])
        checks = _merge_checks(shards)
        matrix = [AuthzCell(**cell) for s in shards for cell in s.shard["authz_matrix"]]
        plan = _plan(first.shard.get("plan"), shards)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"malformed shard section: {exc}", file=first.path, key="shard") from None
    events = list(dict.fromkeys(e for s in shards for e in s.run.get("events", [])))
    return ScanResult(
        target=target, surface=surface, seed=int(first.run.get("seed", 0)),
        started_at=min(str(s.run.get("started_at", "")) for s in shards),
        # Shards run side by side (a CI matrix): the run took as long as its slowest shard.
        duration_s=max(float(s.run.get("duration_s", 0.0)) for s in shards),
        requests=sum(int(s.run.get("requests", 0)) for s in shards),
        checks=checks, findings=dedupe(f for s in shards for f in s.findings), events=events,
        authz_matrix=matrix, coverage_plan=plan)


def merge_files(paths: Sequence[str | Path]) -> ScanResult:
    """Load and merge shard files (see merge_shards)."""
    return merge_shards([load_shard_file(p) for p in paths])
