"""Data stores from the model (`data_stores:`), resolved to concrete files, URLs and keys."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bastion.errors import ConfigError

_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """'90s', '15m', '24h', '1h30m', '7d' -> seconds."""
    parts = _DURATION_PART.findall(text)
    if not parts or _DURATION_PART.sub("", text).strip():
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 24h, 7d)")
    return float(sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts))


def display_duration(seconds: float) -> str:
    """Seconds as a short human duration: 0.42s, 12m 5s, 30h 0m."""
    if seconds < 1:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"


def redact_url(url: str) -> str:
    """A database URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass
class StoreSpec:
    """One data store with everything the drill needs, resolved from the model (and its `locate` hook)."""

    name: str
    kind: str
    path: Path | None = None
    url: str | None = None
    scratch_url: str | None = None
    backup_glob: str | None = None
    encrypted: bool = False
    key: str | None = None
    key_problem: str | None = None
    encryption_format: str = "fernet"
    rto_s: float | None = None
    rpo_s: float | None = None
    rto: str | None = None
    rpo: str | None = None

    @property
    def live_label(self) -> str:
        """How reports name the live store: the file name, or the URL without password."""
        if self.path is not None:
            return self.path.name
        return redact_url(self.url or "")


def _located(spec: str, app: Any, name: str) -> dict[str, Any]:
    from bastion.target.target import load_app

    hook = load_app(spec)
    found = hook(app) if callable(hook) else hook
    if not isinstance(found, dict):
        raise ConfigError(f"data_stores.{name}.locate {spec} must return a mapping (path, url, backup, key)")
    return found


def resolve_stores(config: Any, app: Any = None) -> list[StoreSpec]:
    """Every store of the model's `data_stores:` section, with `locate` hooks called on the in-process app."""
    stores = getattr(config, "data_stores", None) or {}
    out = []
    for name, store in stores.items():
        found = _located(store.locate, app, name) if store.locate else {}
        backup = store.backup
        path = found.get("path") or (config.resolve_path(store.path) if store.path else None)
        glob = found.get("backup") or (str(config.resolve_path(backup.path)) if backup and backup.path else None)
        spec = StoreSpec(name=name, kind=store.kind, path=Path(path) if path else None,
                         url=found.get("url") or store.url, scratch_url=store.scratch_url, backup_glob=glob,
                         encrypted=bool(backup and backup.encrypted),
                         encryption_format=backup.format if backup else "fernet",
                         rto_s=parse_duration(store.rto) if store.rto else None,
                         rpo_s=parse_duration(store.rpo) if store.rpo else None, rto=store.rto, rpo=store.rpo)
        if "key" in found:
            spec.key = found["key"]
        elif backup is not None and backup.key_env:
            spec.key = os.environ.get(backup.key_env)
            if spec.key is None:
                spec.key_problem = f"${backup.key_env} is not set: the backup cannot be decrypted"
        out.append(spec)
    return out
