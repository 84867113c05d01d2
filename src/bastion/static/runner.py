"""`run_static`: every static analyser over a set of paths, bounded, with optional route correlation."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bastion.engine.runner import ScanResult
from bastion.findings.dedup import dedupe
from bastion.findings.model import Finding
from bastion.static.bandit_runner import drop_superseded, run_bandit
from bastion.static.correlate import correlate
from bastion.static.deps import DepsOptions, audit_dependencies, is_manifest
from bastion.static.files import MAX_FILES, Skipped, collect_files, read_text
from bastion.static.git_history import DEFAULT_MAX_BYTES, scan_git_history
from bastion.static.infra import classify, scan_infra
from bastion.static.python_scan import ModuleInfo, analyse_python
from bastion.static.sarif_import import import_sarif
from bastion.static.secrets import load_baseline, scan_secrets
from bastion.static.templates import TEMPLATE_SUFFIXES, scan_template
from bastion.surface.handler_ast import display_path
from bastion.surface.model import Surface
from bastion.target.target import Target

MAX_EVENTS = 50


@dataclass
class StaticResult:
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files_scanned: int = 0
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def run_static(paths: list[str | Path], surface: Surface | None = None, *, bandit: bool = True,
               secrets: bool = True, secrets_baseline: str | Path | None = None,
               max_files: int = MAX_FILES, deps: DepsOptions | None = None, git_depth: int | None = None,
               git_max_bytes: int = DEFAULT_MAX_BYTES, imports: list[str | Path] | None = None) -> StaticResult:
    """Scan `paths` (files or trees); with a surface, findings are tied to routes (see correlate).

    `deps` audits dependency manifests against OSV (default: from BASTION_OSV_OFFLINE/BASTION_OSV_URL,
    else off); `git_depth` > 0 scans that many commits of git history for secrets (default:
    BASTION_GIT_DEPTH, else off); `imports` are SARIF files whose results join the findings.
    A bad `secrets_baseline` or SARIF file raises ConfigError (InputFileError), an unusable OSV source
    OsvError, both before anything is scanned or written; bad files in the tree are only skipped.
    """
    baseline = load_baseline(secrets_baseline) if secrets_baseline else None
    imported = [f for sarif in imports or [] for f in import_sarif(sarif)]
    deps = deps if deps is not None else DepsOptions.from_env()
    git_depth = git_depth if git_depth is not None else _env_int("BASTION_GIT_DEPTH")
    t0 = time.perf_counter()
    fileset = collect_files(list(paths), max_files=max_files)
    skipped = list(fileset.skipped)
    own: list[Finding] = []
    python_files: list[tuple[Path, str]] = []
    text_files: list[tuple[Path, str]] = []
    real_files: dict[str, str] = {}
    modules: dict[str, ModuleInfo] = {}
    manifests: list[tuple[Path, str]] = []
    python_sources: list[tuple[str, str]] = []
    scanned = 0
    for path in fileset.files:
        if deps is not None and is_manifest(path):
            manifests.append((path, display_path(str(path)) or str(path)))
        kind = "python" if path.suffix == ".py" else classify(path) or (
            "template" if path.suffix.lower() in TEMPLATE_SUFFIXES else None)
        if kind is None and not secrets:
            continue
        text = read_text(path, skipped)
        if text is None:
            continue
        scanned += 1
        name = display_path(str(path)) or str(path)
        text_files.append((path, name))
        if kind is None:
            continue
        real_files[name] = os.path.realpath(path)
        if kind == "python":
            before = len(skipped)
            findings, info = analyse_python(text, name, skipped)
            if deps is not None:
                python_sources.append((name, text))
            own.extend(findings)
            modules[real_files[name]] = info
            if len(skipped) == before:  # bandit would only fail again on a file that does not parse
                python_files.append((path, name))
        elif kind == "template":
            own.extend(scan_template(text, name))
        else:
            own.extend(scan_infra(kind, text, name, skipped))
    found = own + (drop_superseded(run_bandit(python_files, skipped), own) if bandit else [])
    if secrets:
        found += scan_secrets(text_files, skipped, baseline)
    notes: list[str] = []
    if secrets and git_depth:
        history = scan_git_history(list(paths), git_depth, max_bytes=git_max_bytes, baseline=baseline,
                                   skipped=skipped)
        found += history
        notes.append(f"git history: last {git_depth} commit(s), {len(history)} secret(s)")
    if deps is not None:
        report = audit_dependencies(manifests, python_sources, deps, skipped)
        found += report.findings
        notes += [f"dependencies: {len(manifests)} manifest(s), {report.packages} pinned package version(s), "
                  f"{sum(f.check_id == 'deps.vulnerable-dependency' for f in report.findings)} advisory finding(s)",
                  *report.notes]
    if surface is not None:
        found = correlate(found, surface, real_files, modules)
    if imported:
        notes.append(f"imported {len(imported)} SARIF result(s) from {len(imports or [])} file(s)")
    return StaticResult(findings=dedupe(found + imported), skipped=skipped, files_scanned=scanned,
                        duration_s=time.perf_counter() - t0, notes=notes)


def _env_int(name: str) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else 0


def static_scan_result(static: StaticResult, paths: list[str | Path], *, seed: int = 0) -> ScanResult:
    """A ScanResult holding only static findings, so every report writer works on it unchanged."""
    roots = [os.path.abspath(p) for p in paths] or [os.getcwd()]
    target = Target(kind="url", base_url=Path(roots[0]).as_uri(), spec=" ".join(str(p) for p in paths))
    events = [*static.notes, *(f"skipped {s.path}: {s.reason}" for s in static.skipped[:MAX_EVENTS])]
    if len(static.skipped) > MAX_EVENTS:
        events.append(f"... and {len(static.skipped) - MAX_EVENTS} more skipped files")
    return ScanResult(target=target, surface=Surface(), seed=seed,
                      started_at=datetime.now(UTC).isoformat(timespec="seconds"), duration_s=static.duration_s,
                      requests=0, checks=[], findings=sorted(static.findings, key=Finding.sort_key), events=events)
