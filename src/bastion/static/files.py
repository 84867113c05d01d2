"""Walk the trees to scan, bounded: file count, file size, binary and undecodable files, symlink loops.

Nothing here raises on bad input: every file that is not scanned is recorded with the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_FILES = 20_000
# Directories that hold other people's code or build output, never the project's own sources.
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".tox",
                       ".nox", ".mypy_cache", ".ruff_cache", ".pytest_cache", "site-packages", "dist",
                       "build", ".eggs"})


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class FileSet:
    """The files to scan and the ones skipped, with why."""

    files: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    truncated: bool = False


def collect_files(paths: list[str | Path], *, max_files: int = MAX_FILES) -> FileSet:
    """Regular files under `paths` (sorted, deduplicated by real path), at most `max_files`."""
    out = FileSet()
    seen: set[str] = set()
    for root in paths:
        root = Path(root)
        if not root.exists():
            out.skipped.append(Skipped(str(root), "does not exist"))
            continue
        if root.is_file():
            _add(out, seen, root, max_files)
            continue
        # followlinks=False: a symlinked directory is never entered, so symlink loops cannot recurse.
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=None):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in sorted(filenames):
                if not _add(out, seen, Path(dirpath) / name, max_files):
                    out.skipped.append(Skipped(str(root), f"more than {max_files} files: the rest not scanned"))
                    out.truncated = True
                    return out
    return out


def _add(out: FileSet, seen: set[str], path: Path, max_files: int) -> bool:
    """Add one file (or record why not); False when the file cap is reached."""
    try:
        if path.is_symlink() and not path.exists():
            out.skipped.append(Skipped(str(path), "broken or looping symlink"))
            return True
        real = os.path.realpath(path)
        if not os.path.isfile(real):
            return True
    except (OSError, RuntimeError):  # ELOOP and friends
        out.skipped.append(Skipped(str(path), "unreadable path (symlink loop?)"))
        return True
    if real in seen:
        return True
    if len(out.files) >= max_files:
        return False
    seen.add(real)
    out.files.append(path)
    return True


def read_text(path: Path, skipped: list[Skipped], *, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """A file's text, or None (reason recorded) when it is too big, binary, not UTF-8 or unreadable."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            skipped.append(Skipped(str(path), f"larger than {max_bytes} bytes"))
            return None
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        skipped.append(Skipped(str(path), f"cannot read: {exc.strerror or exc}"))
        return None
    if len(raw) > max_bytes:
        skipped.append(Skipped(str(path), f"larger than {max_bytes} bytes"))
        return None
    if b"\x00" in raw[:8192]:
        skipped.append(Skipped(str(path), "binary file"))
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        skipped.append(Skipped(str(path), f"not valid UTF-8 (offset {exc.start})"))
        return None
