"""The recovery drill on SQLite stores: freshness vs RPO, encryption, restore, data match, RTO."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from backup_fixtures import (
    aes_gcm_encrypt,
    aes_key,
    age_file,
    fernet_encrypt,
    gzip_bytes,
    make_live,
    sql_dump,
    sqlite_bytes,
    write_backup,
)
from cryptography.fernet import Fernet

from bastion.backup import StoreSpec, classify_backup, parse_duration, run_drill
from bastion.backup.files import decrypt_backup, newest_backup

HOUR = 3600.0


def spec(live: Path, backups: Path, **kw: object) -> StoreSpec:
    defaults: dict[str, object] = {"rto_s": 900.0, "rpo_s": 24 * HOUR, "rto": "15m", "rpo": "24h"}
    defaults.update(kw)
    return StoreSpec(name="shop", kind="sqlite", path=live, backup_glob=str(backups / "*"), **defaults)  # type: ignore[arg-type]


def threats(report: object) -> list[str]:
    return sorted(p.threat for p in report.problems)  # type: ignore[attr-defined]


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = make_live(tmp_path)
    age_file(path, 2 * HOUR)  # the live store last changed before any backup the tests write
    return path


def test_fresh_plain_backup_passes_when_encryption_is_not_required(live: Path, tmp_path: Path) -> None:
    write_backup(tmp_path / "b", "shop-1.db", sqlite_bytes(live))
    report = run_drill(spec(live, tmp_path / "b"))
    assert report.problems == [] and report.skipped == []
    assert report.tables_compared == 2 and report.restore_s is not None
    assert report.backup_age_s is not None and 50 < report.backup_age_s < 24 * HOUR


def test_plain_backup_where_encryption_is_required(live: Path, tmp_path: Path) -> None:
    write_backup(tmp_path / "b", "shop-1.db", sqlite_bytes(live))
    report = run_drill(spec(live, tmp_path / "b", encrypted=True))
    assert threats(report) == ["backup.unencrypted"]
    assert "SQLite format 3" in report.problems[0].detail


def test_gzip_is_not_encryption(live: Path, tmp_path: Path) -> None:
    write_backup(tmp_path / "b", "shop.sql.gz", gzip_bytes(sql_dump(live)))
    report = run_drill(spec(live, tmp_path / "b", encrypted=True))
    assert threats(report) == ["backup.unencrypted"]
    assert report.classification is not None and "gzip-compressed plain SQL dump" == report.classification.kind
    assert report.tables_compared == 2  # the dump still restores and matches


def test_fernet_backup_decrypts_restores_and_matches(live: Path, tmp_path: Path) -> None:
    key = Fernet.generate_key()
    write_backup(tmp_path / "b", "shop.db.fernet", fernet_encrypt(sqlite_bytes(live), key))
    report = run_drill(spec(live, tmp_path / "b", encrypted=True, key=key.decode()))
    assert report.problems == [] and report.tables_compared == 2


def test_aes_gcm_backup_of_a_gzipped_dump(live: Path, tmp_path: Path) -> None:
    raw, encoded = aes_key()
    write_backup(tmp_path / "b", "shop.sql.gz.enc", aes_gcm_encrypt(gzip_bytes(sql_dump(live)), raw))
    report = run_drill(spec(live, tmp_path / "b", encrypted=True, key=encoded, encryption_format="aes-gcm"))
    assert report.problems == [] and report.tables_compared == 2
    assert report.classification is not None and report.classification.encrypted


def test_wrong_key_means_the_backup_does_not_restore(live: Path, tmp_path: Path) -> None:
    write_backup(tmp_path / "b", "shop.db.fernet", fernet_encrypt(sqlite_bytes(live), Fernet.generate_key()))
    report = run_drill(spec(live, tmp_path / "b", encrypted=True, key=Fernet.generate_key().decode()))
    assert threats(report) == ["backup.restore"]
    assert "decryption failed" in report.problems[0].detail


def test_missing_key_is_not_tested_not_a_finding(live: Path, tmp_path: Path) -> None:
    write_backup(tmp_path / "b", "shop.db.fernet", fernet_encrypt(sqlite_bytes(live), Fernet.generate_key()))
    report = run_drill(spec(live, tmp_path / "b", encrypted=True, key_problem="$SHOP_BACKUP_KEY is not set"))
    assert report.problems == []
    assert report.skipped == ["restore: $SHOP_BACKUP_KEY is not set"]


def test_no_backup_at_all(live: Path, tmp_path: Path) -> None:
    report = run_drill(spec(live, tmp_path / "nothing-here"))
    assert threats(report) == ["backup.stale"] and report.problems[0].severity == "high"


def test_backup_older_than_the_rpo(live: Path, tmp_path: Path) -> None:
    write_backup(tmp_path / "b", "old.db", sqlite_bytes(live), age_s=30 * HOUR)
    report = run_drill(spec(live, tmp_path / "b"))
    assert threats(report) == ["backup.stale"]
    assert "30h" in report.problems[0].detail and "RPO 24h" in report.problems[0].detail


def test_newest_backup_wins(live: Path, tmp_path: Path) -> None:
    write_backup(tmp_path / "b", "old.db", b"garbage", age_s=30 * HOUR)
    newest = write_backup(tmp_path / "b", "new.db", sqlite_bytes(live), age_s=60)
    assert newest_backup(str(tmp_path / "b" / "*")) == newest
    assert run_drill(spec(live, tmp_path / "b")).problems == []


def test_truncated_backup_does_not_restore(live: Path, tmp_path: Path) -> None:
    data = sqlite_bytes(live)
    write_backup(tmp_path / "b", "shop.db", data[: len(data) // 2])
    report = run_drill(spec(live, tmp_path / "b"))
    assert threats(report) == ["backup.restore"]


def test_backup_lacking_a_table(live: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "partial.db")
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
    conn.execute("INSERT INTO customers (email) VALUES ('ada@example.test'), ('grace@example.test')")
    conn.commit()
    conn.close()
    write_backup(tmp_path / "b", "shop.db", sqlite_bytes(tmp_path / "partial.db"))
    report = run_drill(spec(live, tmp_path / "b"))
    assert threats(report) == ["backup.restore"]
    assert "orders: live 3 rows, not in the backup" in report.problems[0].detail


def test_table_created_after_the_backup_is_tolerated(live: Path, tmp_path: Path) -> None:
    write_backup(tmp_path / "b", "shop.db", sqlite_bytes(live))
    conn = sqlite3.connect(live)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    report = run_drill(spec(live, tmp_path / "b"))
    assert report.problems == []
    assert report.changed_tables == ["invoices: live 0 rows, not in the backup"]


def test_rows_written_after_the_backup_are_the_data_loss_window(live: Path, tmp_path: Path) -> None:
    write_backup(tmp_path / "b", "shop.db", sqlite_bytes(live))
    conn = sqlite3.connect(live)
    conn.execute("INSERT INTO orders (customer_id, total_cents) VALUES (2, 5)")
    conn.commit()
    conn.close()  # the live file is now newer than the backup: the difference is tolerated and measured
    report = run_drill(spec(live, tmp_path / "b"))
    assert report.problems == []
    assert report.changed_tables == ["orders: live 4 rows, backup 3"]


def test_backup_that_differs_from_an_unchanged_store(live: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "other.db")
    conn.executescript("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL);"
                       "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total_cents INTEGER);"
                       "INSERT INTO customers (email) VALUES ('ada@example.test'), ('mallory@example.test');")
    conn.commit()
    conn.close()
    write_backup(tmp_path / "b", "shop.db", sqlite_bytes(tmp_path / "other.db"))
    report = run_drill(spec(live, tmp_path / "b"))
    assert threats(report) == ["backup.restore"]
    assert "customers: live 2 rows, backup 2 (contents differ)" in report.problems[0].detail
    assert "orders: live 3 rows, backup 0" in report.problems[0].detail


def test_recovery_slower_than_the_rto(live: Path, tmp_path: Path) -> None:
    write_backup(tmp_path / "b", "shop.db", sqlite_bytes(live))
    ticks = iter([100.0, 1300.0])  # an injected clock: the restore "took" 20 minutes
    report = run_drill(spec(live, tmp_path / "b"), clock=lambda: next(ticks))
    assert threats(report) == ["backup.restore"]
    assert "20m 0s" in report.problems[0].detail and "RTO 15m" in report.problems[0].detail
    assert ("recovery time", "20m 0s (RTO 15m)") in report.measurements()


def test_live_store_is_never_written_and_scratch_is_removed(live: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    write_backup(tmp_path / "b", "shop.db", sqlite_bytes(live))
    before = (live.read_bytes(), live.stat().st_mtime_ns)
    made: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: object, **kwargs: object) -> str:
        made.append(real_mkdtemp(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    assert run_drill(spec(live, tmp_path / "b")).problems == []
    assert (live.read_bytes(), live.stat().st_mtime_ns) == before
    assert made and not any(Path(p).exists() for p in made)


@pytest.mark.parametrize(("data", "encrypted"), [
    (b"SQLite format 3\x00" + bytes(100), False),
    (b"PGDMP\x01\x0e\x00", False),
    (b"-- PostgreSQL database dump\nCREATE TABLE t (a int);\n", False),
    (b"id,email\n" + b"1,a@example.test\n" * 500, False),
    (b"age-encryption.org/v1\n-> X25519 abc\n", True),
    (b"Salted__" + bytes(range(256)) * 4, True),
])
def test_classify(data: bytes, encrypted: bool) -> None:
    assert classify_backup(data).encrypted is encrypted


def test_random_bytes_look_encrypted() -> None:
    import random

    blob = random.Random(7).randbytes(8192)
    assert classify_backup(blob).encrypted


def test_decompression_bomb_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import bastion.backup.files as files

    monkeypatch.setattr(files, "MAX_DECOMPRESSED", 1000)
    bomb = gzip_bytes(b"\x00" * 100_000)
    with pytest.raises(files.DecryptError, match="exceeds"):
        files.unpack(bomb)
    key = Fernet.generate_key()
    with pytest.raises(files.DecryptError):
        decrypt_backup(Fernet(key).encrypt(bomb), "fernet", key.decode())


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("24h", 86400), ("1h30m", 5400),
                                               ("7d", 604800), ("2w", 1209600)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "15 minutes", "h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
