"""Backup files: pick the newest, tell plaintext from ciphertext, decrypt the documented formats.

Formats Bastion decrypts (the key comes from `backup.key_env`, or a store's `locate` hook):
- `fernet`: the file is one Fernet token (cryptography.fernet); the key is the urlsafe-base64 Fernet key.
- `aes-gcm`: the file is a 12-byte nonce followed by the AES-GCM ciphertext and its 16-byte tag, no
  associated data; the key is 16, 24 or 32 bytes, base64-encoded.
Either may wrap a gzip stream, which is unpacked after decryption.
"""

from __future__ import annotations

import base64
import bz2
import glob
import lzma
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

SAMPLE_BYTES = 65536
# zlib shrinks plaintext (SQL, SQLite pages, CSV) well below this ratio; ciphertext does not shrink.
COMPRESSIBLE_RATIO = 0.9
MAX_DECOMPRESSED = 2 * 1024 ** 3
_PLAIN_SQL_MARKERS = (b"CREATE TABLE", b"INSERT INTO", b"PostgreSQL database dump", b"BEGIN TRANSACTION",
                      b"PRAGMA ", b"COPY ")
_ENCRYPTED_MAGIC = ((b"age-encryption.org/", "age-encrypted file"), (b"-----BEGIN PGP MESSAGE", "OpenPGP message"),
                    (b"Salted__", "openssl enc file"), (b"gAAAAA", "Fernet token"))


@dataclass(frozen=True)
class BackupClass:
    """What a backup file looks like from its bytes."""

    encrypted: bool
    kind: str
    # The marker that shows it (a header or a ratio), for the evidence.
    proof: str = ""


def newest_backup(pattern: str) -> Path | None:
    """The newest regular file matching `pattern` (by modification time, then name)."""
    files = [Path(p) for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
    if not files:
        return None
    return max(files, key=lambda p: (p.stat().st_mtime, p.name))


def _gunzip_sample(data: bytes) -> bytes:
    try:
        return zlib.decompressobj(wbits=31).decompress(data, SAMPLE_BYTES)
    except zlib.error:
        return b""


def classify_backup(data: bytes) -> BackupClass:
    """Plaintext database/dump, compressed plaintext, or encrypted (by header, else by compressibility)."""
    sample = data[:SAMPLE_BYTES]
    if sample.startswith(b"SQLite format 3\x00"):
        return BackupClass(False, "SQLite database file", "header 'SQLite format 3'")
    if sample.startswith(b"PGDMP"):
        return BackupClass(False, "pg_dump custom-format archive", "header 'PGDMP'")
    if sample.startswith(b"\x1f\x8b"):
        inner = classify_backup(_gunzip_sample(sample))
        return BackupClass(False, f"gzip-compressed {inner.kind}", "gzip header (compression has no key)")
    for magic, kind in ((b"BZh", "bzip2-compressed data"), (b"\xfd7zXZ\x00", "xz-compressed data"),
                        (b"\x28\xb5\x2f\xfd", "zstd-compressed data")):
        if sample.startswith(magic):
            return BackupClass(False, kind, "compression header (compression has no key)")
    stripped = sample.lstrip()
    for magic, kind in _ENCRYPTED_MAGIC:
        if stripped.startswith(magic):
            return BackupClass(True, kind, f"header {magic[:12]!r}")
    for marker in _PLAIN_SQL_MARKERS:
        if marker in sample:
            return BackupClass(False, "plain SQL dump", f"contains {marker.decode()!r}")
    if not sample:
        return BackupClass(False, "empty file", "0 bytes")
    ratio = len(zlib.compress(sample, 6)) / len(sample)
    if ratio < COMPRESSIBLE_RATIO:
        return BackupClass(False, "compressible plaintext data", f"zlib compresses it to {ratio:.0%}")
    return BackupClass(True, "high-entropy data (encrypted or compressed)", f"zlib ratio {ratio:.0%}")


class DecryptError(ValueError):
    """The backup cannot be decrypted with the configured key and format."""


def decrypt_backup(data: bytes, fmt: str, key: str) -> bytes:
    """Decrypt a backup in the documented `fernet` or `aes-gcm` format, then unpack gzip if present."""
    from cryptography.exceptions import InvalidTag
    from cryptography.fernet import Fernet, InvalidToken
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        if fmt == "fernet":
            plain = Fernet(key.encode() if isinstance(key, str) else key).decrypt(data.strip())
        elif fmt == "aes-gcm":
            raw_key = base64.b64decode(key)
            plain = AESGCM(raw_key).decrypt(data[:12], data[12:], None)
        else:
            raise DecryptError(f"unknown backup encryption format {fmt!r} (fernet, aes-gcm)")
    except (InvalidToken, InvalidTag, ValueError) as exc:
        if isinstance(exc, DecryptError):
            raise
        raise DecryptError(f"{fmt} decryption failed: wrong key, wrong format or a damaged file "
                           f"({type(exc).__name__})") from None
    return unpack(plain)


def unpack(data: bytes) -> bytes:
    """Undo gzip/bzip2/xz compression (bounded: a decompression bomb stops at 2 GiB), else return as is."""
    decompressor: zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor
    if data.startswith(b"\x1f\x8b"):
        decompressor = zlib.decompressobj(wbits=31)
    elif data.startswith(b"BZh"):
        decompressor = bz2.BZ2Decompressor()
    elif data.startswith(b"\xfd7zXZ\x00"):
        decompressor = lzma.LZMADecompressor()
    else:
        return data
    try:
        out = decompressor.decompress(data, MAX_DECOMPRESSED + 1)
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
        raise DecryptError(f"damaged compressed backup: {exc}") from None
    if len(out) > MAX_DECOMPRESSED:
        raise DecryptError("decompressed backup exceeds 2 GiB")
    return out
