"""The drill for one data store: freshness (RPO), encryption, restore + integrity + data match (RTO).

Data match: the restored copy must hold every live table with the same rows. Tables and rows may differ
only when the live store changed after the backup was taken (SQLite: file modification time; PostgreSQL:
the last commit time when `track_commit_timestamp` is on, else assumed changed): those differences are
the data-loss window, measured and reported; with no change since the backup they are a finding.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bastion.backup.files import BackupClass, DecryptError, classify_backup, decrypt_backup, newest_backup, unpack
from bastion.backup.restore import (
    DrillSetupError,
    RestoreError,
    Snapshot,
    live_sqlite_snapshot,
    pg_last_commit,
    pg_snapshot,
    restore_postgres,
    restore_sqlite,
)
from bastion.backup.stores import StoreSpec, display_duration

STEPS = ("freshness", "encryption", "restore")
MAX_BACKUP_BYTES = 4 * 1024 ** 3


@dataclass(frozen=True)
class DrillProblem:
    """One failed expectation; `threat` is the catalog id (backup.stale, backup.unencrypted, backup.restore)."""

    threat: str
    title: str
    detail: str
    severity: str | None = None


@dataclass
class DrillReport:
    """Measurements and problems of one store's drill."""

    store: StoreSpec
    backup_file: Path | None = None
    backup_age_s: float | None = None
    classification: BackupClass | None = None
    restore_s: float | None = None
    tables_compared: int = 0
    changed_tables: list[str] = field(default_factory=list)
    live_changed_since_backup: bool | None = None
    problems: list[DrillProblem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def of(self, threat: str) -> list[DrillProblem]:
        return [p for p in self.problems if p.threat == threat]

    def measurements(self, timed: bool = True) -> list[tuple[str, str]]:
        """(what, value) pairs for evidence and the CLI table; `timed=False` leaves out the measured durations
        (findings that are not about time stay byte-identical between runs)."""
        s = self.store
        rows = [("store", f"{s.name} ({s.kind}: {s.live_label})"),
                ("backup", self.backup_file.name if self.backup_file else "none found")]
        if self.backup_age_s is not None and timed:
            rows.append(("data-loss window (backup age)",
                         display_duration(self.backup_age_s) + (f" (RPO {s.rpo})" if s.rpo else "")))
        if self.classification is not None:
            state = "encrypted" if self.classification.encrypted else "NOT encrypted"
            rows.append(("encryption", f"{state}: {self.classification.kind} ({self.classification.proof})"))
        if self.restore_s is not None and timed:
            rows.append(("recovery time", display_duration(self.restore_s) + (f" (RTO {s.rto})" if s.rto else "")))
            rows.append(("tables compared", str(self.tables_compared)))
            if self.changed_tables:
                rows.append(("changed since backup", "; ".join(self.changed_tables)))
        rows += [("not tested", reason) for reason in self.skipped]
        return rows


def _freshness(report: DrillReport, now: float) -> None:
    store = report.store
    if store.backup_glob is None:
        report.problems.append(DrillProblem("backup.stale", f"No backup location declared for data store "
                                            f"{store.name}", "the model has no backup.path for it", "high"))
        return
    newest = newest_backup(store.backup_glob)
    if newest is None:
        report.problems.append(DrillProblem("backup.stale", f"No backup of data store {store.name}",
                                            f"nothing matches {Path(store.backup_glob).name}", "high"))
        return
    report.backup_file = newest
    report.backup_age_s = max(0.0, now - newest.stat().st_mtime)
    if store.rpo_s is not None and report.backup_age_s > store.rpo_s:
        report.problems.append(DrillProblem(
            "backup.stale", f"Newest backup of {store.name} is older than its RPO",
            f"{newest.name} is {display_duration(report.backup_age_s)} old; RPO {store.rpo}: a failure now "
            f"loses more data than the model allows"))


def _read(path: Path) -> bytes:
    if path.stat().st_size > MAX_BACKUP_BYTES:
        raise RestoreError(f"{path.name} is larger than the drill's 4 GiB limit")
    return path.read_bytes()


def _encryption(report: DrillReport, data: bytes) -> None:
    report.classification = cls = classify_backup(data)
    if report.store.encrypted and not cls.encrypted:
        report.problems.append(DrillProblem(
            "backup.unencrypted", f"Backup of {report.store.name} is not encrypted",
            f"{report.backup_file.name if report.backup_file else 'backup'}: {cls.kind} ({cls.proof}); "
            f"the model requires encrypted backups"))


def _plaintext(report: DrillReport, data: bytes) -> bytes | None:
    store = report.store
    cls = report.classification or classify_backup(data)
    if not cls.encrypted:
        return unpack(data)
    if store.key is None:
        report.skipped.append(f"restore: {store.key_problem or 'the backup is encrypted and no key is configured'}")
        return None
    return decrypt_backup(data, store.encryption_format, store.key)


def _live(store: StoreSpec) -> Snapshot:
    if store.kind == "sqlite":
        assert store.path is not None
        return live_sqlite_snapshot(store.path)
    assert store.url is not None
    return pg_snapshot(store.url)


def _live_changed_since(store: StoreSpec, backup_time: float) -> bool:
    if store.kind == "sqlite" and store.path is not None:
        files = [store.path, store.path.with_name(store.path.name + "-wal")]
        return any(f.exists() and f.stat().st_mtime > backup_time for f in files)
    last = pg_last_commit(store.url or "")
    return True if last is None else last > backup_time


def _compare(report: DrillReport, restored: Snapshot, live: Snapshot) -> None:
    store, backup = report.store, report.backup_file
    report.tables_compared = len(set(live) & set(restored))
    differing = [f"{t}: live {live[t].rows} rows, not in the backup" for t in sorted(set(live) - set(restored))]
    differing += [f"{t}: live {live[t].rows} rows, backup {restored[t].rows}" + (
        "" if live[t].rows != restored[t].rows else " (contents differ)")
        for t in sorted(set(live) & set(restored)) if live[t] != restored[t]]
    if not differing:
        return
    # A table created or rows written after the backup are the data-loss window, not a broken backup.
    changed = _live_changed_since(store, backup.stat().st_mtime if backup else 0.0)
    report.live_changed_since_backup = changed
    if changed:
        report.changed_tables = differing
    else:
        report.problems.append(DrillProblem(
            "backup.restore", f"Restored backup of {store.name} does not match the live data",
            "the live store has not changed since the backup, yet: " + "; ".join(differing)))


def _restore(report: DrillReport, data: bytes, clock: Callable[[], float]) -> None:
    store = report.store
    scratch = Path(tempfile.mkdtemp(prefix="bastion-drill-"))
    try:
        started = clock()
        plain = _plaintext(report, data)
        if plain is None:
            return
        if store.kind == "sqlite":
            restored = restore_sqlite(plain, scratch)
        else:
            restored = restore_postgres(plain, store.url or "", store.scratch_url, scratch)
        report.restore_s = clock() - started
    except (RestoreError, DecryptError) as exc:
        report.problems.append(DrillProblem("backup.restore", f"Backup of {store.name} does not restore", str(exc)))
        return
    except DrillSetupError as exc:
        report.skipped.append(f"restore: {exc}")
        return
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    try:
        live = _live(store)
    except (DrillSetupError, OSError) as exc:
        report.skipped.append(f"comparison with the live store: {exc}")
        return
    _compare(report, restored, live)
    if store.rto_s is not None and report.restore_s > store.rto_s:
        report.problems.append(DrillProblem(
            "backup.restore", f"Recovery of {store.name} takes longer than its RTO",
            f"restore, integrity check and verification took {display_duration(report.restore_s)}; RTO {store.rto}"))


def run_drill(store: StoreSpec, steps: tuple[str, ...] = STEPS, *, now: float | None = None,
              clock: Callable[[], float] = time.perf_counter) -> DrillReport:
    """Run the drill steps for one store (blocking); never writes to the live store."""
    report = DrillReport(store=store)
    _freshness(report, time.time() if now is None else now)
    if report.backup_file is None or steps == ("freshness",):
        return report
    try:
        data = _read(report.backup_file)
    except (OSError, RestoreError) as exc:
        report.problems.append(DrillProblem("backup.restore", f"Backup of {store.name} cannot be read", str(exc)))
        return report
    _encryption(report, data)
    if "restore" in steps:
        _restore(report, data, clock)
    return report
