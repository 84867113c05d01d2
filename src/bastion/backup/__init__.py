"""Backup and recovery drill: for each declared data store, a backup exists within the RPO, is encrypted
where the model says so, restores into a scratch location within the RTO, and matches the live data.

`bastion.checks.backup` runs the drill in a scan; `bastion drill backup --config` runs it on its own and
prints the measured numbers. The live store is only ever read; scratch copies are removed after.
"""

from __future__ import annotations

from bastion.backup.drill import DrillProblem, DrillReport, run_drill
from bastion.backup.files import BackupClass, classify_backup, decrypt_backup, newest_backup
from bastion.backup.stores import StoreSpec, parse_duration, resolve_stores

__all__ = ["BackupClass", "DrillProblem", "DrillReport", "StoreSpec", "classify_backup", "decrypt_backup",
           "newest_backup", "parse_duration", "resolve_stores", "run_drill"]
