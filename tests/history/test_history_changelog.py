"""Coverage changelog between runs: threats, entry points and roles gained or lost, with compliance refs."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner
from history_fakes import make_result
from sqlalchemy import select, text

from bastion.engine.context import CheckStats
from bastion.history import open_store, record_run
from bastion.history.changelog import ChangelogError, build_changelog
from bastion.history.cli import changelog_command
from bastion.history.compliance import compliance_refs
from bastion.history.coverage import Unit, parse_unit
from bastion.history.schema import run_units

BEFORE = {
    "injection.sql": ["GET /items [query:q]", "GET /users/{id} [path:id]"],
    "headers.csp-missing": ["target"],
    "config.version-banner": ["target"],
    "authz.bola": ["GET /invoices/{id} as alice", "GET /invoices/{id} as bob"],
}
AFTER = {
    "injection.sql": ["GET /items [query:q]", "POST /search [form:term]"],  # /users lost, /search gained
    "headers.csp-missing": ["target"],
    "injection.command": ["POST /ping [json:host]"],  # a new threat covered
    "authz.bola": ["GET /invoices/{id} as alice", "GET /invoices/{id} as carol"],  # bob lost, carol gained
}  # config.version-banner no longer runs: its threat lost coverage


def _result(units: dict[str, list[str]], started_at: str, target: str = "app:shop"):
    base = make_result([], checks=[], started_at=started_at, target=target)
    return dataclasses.replace(base, checks=[CheckStats(check_id=c, units=list(u), requests=len(u))
                                             for c, u in units.items()])


def test_unit_labels_parse_into_entry_input_and_role() -> None:
    assert parse_unit("c", "target") == Unit("c", "target")
    assert parse_unit("c", "target as admin") == Unit("c", "target", None, "admin")
    assert parse_unit("c", "GET /a/{id} [path:id] as alice") == Unit("c", "GET /a/{id}", "path:id", "alice")
    assert parse_unit("c", "POST /items [json:items[].sku]") == Unit("c", "POST /items", "json:items[].sku")
    assert parse_unit("c", "something odd") == Unit("c", "something odd")


def test_changelog_between_two_runs(history_db: str) -> None:
    first = record_run(_result(BEFORE, "2026-03-01T10:00:00+00:00"), db_url=history_db)
    second = record_run(_result(AFTER, "2026-03-08T10:00:00+00:00"), db_url=history_db)
    engine = open_store(history_db, create=False)
    with engine.connect() as conn:
        stored = conn.execute(select(run_units.c.check_id, run_units.c.threat_id, run_units.c.entry,
                                     run_units.c.input, run_units.c.role)
                              .where(run_units.c.run_id == first.run_id)).all()
    assert ("injection.sql", "injection.sql", "GET /items", "query:q", None) in stored
    assert ("authz.bola", "authz.bola", "GET /invoices/{id}", None, "bob") in stored
    doc = build_changelog(engine, str(first.run_id))
    by_date = build_changelog(engine, "2026-03-05")  # the last run before that day is the first one
    engine.dispose()
    assert by_date == doc
    assert (doc["from"]["run_id"], doc["to"]["run_id"], doc["target"]) == (first.run_id, second.run_id, "app:shop")
    changes = {c["threat"]: c for c in doc["threats"]}
    assert set(changes) == {"injection.command", "injection.sql", "authz.bola", "config.version-banner"}
    # Ordered by catalog severity: the critical threats first, the low one last.
    assert [c["severity"] for c in doc["threats"]] == ["critical", "critical", "high", "low"]
    assert changes["injection.command"]["change"] == "gained"
    assert changes["config.version-banner"]["change"] == "lost"
    sql = changes["injection.sql"]
    assert (sql["change"], sql["entry_points_gained"], sql["entry_points_lost"]) == (
        "changed", ["POST /search"], ["GET /users/{id}"])
    assert sql["asvs"] == ["5.3.4", "5.3.5"] and "6.2.4" in sql["pci_dss"] and sql["gdpr"]
    bola = changes["authz.bola"]
    assert (bola["roles_gained"], bola["roles_lost"]) == (["carol"], ["bob"])
    assert "7.2.2" in bola["pci_dss"]
    assert doc["entry_points"] == {"gained": ["POST /ping", "POST /search"], "lost": ["GET /users/{id}"]}
    assert doc["roles"] == {"gained": ["carol"], "lost": ["bob"]}
    assert doc["checks"] == {"gained": ["injection.command"], "lost": ["config.version-banner"]}


def test_changelog_command_table_and_json(db_path) -> None:
    record_run(_result(BEFORE, "2026-03-01T10:00:00+00:00"), db_url=str(db_path))
    record_run(_result(BEFORE, "2026-03-02T10:00:00+00:00", target="app:other"), db_url=str(db_path))
    record_run(_result(AFTER, "2026-03-08T10:00:00+00:00"), db_url=str(db_path))
    out = CliRunner().invoke(changelog_command, ["--db", str(db_path), "--since", "2026-03-01", "--target",
                                                 "app:shop", "--format", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert (doc["from"]["run_id"], doc["to"]["run_id"]) == (1, 3)
    table = CliRunner().invoke(changelog_command, ["--db", str(db_path), "--since", "1"])
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert "[critical] injection.command gained" in table.output
    assert any(line.strip() == "- GET /users/{id}" for line in lines)
    assert "PCI DSS 4.0 6.2.4" in table.output and "ASVS 5.3.4" in table.output
    same = CliRunner().invoke(changelog_command, ["--db", str(db_path), "--since", "3"])
    assert same.exit_code == 0 and "no coverage changes" in same.output


@pytest.mark.parametrize("args, message", [
    (["--since", "99"], "no run 99"),
    (["--since", "yesterday-ish"], "give a run id or a date"),
    (["--since", "1", "--target", "app:other"], "not app:other"),
    (["--since", "2030-01-01", "--target", "app:none"], "no runs recorded for target app:none"),
])
def test_changelog_bad_input_exits_2(db_path, args: list[str], message: str) -> None:
    record_run(_result(BEFORE, "2026-03-01T10:00:00+00:00"), db_url=str(db_path))
    out = CliRunner().invoke(changelog_command, ["--db", str(db_path), *args])
    assert out.exit_code == 2 and message in out.output


def test_runs_recorded_before_units_existed_are_refused(db_path) -> None:
    first = record_run(_result(BEFORE, "2026-03-01T10:00:00+00:00"), db_url=str(db_path))
    record_run(_result(AFTER, "2026-03-08T10:00:00+00:00"), db_url=str(db_path))
    engine = open_store(str(db_path))
    with engine.begin() as conn:  # what a run written by the 0002 schema looks like
        conn.execute(text("DELETE FROM run_units WHERE run_id = :r"), {"r": first.run_id})
    with pytest.raises(ChangelogError, match="before Bastion stored coverage units"):
        build_changelog(engine, str(first.run_id))
    engine.dispose()


def test_compliance_refs_cover_every_mapped_family() -> None:
    from bastion.catalog import load_catalog
    from bastion.history.compliance import compliance_table

    families = set(compliance_table()["by_family"])
    for threat_id in load_catalog():
        if threat_id.split(".", 1)[0] in families:  # other families (e.g. the model's own threats) may be unmapped
            assert compliance_refs(threat_id)["pci_dss"], f"{threat_id} has no PCI DSS reference"
    assert compliance_refs("injection.sql")["asvs"] == ["5.3.4", "5.3.5"]
    assert compliance_refs("unknown.thing") == {"asvs": [], "pci_dss": [], "gdpr": []}
