"""Write a run's reports to a directory: fixed file names, each file replaced atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from bastion.engine.runner import ScanResult
from bastion.errors import BastionError
from bastion.report.defectdojo import defectdojo_json
from bastion.report.html_report import html_report
from bastion.report.json_report import findings_json
from bastion.report.junit import junit_xml
from bastion.report.markdown import markdown_report
from bastion.report.sarif import sarif_json

Renderer = Callable[[ScanResult], str]

# format name -> (file name, renderer)
FILE_FORMATS: dict[str, tuple[str, Renderer]] = {
    "json": ("findings.json", findings_json),
    "sarif": ("bastion.sarif", sarif_json),
    "junit": ("junit.xml", junit_xml),
    "html": ("report.html", html_report),
    "md": ("report.md", markdown_report),
    "defectdojo": ("defectdojo.json", defectdojo_json),
}
# Formats that are not files (the CLI prints them); accepted here so one --format list serves both.
STREAM_FORMATS = ("console",)
FORMATS: tuple[str, ...] = (*FILE_FORMATS, *STREAM_FORMATS)


def validate_formats(formats: list[str]) -> list[str]:
    """Normalised, de-duplicated format names; an unknown one is a BastionError naming it."""
    chosen: list[str] = []
    for raw in formats:
        name = raw.strip().lower()
        if name not in FORMATS:
            raise BastionError(f"unknown report format {raw!r}; valid formats: {', '.join(FORMATS)}")
        if name not in chosen:
            chosen.append(name)
    return chosen


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same directory and os.replace: all or nothing."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; a report is meant to be read by others (CI artifacts, web servers).
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_reports(result: ScanResult, formats: list[str], out_dir: Path,
                  *, baseline_states: dict[str, str] | None = None) -> list[Path]:
    """Render and write each requested file format to `out_dir`; returns the paths written.

    `baseline_states` (fingerprint -> new/unchanged/absent) sets SARIF's `baselineState`.
    """
    chosen = [f for f in validate_formats(formats) if f in FILE_FORMATS]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in chosen:
        name, render = FILE_FORMATS[fmt]
        path = out_dir / name
        text = sarif_json(result, baseline_states) if fmt == "sarif" else render(result)
        # Lone surrogates (undecodable bytes a target sent) cannot be UTF-8: replace, never crash.
        atomic_write(path, text.encode("utf-8", errors="replace"))
        written.append(path)
    return written
