"""Alembic environment: always run programmatically on a connection Bastion opened (no alembic.ini)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through the alembic CLI, which Bastion does not use
    raise RuntimeError("Bastion's history migrations run through bastion.history.store, not the alembic CLI")

context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
