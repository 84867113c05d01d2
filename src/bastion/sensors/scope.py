"""Which code is the app's own, and which hosts the app may reach, for an in-process target."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from typing import Any


def _module_root(module: str) -> str | None:
    """The directory of a module's package (its own directory for a package, its parent's otherwise)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isabs(spec.origin):
        return None
    return os.path.dirname(spec.origin)


def app_roots(app: Any, spec: str = "") -> list[str]:
    """Directories holding the app's code: from the `module:factory` spec, else the app's module."""
    modules = []
    if spec and ":" in spec:
        modules.append(spec.partition(":")[0])
    import_name = getattr(app, "import_name", None)  # Flask
    if isinstance(import_name, str):
        modules.append(import_name)
    if not modules:
        modules.append(type(app).__module__ if not callable(getattr(app, "__module__", None)) else "")
        modules.append(getattr(app, "__module__", "") or "")
    roots = {r for m in modules if m and m != "__main__" for r in [_module_root(m)] if r}
    return sorted(roots)


def egress_allowlist(scope_hosts: Iterable[str]) -> set[str]:
    """Scope hosts plus loopback (the app's own local services); every other host is blocked."""
    return {h.lower() for h in scope_hosts if h} | {"localhost", "127.0.0.1", "::1"}
