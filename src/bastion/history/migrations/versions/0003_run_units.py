"""Per-run coverage units (check, threat, entry point, input, role) for the changelog and the audit.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create run_units; runs recorded before it simply have no coverage rows."""
    op.create_table(
        "run_units",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("check_id", sa.String(200), nullable=False),
        sa.Column("threat_id", sa.String(200)),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("input", sa.Text),
        sa.Column("role", sa.String(200)),
    )
    op.create_index("ix_run_units_run", "run_units", ["run_id"])


def downgrade() -> None:
    """Drop run_units."""
    op.drop_index("ix_run_units_run", table_name="run_units")
    op.drop_table("run_units")
