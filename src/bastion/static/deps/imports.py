"""Is a dependency imported by the app? Top-level imports of the scanned sources vs the dist's modules.

A distribution's import names come from its installed metadata (`top_level.txt`, else the RECORD
file list) in the given site-packages or the running environment; when it is not installed, from a
short table of well-known renames, then the name itself (`-` → `_`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from importlib import metadata
from pathlib import PurePosixPath

from packaging.utils import canonicalize_name

# Distributions whose import name is not their project name (only used when metadata is missing).
KNOWN_MODULES: dict[str, tuple[str, ...]] = {
    "pyyaml": ("yaml",), "pillow": ("PIL",), "beautifulsoup4": ("bs4",), "scikit-learn": ("sklearn",),
    "python-dateutil": ("dateutil",), "opencv-python": ("cv2",), "pyjwt": ("jwt",), "python-jose": ("jose",),
    "protobuf": ("google",), "attrs": ("attr", "attrs"), "pycryptodome": ("Crypto",),
    "pycryptodomex": ("Cryptodome",), "dnspython": ("dns",), "python-multipart": ("multipart",),
    "setuptools": ("setuptools", "pkg_resources"), "msgpack-python": ("msgpack",), "pyopenssl": ("OpenSSL",),
    "python-dotenv": ("dotenv",), "mysqlclient": ("MySQLdb",), "psycopg2-binary": ("psycopg2",),
    "django-rest-framework": ("rest_framework",), "djangorestframework": ("rest_framework",),
    "typing-extensions": ("typing_extensions",), "pymongo": ("pymongo", "bson", "gridfs"),
}


def imported_modules(sources: Iterable[tuple[str, str]]) -> set[str]:
    """Top-level module names imported (absolutely) anywhere in the (name, text) Python sources."""
    found: set[str] = set()
    for _name, text in sources:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # already recorded as skipped by the Python analyser
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def _from_files(dist: metadata.Distribution) -> set[str]:
    out: set[str] = set()
    for entry in dist.files or []:
        parts = PurePosixPath(str(entry)).parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".egg-info", ".data")):
            continue
        if len(parts) == 1:
            stem, _, suffix = parts[0].partition(".")
            if suffix in ("py", "pyc") or suffix.endswith(("so", "pyd")):
                out.add(stem)
        elif parts[-1].endswith((".py", ".pyi", ".so", ".pyd")):  # a package directory (or namespace)
            out.add(parts[0])
    return {m for m in out if m.isidentifier()}


def dist_modules(name: str, site_packages: str | None = None) -> set[str]:
    """Import names of distribution `name` (normalised), from metadata when installed."""
    try:
        found = metadata.distributions(name=name, path=[site_packages]) if site_packages \
            else metadata.distributions(name=name)
        dist = next(iter(found), None)
    except (OSError, ValueError):
        dist = None
    if dist is not None:
        top = dist.read_text("top_level.txt")
        modules = {line.strip() for line in (top or "").splitlines() if line.strip().isidentifier()}
        if not modules:
            modules = _from_files(dist)
        if modules:
            return modules
    key = canonicalize_name(name)
    guess = {key.replace("-", "_"), key.replace("-", "_").removeprefix("python_").removeprefix("py_")}
    return set(KNOWN_MODULES.get(key, ())) | guess
