"""The demo's nightly backup of its SQLite database, written when the app starts.

Hardened: a consistent copy encrypted with Fernet under a per-instance key, outside every served folder,
taken just now. Flaws: `unencrypted_backup` writes a plain copy into the project directory's backup/
folder (the folder the `exposed_files` flaw serves); `stale_backup` dates it three days back (the
nightly job stopped; the model's RPO is 24h); `truncated_backup` keeps only the first half (the upload
was cut off), so it cannot be restored. `locate` tells the recovery drill where everything is.
"""

from __future__ import annotations

import os
import sqlite3
import time
import weakref
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

BACKUP_NAME = "shop-nightly.sqlite3"
# How old the `stale_backup` flaw's file is: beyond the model's 24h RPO.
STALE_AGE_S = 3 * 86400
# Per app instance: the Fernet key the hardened backup is encrypted with (never served).
_KEYS: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


def _state(app: Any) -> Any:
    return app.extensions["bastion_demo"] if hasattr(app, "extensions") else app.state.demo


def _backup_dir(app: Any) -> Path:
    state = _state(app)
    if "unencrypted_backup" in state.flaws:
        return Path(state.workspace.project_dir) / "backup"
    return Path(state.workspace.root) / "backups"


def _snapshot(database: Path) -> bytes:
    """A consistent copy of the live database through SQLite's online-backup API."""
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    copy = sqlite3.connect(":memory:")
    try:
        source.backup(copy)
        return copy.serialize()
    finally:
        source.close()
        copy.close()


def install_backup(app: Any) -> None:
    """Take the demo's backup now: plaintext where the flaw is planted, Fernet-encrypted otherwise."""
    state = _state(app)
    folder = _backup_dir(app)
    folder.mkdir(parents=True, exist_ok=True)
    data = _snapshot(Path(state.workspace.db.path))
    if "unencrypted_backup" in state.flaws:
        target = folder / BACKUP_NAME
    else:
        key = _KEYS[app] = Fernet.generate_key()
        data, target = Fernet(key).encrypt(data), folder / (BACKUP_NAME + ".fernet")
    if "truncated_backup" in state.flaws:
        data = data[: len(data) // 2]
    target.write_bytes(data)
    if "stale_backup" in state.flaws:
        taken = time.time() - STALE_AGE_S
        os.utime(target, (taken, taken))


def locate(app: Any) -> dict[str, Any]:
    """The drill's `locate` hook: the live database, the backup glob and (hardened) the decryption key."""
    found: dict[str, Any] = {"path": str(_state(app).workspace.db.path),
                             "backup": str(_backup_dir(app) / (BACKUP_NAME + "*"))}
    if app in _KEYS:
        found["key"] = _KEYS[app].decode()
    return found


# The demo model's data store: the policy says backups are encrypted; `locate` finds this instance's files.
DATA_STORES: dict[str, Any] = {
    "shop": {"kind": "sqlite", "locate": "bastion.demo.backup:locate", "backup": {"encrypted": True},
             "rto": "15m", "rpo": "24h"},
}


def recovery_sections() -> dict[str, Any]:
    """The Flask demo model's `tls:` (its own SSLContext, the demo CA, the server key's pin) and `data_stores:`."""
    from bastion.demo.tls import demo_certificates
    from bastion.tls.certificate import spki_pin

    certs = demo_certificates()
    return {"tls": {"context": "bastion.demo.tls:server_context", "ca_file": str(certs.ca_file),
                    "pin": [spki_pin(certs.certificate())]},
            "data_stores": DATA_STORES}
