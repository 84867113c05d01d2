"""Run history: a SQLAlchemy Core store of runs and findings, their states across runs, and metrics."""

from bastion.history.record import RunSummary, record_run
from bastion.history.store import open_store, resolve_db_url

__all__ = ["RunSummary", "open_store", "record_run", "resolve_db_url"]
