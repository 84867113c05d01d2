"""Reopen counts, per-check error counts and an index for "previous run of this target".

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add findings.reopen_count, run_checks.errors and ix_runs_target_started."""
    # server_default fills the rows an older file already holds.
    op.add_column("findings", sa.Column("reopen_count", sa.Integer, nullable=False, server_default="0"))
    op.add_column("run_checks", sa.Column("errors", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_runs_target_started", "runs", ["target", "started_at"])


def downgrade() -> None:
    """Remove what 0002 added."""
    op.drop_index("ix_runs_target_started", table_name="runs")
    with op.batch_alter_table("run_checks") as batch:
        batch.drop_column("errors")
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("reopen_count")
