"""The small Python API: `bastion.scan(...)`."""

from __future__ import annotations

from typing import Any


def scan(config: Any = None, **kwargs: Any) -> Any:
    """Run a scan from a threat-model file path or loaded config; returns a ScanResult.

    Keyword arguments are those of `bastion.session.ScanSession` (app, url, checks, seed, ...).
    """
    from bastion.session import scan_from_options

    return scan_from_options(config=config, **kwargs)
