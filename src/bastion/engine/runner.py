"""The engine: plans checks × units (target / entry point / input) and runs them within budgets."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx

from bastion import __version__
from bastion.checks.registry import CheckSpec, load_checks, select_checks
from bastion.engine.context import CheckContext, CheckStats
from bastion.engine.units import SKIP_BUDGET, RunPlanRecord, UnitRecord
from bastion.engine.writes import WritePolicy
from bastion.errors import BudgetExhausted
from bastion.findings.dedup import dedupe
from bastion.findings.model import Finding
from bastion.findings.redact import Redactor
from bastion.identity.matrix import AuthzCell
from bastion.identity.session import RoleSession
from bastion.payloads import load_payloads
from bastion.payloads.canary import seeded_rng
from bastion.sensors import SensorSession, app_roots, correlate, egress_allowlist, sensor_session
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.app_console import muted_app_console_async
from bastion.target.budget import Budget, Limits
from bastion.target.client import ProbeClient
from bastion.target.scope import Scope
from bastion.target.target import Target


@dataclass
class ScanOptions:
    checks: list[str] | None = None
    exclude_checks: list[str] = field(default_factory=list)
    seed: int = 0
    limits: Limits = field(default_factory=Limits)
    secrets: list[str] = field(default_factory=list)  # the run's credentials, to redact
    scope_hosts: list[str] = field(default_factory=list)
    exclude_paths: list[str] = field(default_factory=list)
    # Logged-in roles (name -> session), in config order; checks act as them via ctx.send(as_role=).
    roles: dict[str, RoleSession] = field(default_factory=dict)
    # The declared access policy ("METHOD /path" -> allowed roles), for the authorization checks.
    access: dict[str, list[str]] = field(default_factory=dict)
    # Grey-box sensors around in-process targets (ignored for URL targets).
    sensors: bool = True
    # Where state-changing probes may go; None = the "auto" default for the target (see engine/writes.py).
    writes: WritePolicy | None = None
    # The configured roles (name -> RoleConfig: login path, fields...), for checks that drive login flows.
    role_configs: dict[str, Any] = field(default_factory=dict)
    # The threat model's `data_classes` (class -> field names), for the data-exposure check.
    data_classes: dict[str, list[str]] = field(default_factory=dict)
    # Examples per entry point for the fuzz checks (`--fuzz-budget`; 0 disables fuzzing).
    fuzz_budget: int = 24
    # The threat model's `accepted:` entries (AcceptedRisk), the file they came from and the day to judge
    # their expiry on (None = today): an expired one becomes a `model.expired-exclusion` finding.
    accepted: list[Any] = field(default_factory=list)
    config_file: str | None = None
    today: date | None = None
    # `--shard i/n`: run only this shard's part of the plan (bastion.engine.shard.Shard); None = all of it.
    shard: Any = None
    # The parsed threat model (BastionConfig), handed to checks as ctx.config; None without one.
    config: Any = None


@dataclass
class ScanResult:
    target: Target
    surface: Surface
    seed: int
    started_at: str
    duration_s: float
    requests: int
    checks: list[CheckStats]
    findings: list[Finding]
    events: list[str] = field(default_factory=list)
    # Hand-written pytest tests that exercised a threat (filled by the pytest plugin).
    user_tests: dict[str, list[str]] = field(default_factory=dict)
    # Role × entry-point authorization outcomes (filled by the authz checks).
    authz_matrix: list[AuthzCell] = field(default_factory=list)
    # What the engine planned and skipped, for the threat-coverage report (None for hand-built results).
    coverage_plan: RunPlanRecord | None = None
    # For a `--shard i/n` run: which part of the plan ran (bastion.engine.shard.ShardPlan).
    shard: Any = None

    def run_info(self) -> dict[str, Any]:
        return {
            "tool": "bastion", "version": __version__, "seed": self.seed, "target": self.target.spec,
            "started_at": self.started_at, "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "checks": [{"id": c.check_id, "duration_s": round(c.duration_s, 3), "requests": c.requests,
                        "units": len(c.units), **({"errors": c.errors} if c.errors else {})}
                       for c in self.checks],
            **({"events": self.events} if self.events else {}),
            **({"shard": self.shard.run_info()} if self.shard is not None else {}),
        }


Progress = Callable[[str, dict[str, Any]], None]


def plan_units(spec: CheckSpec, surface: Surface,
               scope: Scope) -> list[tuple[EntryPoint | None, Input | None]]:
    """The units a check runs on, in a stable order."""
    eps = [ep for ep in surface.sorted() if not scope.path_excluded(ep.path)]
    if spec.scope == "target":
        return [(None, None)]
    if spec.methods:
        eps = [ep for ep in eps if ep.method in spec.methods]
    if spec.scope == "entry":
        return [(ep, None) for ep in eps]
    units: list[tuple[EntryPoint | None, Input | None]] = []
    for ep in eps:
        for inp in sorted(ep.inputs, key=lambda i: (i.location, i.name)):
            if not spec.locations or inp.location in spec.locations:
                units.append((ep, inp))
    return units


def unit_label(ep: EntryPoint | None, inp: Input | None, role: str | None = None) -> str:
    as_role = f" as {role}" if role else ""
    if ep is None:
        return "target" + as_role
    return ep.key + (f" [{inp.location}:{inp.name}]" if inp else "") + as_role


def _with_roles(spec: CheckSpec, units: list[tuple[EntryPoint | None, Input | None]],
                roles: dict[str, RoleSession]) -> list[tuple[EntryPoint | None, Input | None, str | None]]:
    """Units as anonymous (role None), or once per logged-in role for checks declared `roles=True`."""
    if not spec.roles:
        return [(ep, inp, None) for ep, inp in units]
    return [(ep, inp, role) for ep, inp in units for role in roles]


async def run_scan_async(target: Target, surface: Surface, options: ScanOptions | None = None,
                         progress: Progress | None = None) -> ScanResult:
    options = options or ScanOptions()
    checks = [c for c in select_checks(options.checks)
              if not any(c.id == x or c.id.startswith(x.rstrip(".") + ".") for x in options.exclude_checks)]
    scope = Scope.for_base_url(target.base_url, [*target.scope_hosts, *options.scope_hosts],
                               options.exclude_paths)
    budget = Budget(options.limits)
    writes = options.writes or WritePolicy.resolve("auto", in_process=target.in_process)
    payloads = load_payloads()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    all_stats: list[CheckStats] = []
    raw: list[Finding] = []
    events: list[str] = []
    plans = [(spec, _with_roles(spec, plan_units(spec, surface, scope), options.roles)) for spec in checks]
    shard_plan = None
    if options.shard is not None:
        from bastion.engine.shard import shard_plans

        plans, shard_plan = shard_plans(plans, options.shard)
    authz_matrix: list[AuthzCell] = []
    if progress:
        progress("start", {"checks": len(plans), "units": sum(len(u) for _, u in plans)})
    sensors = _sensor_session(target, [*target.scope_hosts, *options.scope_hosts], options)
    # An in-process app's log lines go to the log sensor, not over Bastion's console (target/app_console.py).
    async with _sensing(sensors), muted_app_console_async(target.in_process), target.running():
        async with ProbeClient(target, scope, options.limits, budget) as client:
            for spec, units in plans:
                stats = CheckStats(spec.id)
                all_stats.append(stats)
                memo: dict[str, Any] = {}
                c0 = time.perf_counter()
                unit_sem = asyncio.Semaphore(max(1, options.limits.concurrency))

                async def run_unit(ep: EntryPoint | None, inp: Input | None, role: str | None,
                                   record: UnitRecord, spec: CheckSpec = spec,
                                   stats: CheckStats = stats, memo: dict[str, Any] = memo,
                                   unit_sem: asyncio.Semaphore = unit_sem) -> list[Finding]:
                    label = unit_label(ep, inp, role)
                    ctx = CheckContext(spec=spec, client=client, surface=surface, payloads=payloads,
                                       rng=seeded_rng(options.seed, spec.id, label), stats=stats,
                                       ep=ep, inp=inp, memo=memo, role=role, roles=options.roles,
                                       authz_matrix=authz_matrix, sensors=sensors,
                                       access=options.access, writes=writes,
                                       role_configs=options.role_configs, unit=record,
                                       data_classes=options.data_classes,
                                       fuzz_budget=options.fuzz_budget, config=options.config)
                    out: list[Finding] = []
                    async with unit_sem:
                        try:
                            async for finding in spec.func(ctx):
                                out.append(finding)
                        except BudgetExhausted:
                            # keep what this unit found before the budget ran out; the loop stops
                            record.skipped = SKIP_BUDGET
                        except Exception as exc:
                            tb = traceback.format_exc(limit=-3)
                            stats.errors.append(f"{label}: {type(exc).__name__}: {exc}\n{tb}")
                            record.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    record.findings = len(out)
                    return out

                stats.units = [unit_label(ep, inp, role) for ep, inp, role in units]
                stats.unit_records = [_unit_record(ep, inp, role) for ep, inp, role in units]
                if budget.exhausted:
                    break
                results = await asyncio.gather(*(run_unit(ep, inp, role, record) for (ep, inp, role), record
                                                 in zip(units, stats.unit_records, strict=True)),
                                               return_exceptions=True)
                for res in results:
                    if isinstance(res, BudgetExhausted):
                        continue
                    if isinstance(res, BaseException):
                        raise res
                    raw.extend(res)
                stats.duration_s = time.perf_counter() - c0
                if progress:
                    progress("check", {"id": spec.id, "requests": budget.requests, "findings": len(raw)})
                if budget.exhausted:
                    events.append(f"scan stopped early: {budget.exhausted}")
                    break
    if sensors is not None:
        raw = correlate(raw, sensors.events)
        if sensors.dropped:
            events.append(f"sensors: {sensors.dropped} events dropped past the cap of {sensors.max_events}")
    raw.extend(_expired_exclusions(options, raw))
    role_secrets = [v for session in options.roles.values() for v in session.secret_values()]
    redactor = Redactor([*options.secrets, *role_secrets])
    # The reproduction is built from the redacted proof: secrets never reach the generated code.
    findings = dedupe(redactor.redact_with_reproduction(f, target) for f in raw)
    return ScanResult(target=target, surface=surface, seed=options.seed, started_at=started_at,
                      duration_s=time.perf_counter() - t0, requests=budget.requests, checks=all_stats,
                      findings=findings, events=events, authz_matrix=authz_matrix,
                      coverage_plan=_plan_record(options, surface, scope, checks, all_stats, budget),
                      shard=shard_plan)


def _unit_record(ep: EntryPoint | None, inp: Input | None, role: str | None) -> UnitRecord:
    return UnitRecord(method=ep.method if ep else None, path=ep.path if ep else None,
                      input=f"{inp.location}:{inp.name}" if inp else None, role=role)


def _plan_record(options: ScanOptions, surface: Surface, scope: Scope, checks: list[CheckSpec],
                 all_stats: list[CheckStats], budget: Budget) -> RunPlanRecord:
    """Which checks did not run and why, which entry points the scope excluded, the roles and exclusions."""
    not_run: dict[str, str] = {}
    chosen = {c.id for c in select_checks(options.checks)}
    for cid in load_checks():
        if cid not in chosen:
            not_run[cid] = "excluded: not selected by --checks / checks.include"
        elif any(cid == x or cid.startswith(x.rstrip(".") + ".") for x in options.exclude_checks):
            not_run[cid] = "excluded by --exclude-checks / checks.exclude"
    # A check whose stats exist but whose units never started: the budget ran out before it.
    ran = {s.check_id for s in all_stats if any(r.requests or r.findings or r.skipped or r.error
                                                 for r in s.unit_records) or s.duration_s}
    if budget.exhausted:
        for spec in checks:
            if spec.id not in ran:
                not_run[spec.id] = SKIP_BUDGET
    excluded = [ep.key for ep in surface.sorted() if scope.path_excluded(ep.path)]
    return RunPlanRecord(not_run=not_run, excluded_entries=excluded, roles=list(options.roles),
                         accepted=list(options.accepted), today=options.today)


def _expired_exclusions(options: ScanOptions, findings: list[Finding]) -> list[Finding]:
    """A finding per `accepted:` entry past its `until` date (scans with a threat model only)."""
    if not options.accepted:
        return []
    from bastion.coverage.expired import expired_exclusion_findings

    return expired_exclusion_findings(options.accepted, options.today or date.today(), findings,
                                      config_file=options.config_file)


def _sensor_session(target: Target, scope_hosts: list[str], options: ScanOptions) -> SensorSession | None:
    """A sensor session for in-process targets: app code by its package, egress limited to the scope."""
    if not options.sensors or not target.in_process:
        return None
    host = httpx.URL(target.base_url).host
    return SensorSession(app_roots(target.app, target.spec), allowed_hosts=egress_allowlist([host, *scope_hosts]))


@asynccontextmanager
async def _sensing(sensors: SensorSession | None) -> AsyncIterator[None]:
    """Activate the sensor session (if any) for this task and everything it starts."""
    if sensors is None:
        yield
        return
    with sensor_session(sensors):
        yield


def run_scan(target: Target, surface: Surface, options: ScanOptions | None = None,
             progress: Progress | None = None) -> ScanResult:
    return asyncio.run(run_scan_async(target, surface, options, progress))
