"""Two demo scans with a flaw toggled off in between: the finding is fixed, with a time to fix."""

from __future__ import annotations

import dataclasses

from bastion.history import open_store, record_run
from bastion.history.metrics import history_report, load_snapshot


def _at(result, started_at: str):
    return dataclasses.replace(result, started_at=started_at)


def test_toggled_flaw_shows_as_fixed_with_time_to_fix(scan_demo, history_db: str) -> None:
    flawed = scan_demo(flaws="version_banner", checks=["config"])
    hardened = scan_demo(flaws="none", checks=["config"])
    assert flawed.findings and not hardened.findings
    first = record_run(_at(flawed, "2026-03-02T10:00:00+00:00"), db_url=history_db)
    second = record_run(_at(hardened, "2026-03-05T10:00:00+00:00"), db_url=history_db)
    assert len(first.new) == len(flawed.findings)
    assert second.fixed == first.new and second.new == []
    engine = open_store(history_db, create=False)
    # Both runs are one target: the demo's identity leaves out which flaws are planted.
    assert flawed.target.identity == hardened.target.identity == "bastion.demo:create_app"
    report = history_report(load_snapshot(engine, target="bastion.demo:create_app"))
    engine.dispose()
    severity = flawed.findings[0].severity.value
    assert report["time_to_fix"][severity]["fixed"] == len(flawed.findings)
    assert report["time_to_fix"][severity]["mean_days"] == 3.0
    assert [r["total"] for r in report["open_by_severity"]] == [len(flawed.findings), 0]
