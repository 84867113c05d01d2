"""The history tables at the head migration, as SQLAlchemy Core metadata (dialect-neutral)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Timestamps are ISO 8601 UTC strings: they sort correctly and read the same on SQLite and PostgreSQL.
runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40), nullable=False),
    Column("target", Text, nullable=False),
    Column("config_hash", String(128)),
    Column("git_commit", String(64)),
    Column("seed", Integer, nullable=False),
    Column("tool_version", String(40), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Index("ix_runs_target_started", "target", "started_at"),
)

run_checks = Table(
    "run_checks", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("check_id", String(200), primary_key=True),
    Column("duration_s", Float, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("units", Integer, nullable=False),
    Column("errors", Integer, nullable=False, server_default="0"),
)

findings = Table(
    "findings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Fingerprints do not include the target, so one finding row exists per (target, fingerprint).
    Column("target", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("check_id", String(200), nullable=False),
    Column("threat_id", String(200), nullable=False),
    Column("title", Text, nullable=False),
    Column("severity", String(10), nullable=False),
    Column("confidence", String(10), nullable=False),
    Column("location", Text, nullable=False),
    Column("first_seen", String(40), nullable=False),
    Column("last_seen", String(40), nullable=False),
    Column("fixed_at", String(40)),
    Column("state", String(12), nullable=False),
    Column("reopen_count", Integer, nullable=False, server_default="0"),
    UniqueConstraint("target", "fingerprint", name="uq_findings_target_fingerprint"),
)

run_findings = Table(
    "run_findings", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("finding_id", Integer, ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    # The state the finding had in this run: new, persisting, reopened or accepted.
    Column("state", String(12), nullable=False),
    Column("evidence", Text, nullable=False),
)

# What each run exercised: one row per unit of every check (from `CheckStats.units` labels), so the
# changelog and the audit can tell which threats, entry points and roles gained or lost coverage.
run_units = Table(
    "run_units", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("check_id", String(200), nullable=False),
    Column("threat_id", String(200)),
    # "METHOD /path" or "target" (a check that runs once per target).
    Column("entry", Text, nullable=False),
    # "in:name" for input-scoped checks, else null.
    Column("input", Text),
    Column("role", String(200)),
    Index("ix_run_units_run", "run_id"),
)

TABLES = ("runs", "run_checks", "findings", "run_findings", "run_units")
