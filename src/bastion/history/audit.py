"""Suite audit: what the test suite no longer exercises, what flips without a change, what is about to expire."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from bastion.errors import ConfigError
from bastion.findings.baseline import Baseline, read_json_file
from bastion.history.schema import findings, run_checks, run_findings, runs
from bastion.model.schema import AcceptedRisk

AUDIT_SCHEMA = "bastion-audit/1"
DEFAULT_LAST = 10
EXPIRY_WINDOW_DAYS = 14
# Outcomes of a hand-written test that count as exercising its threats.
RAN_OUTCOMES = frozenset({"passed", "failed", "error", "xfailed", "xpassed"})


@dataclass(frozen=True)
class UserTest:
    """A hand-written pytest test marked with threat ids (from the plugin's coverage JSON)."""

    nodeid: str
    threats: tuple[str, ...]
    outcome: str


@dataclass(frozen=True)
class AuditRun:
    id: int
    started_at: str
    target: str
    config_hash: str | None
    git_commit: str | None


@dataclass
class AuditInput:
    """Everything the audit reads: the window of runs and what each did, plus the suite's own metadata."""

    runs: list[AuditRun]
    check_runs: list[tuple[int, str, int, int]]  # (run id, check id, units, errors)
    run_findings: list[tuple[int, str, str]]  # (run id, check id, fingerprint)
    checks: Mapping[str, str]  # registered DAST check id -> threat id
    static_threats: frozenset[str]  # threats some static rule covers
    catalog: Mapping[str, Any]  # threat id -> Threat
    accepted: Sequence[AcceptedRisk] = ()
    baseline: Baseline | None = None
    tests: Sequence[UserTest] = ()


def load_user_tests(path: str | Path) -> list[UserTest]:
    """Read `--bastion-coverage-out` JSON: {"tests": [{"nodeid", "threats": [...], "outcome"}]}."""
    name = str(path)
    doc = read_json_file(Path(path), "pytest coverage file")
    if not isinstance(doc, dict) or not isinstance(doc.get("tests"), list):
        raise ConfigError('expected {"tests": [{"nodeid": ..., "threats": [...], "outcome": ...}]}', file=name)
    tests = []
    for index, item in enumerate(doc["tests"]):
        where = f"tests[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("nodeid"), str):
            raise ConfigError("each test is an object with a string nodeid", file=name, key=where)
        threats = item.get("threats", [])
        if not isinstance(threats, list) or not all(isinstance(t, str) for t in threats):
            raise ConfigError("must be a list of threat ids", file=name, key=f"{where}.threats")
        outcome = item.get("outcome", "passed")
        if not isinstance(outcome, str):
            raise ConfigError("must be a string", file=name, key=f"{where}.outcome")
        tests.append(UserTest(nodeid=item["nodeid"], threats=tuple(threats), outcome=outcome))
    return tests


def load_audit_runs(engine: Engine, *, last: int = DEFAULT_LAST,
                    target: str | None = None) -> tuple[list[AuditRun], list[tuple[int, str, int, int]],
                                                         list[tuple[int, str, str]]]:
    """The last N runs (oldest first), their per-check records and their findings by check."""
    query = (select(runs.c.id, runs.c.started_at, runs.c.target, runs.c.config_hash, runs.c.git_commit)
             .order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(last))
    if target is not None:
        query = query.where(runs.c.target == target)
    with engine.connect() as conn:
        window = [AuditRun(*row) for row in conn.execute(query)][::-1]
        ids = [r.id for r in window]
        if not ids:
            return window, [], []
        check_rows = [(r, c, u, e) for r, c, u, e in conn.execute(
            select(run_checks.c.run_id, run_checks.c.check_id, run_checks.c.units, run_checks.c.errors)
            .where(run_checks.c.run_id.in_(ids)))]
        seen = [(r, c, fp) for r, c, fp in conn.execute(
            select(run_findings.c.run_id, findings.c.check_id, run_findings.c.fingerprint)
            .join(findings, findings.c.id == run_findings.c.finding_id).where(run_findings.c.run_id.in_(ids)))]
    return window, check_rows, seen


def unexercised_checks(data: AuditInput) -> list[dict[str, Any]]:
    """Registered checks that did not run on any unit (without every unit failing) in the window."""
    selected: dict[str, int] = defaultdict(int)
    exercised: dict[str, int] = defaultdict(int)
    for _run, check_id, units, errors in data.check_runs:
        selected[check_id] += 1
        if units > errors:
            exercised[check_id] += 1
    out = []
    for check_id in sorted(data.checks):
        if exercised[check_id]:
            continue
        reason = ("not selected in any run" if not selected[check_id]
                  else "selected but found nothing to test (no matching entry points or inputs), or every unit failed")
        out.append({"check": check_id, "threat": data.checks[check_id], "runs_selected": selected[check_id],
                    "reason": reason})
    return out


def unexercised_threats(data: AuditInput, idle_checks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Catalog threats with DAST checks, none of which was exercised in the window."""
    idle = {c["check"] for c in idle_checks}
    by_threat: dict[str, list[str]] = defaultdict(list)
    for check_id, threat in data.checks.items():
        by_threat[threat].append(check_id)
    out = []
    for threat, check_ids in sorted(by_threat.items()):
        if all(c in idle for c in check_ids):
            entry = data.catalog.get(threat)
            out.append({"threat": threat, "title": entry.title if entry else threat,
                        "severity": entry.severity.value if entry else None, "checks": sorted(check_ids)})
    return out


def flaky_checks(data: AuditInput) -> list[dict[str, Any]]:
    """Checks whose findings change between consecutive runs of the same target, config hash and git commit.

    Runs without a git commit are left out: nothing proves their code was the same.
    """
    groups: dict[tuple[str, str | None, str], list[AuditRun]] = defaultdict(list)
    for run in data.runs:
        if run.git_commit:
            groups[(run.target, run.config_hash, run.git_commit)].append(run)
    ran: dict[int, set[str]] = defaultdict(set)
    for run_id, check_id, _units, _errors in data.check_runs:
        ran[run_id].add(check_id)
    found: dict[tuple[int, str], set[str]] = defaultdict(set)
    for run_id, check_id, fp in data.run_findings:
        found[(run_id, check_id)].add(fp)
    flips: dict[tuple[str, str | None, str, str], dict[str, Any]] = {}
    for (target, config_hash, commit), group in groups.items():
        for check_id in sorted(set().union(*(ran[r.id] for r in group))):
            series = [r for r in group if check_id in ran[r.id]]
            for before, after in zip(series, series[1:], strict=False):
                old, new = found[(before.id, check_id)], found[(after.id, check_id)]
                if old == new:
                    continue
                key = (target, config_hash, commit, check_id)
                entry = flips.setdefault(key, {
                    "check": check_id, "target": target, "config_hash": config_hash, "git_commit": commit,
                    "runs": [r.id for r in series], "flips": 0,
                    "example": {"from_run": before.id, "to_run": after.id, "appeared": sorted(new - old),
                                "disappeared": sorted(old - new)}})
                entry["flips"] += 1
    return sorted(flips.values(), key=lambda e: (-e["flips"], e["check"], e["target"]))


def expiring(data: AuditInput, today: date, window_days: int = EXPIRY_WINDOW_DAYS) -> list[dict[str, Any]]:
    """Suppressions (bastion.yaml `accepted`) and baseline entries expiring within the window, or expired."""
    out: list[dict[str, Any]] = []

    def add(source: str, what: str, until: date, **extra: Any) -> None:
        days = (until - today).days
        if days <= window_days:
            out.append({"source": source, "what": what, "until": until.isoformat(), "days_left": days,
                        "status": "expired" if days < 0 else "expiring", **extra})

    for risk in data.accepted:
        where = " ".join(x for x in (risk.method, risk.path) if x) or "every location"
        add("accepted", f"{risk.threat} at {where}", risk.until, owner=risk.owner, reason=risk.reason)
    if data.baseline is not None:
        for entry in data.baseline.entries:
            until = data.baseline.entry_until(entry)
            if until is not None:
                add("baseline", f"{entry.check_id or entry.fingerprint} at {entry.location or '?'}", until,
                    fingerprint=entry.fingerprint, file=data.baseline.source)
    return sorted(out, key=lambda e: (e["days_left"], e["source"], e["what"]))


def threats_without_check_or_test(data: AuditInput) -> list[dict[str, Any]]:
    """Catalog threats that no DAST check, no static rule and no hand-written test that ran covers."""
    checked = set(data.checks.values()) | data.static_threats
    tested = {t for test in data.tests if test.outcome in RAN_OUTCOMES for t in test.threats}
    return [{"threat": tid, "title": t.title, "severity": t.severity.value}
            for tid, t in sorted(data.catalog.items()) if tid not in checked and tid not in tested]


def unknown_test_threats(data: AuditInput) -> list[dict[str, Any]]:
    """Hand-written tests marked with threat ids the catalog does not know (typos count nothing)."""
    return [{"nodeid": test.nodeid, "unknown": sorted({t for t in test.threats if t not in data.catalog})}
            for test in data.tests if any(t not in data.catalog for t in test.threats)]


def audit_report(data: AuditInput, today: date, *, window_days: int = EXPIRY_WINDOW_DAYS) -> dict[str, Any]:
    """Every audit result as one JSON-ready document (`bastion audit --format json`)."""
    idle = unexercised_checks(data)
    return {
        "schema": AUDIT_SCHEMA, "today": today.isoformat(), "expiry_window_days": window_days,
        "window": {"runs": [r.id for r in data.runs], "targets": sorted({r.target for r in data.runs})},
        "unexercised_checks": idle,
        "unexercised_threats": unexercised_threats(data, idle),
        "flaky_checks": flaky_checks(data),
        "expiring": expiring(data, today, window_days),
        "threats_without_check_or_test": threats_without_check_or_test(data),
        "unknown_test_threats": unknown_test_threats(data),
    }


def render_audit(report: dict[str, Any]) -> str:
    """The audit as plain text for a terminal."""
    window = report["window"]
    lines = [f"Audit of the last {len(window['runs'])} run(s) ({', '.join(window['targets']) or 'no runs'}), "
             f"today {report['today']}"]

    def section(title: str, items: list[Any], fmt: Any) -> None:
        lines.extend(["", f"{title}: {len(items)}"])
        lines.extend(f"  {fmt(item)}" for item in items)

    section("Checks never exercised", report["unexercised_checks"], lambda c: f"{c['check']} ({c['reason']})")
    section("Threats never exercised", report["unexercised_threats"],
            lambda t: f"{t['threat']} [{t['severity']}] checks: {', '.join(t['checks'])}")
    section("Flaky checks (same code and config, different findings)", report["flaky_checks"],
            lambda f: f"{f['check']} on {f['target']}: {f['flips']} flip(s) at commit {f['git_commit'][:12]}, "
                      f"e.g. run {f['example']['from_run']} -> {f['example']['to_run']}")
    section(f"Suppressions and baseline entries expiring within {report['expiry_window_days']} days",
            report["expiring"],
            lambda e: f"{e['status']}: {e['what']} ({e['source']}, until {e['until']}, {e['days_left']} day(s))")
    section("Catalog threats with no check and no user test", report["threats_without_check_or_test"],
            lambda t: f"{t['threat']} [{t['severity']}] {t['title']}")
    section("Tests marked with unknown threat ids", report["unknown_test_threats"],
            lambda t: f"{t['nodeid']}: {', '.join(t['unknown'])}")
    return "\n".join(lines)
