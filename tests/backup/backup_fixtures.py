"""Small SQLite stores and their backups for the drill tests."""

from __future__ import annotations

import base64
import gzip
import os
import sqlite3
import time
from pathlib import Path

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, total_cents INTEGER NOT NULL);
INSERT INTO customers (email) VALUES ('ada@example.test'), ('grace@example.test');
INSERT INTO orders (customer_id, total_cents) VALUES (1, 1200), (2, 990), (1, 45);
"""


def make_live(folder: Path) -> Path:
    path = folder / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.commit()
    conn.close()
    return path


def sqlite_bytes(live: Path) -> bytes:
    """A consistent copy of the store through the online-backup API."""
    source, copy = sqlite3.connect(live), sqlite3.connect(":memory:")
    source.backup(copy)
    data = copy.serialize()
    source.close()
    copy.close()
    return data


def sql_dump(live: Path) -> bytes:
    conn = sqlite3.connect(live)
    text = "\n".join(conn.iterdump())
    conn.close()
    return text.encode()


def fernet_encrypt(data: bytes, key: bytes) -> bytes:
    return Fernet(key).encrypt(data)


def aes_gcm_encrypt(data: bytes, key: bytes, nonce: bytes = b"\x01" * 12) -> bytes:
    return nonce + AESGCM(key).encrypt(nonce, data, None)


def aes_key() -> tuple[bytes, str]:
    key = AESGCM.generate_key(bit_length=256)
    return key, base64.b64encode(key).decode()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def write_backup(folder: Path, name: str, data: bytes, age_s: float = 60.0) -> Path:
    """A backup file whose modification time is `age_s` seconds ago (and after the live store's)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def age_file(path: Path, age_s: float) -> None:
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
