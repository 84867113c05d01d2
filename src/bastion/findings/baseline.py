"""Baselines (reviewed fingerprints that do not fail CI) and suppressions (accepted risks with expiry)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bastion.errors import ConfigError
from bastion.findings.model import Finding, normalize_path
from bastion.model.schema import AcceptedRisk

BASELINE_SCHEMA = "bastion-baseline/1"
FINDINGS_SCHEMA = "bastion-findings/1"
# Far above any real baseline or findings file; a bigger one is a mistake or an attack.
MAX_FILE_BYTES = 64 * 1024 * 1024
_FINGERPRINT = re.compile(r"^[0-9a-f]{8,64}$")


@dataclass(frozen=True)
class BaselineEntry:
    fingerprint: str
    check_id: str = ""
    location: str = ""
    title: str = ""
    # Optional review date: after it the entry no longer baselines its finding (`bastion audit` warns first).
    until: date | None = None


@dataclass(frozen=True)
class Baseline:
    """A reviewed set of fingerprints; findings in it do not count for `--fail-on`."""

    entries: tuple[BaselineEntry, ...]
    reviewer: str | None = None
    created_at: str = ""
    source: str = ""
    # Optional expiry of the whole baseline (top-level `until`), on top of per-entry ones.
    until: date | None = None
    fingerprints: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprints", frozenset(e.fingerprint for e in self.entries))

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self.fingerprints

    def entry_until(self, entry: BaselineEntry) -> date | None:
        """The earlier of the entry's and the baseline's expiry, if any."""
        dates = [d for d in (entry.until, self.until) if d is not None]
        return min(dates) if dates else None

    def active_fingerprints(self, today: date | None) -> frozenset[str]:
        """Fingerprints still baselined on `today` (all of them when no day is given)."""
        if today is None:
            return self.fingerprints
        return frozenset(e.fingerprint for e in self.entries
                         if (until := self.entry_until(e)) is None or until >= today)


def atomic_write_text(path: Path, content: str) -> None:
    """Write via a temp file in the same directory and rename: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def baseline_document(findings: Iterable[Finding], *, reviewer: str | None = None,
                      created_at: str | None = None) -> dict[str, Any]:
    """The baseline as plain data: one entry per fingerprint, sorted, with labels for reviewers."""
    unique = {f.fingerprint: f for f in findings}
    entries = [{"fingerprint": fp, "check_id": f.check_id, "location": f.location.label(), "title": f.title}
               for fp, f in sorted(unique.items(), key=lambda kv: (kv[1].check_id, kv[0]))]
    return {"schema": BASELINE_SCHEMA,
            "created_at": created_at or datetime.now(UTC).isoformat(timespec="seconds"),
            "reviewer": reviewer, "findings": entries}


def create_baseline(findings: Iterable[Finding], path: str | Path, *, reviewer: str | None = None) -> Baseline:
    """Write a reviewed baseline file (atomically) and return it."""
    doc = baseline_document(findings, reviewer=reviewer)
    target = Path(path)
    atomic_write_text(target, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return Baseline(entries=tuple(BaselineEntry(**e) for e in doc["findings"]), reviewer=reviewer,
                    created_at=doc["created_at"], source=str(target))


def _read_json(path: Path, what: str) -> Any:
    name = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"cannot read the {what}: {exc.strerror}", file=name) from None
    if not path.is_file():
        raise ConfigError(f"the {what} is not a regular file", file=name)
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"the {what} is {size} bytes, over the {MAX_FILE_BYTES}-byte limit", file=name)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} is not UTF-8 text", file=name) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the {what} is not valid JSON: {exc.msg}", file=name, line=exc.lineno) from None
    except RecursionError:
        raise ConfigError(f"the {what} nests too deeply", file=name) from None


# Other input readers (e.g. the audit's pytest coverage file) share the same limits and errors.
read_json_file = _read_json


def _until(value: Any, name: str, key: str) -> date | None:
    """An optional expiry date (YYYY-MM-DD)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError("must be a date like 2026-12-31", file=name, key=key)


def _text(item: dict[str, Any], key: str, name: str, index: int) -> str:
    value = item.get(key, "")
    if not isinstance(value, str):
        raise ConfigError("must be a string", file=name, key=f"findings[{index}].{key}")
    return value


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline file; anything malformed is a ConfigError naming the file (exit 2)."""
    source = Path(path)
    name = str(source)
    doc = _read_json(source, "baseline")
    if not isinstance(doc, dict):
        raise ConfigError("a baseline is a JSON object", file=name)
    if doc.get("schema") != BASELINE_SCHEMA:
        raise ConfigError(f"expected {BASELINE_SCHEMA!r}, got {doc.get('schema')!r} "
                          "(write one with `bastion baseline create`)", file=name, key="schema")
    items = doc.get("findings")
    if not isinstance(items, list):
        raise ConfigError("must be a list of entries", file=name, key="findings")
    reviewer = doc.get("reviewer")
    if reviewer is not None and not isinstance(reviewer, str):
        raise ConfigError("must be a string or null", file=name, key="reviewer")
    entries = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError("each entry is an object with a fingerprint", file=name, key=f"findings[{index}]")
        fp = item.get("fingerprint")
        if not isinstance(fp, str) or not _FINGERPRINT.match(fp):
            raise ConfigError("must be a lower-case hex fingerprint (8-64 characters)", file=name,
                              key=f"findings[{index}].fingerprint")
        entries.append(BaselineEntry(fingerprint=fp, check_id=_text(item, "check_id", name, index),
                                     location=_text(item, "location", name, index),
                                     title=_text(item, "title", name, index),
                                     until=_until(item.get("until"), name, f"findings[{index}].until")))
    created = doc.get("created_at")
    return Baseline(entries=tuple(entries), reviewer=reviewer,
                    created_at=created if isinstance(created, str) else "", source=name,
                    until=_until(doc.get("until"), name, "until"))


def apply_baseline(findings: Iterable[Finding], baseline: Baseline,
                   today: date | None = None) -> tuple[list[Finding], list[Finding]]:
    """Split findings into (new, baselined); `--fail-on` counts only the new ones.

    With `today`, entries whose `until` date has passed no longer baseline their finding.
    """
    active = baseline.active_fingerprints(today)
    new: list[Finding] = []
    baselined: list[Finding] = []
    for f in findings:
        (baselined if f.fingerprint in active else new).append(f)
    return new, baselined


def load_findings_file(path: str | Path) -> list[Finding]:
    """The findings of a `findings.json` (bastion-findings/1); malformed input is a ConfigError."""
    source = Path(path)
    name = str(source)
    doc = _read_json(source, "findings file")
    if not isinstance(doc, dict) or doc.get("schema") != FINDINGS_SCHEMA:
        raise ConfigError(f"not a Bastion findings file (expected schema {FINDINGS_SCHEMA!r})", file=name)
    items = doc.get("findings")
    if not isinstance(items, list):
        raise ConfigError("must be a list", file=name, key="findings")
    out = []
    for index, item in enumerate(items):
        try:
            out.append(Finding.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(first["msg"], file=name, key=f"findings[{index}].{where}") from None
    return out


def suppression_matches(risk: AcceptedRisk, finding: Finding) -> bool:
    """`threat` names the finding's threat id or its check id (or a check-id prefix like `headers`)."""
    cid = finding.check_id
    if risk.threat != finding.threat_id and cid != risk.threat and not cid.startswith(risk.threat + "."):
        return False
    if risk.path is not None and normalize_path(risk.path) != normalize_path(finding.location.path):
        return False
    if risk.method is not None and risk.method != (finding.location.method or "").upper():
        return False
    return risk.role is None or risk.role == finding.role


def _expired_note(risk: AcceptedRisk, matched: int, today: date) -> str:
    where = " ".join(x for x in (risk.method, risk.path) if x) or "every location"
    who = f", owner {risk.owner}" if risk.owner else ""
    consequence = (f"{matched} finding(s) count again" if matched
                   else "it matches no finding now; remove it from `accepted`")
    return (f"suppression of {risk.threat} at {where} expired on {risk.until.isoformat()} "
            f"(today {today.isoformat()}{who}; reason: {risk.reason}): {consequence}")


def apply_suppressions(findings: Iterable[Finding], accepted: Sequence[AcceptedRisk],
                       today: date) -> tuple[list[Finding], list[Finding], list[str]]:
    """Split findings into (active, suppressed) and explain every expired suppression.

    A suppression holds up to and including its `until` date; after that the finding counts again.
    """
    valid = [r for r in accepted if r.until >= today]
    expired = [r for r in accepted if r.until < today]
    active: list[Finding] = []
    suppressed: list[Finding] = []
    expired_hits = [0] * len(expired)
    for f in findings:
        if any(suppression_matches(r, f) for r in valid):
            suppressed.append(f)
            continue
        active.append(f)
        for index, risk in enumerate(expired):
            if suppression_matches(risk, f):
                expired_hits[index] += 1
    notes = [_expired_note(risk, expired_hits[i], today) for i, risk in enumerate(expired)]
    return active, suppressed, notes


def sarif_baseline_states(findings: Iterable[Finding],
                          baseline_or_previous: Baseline | Iterable[Finding] | Iterable[str]) -> dict[str, str]:
    """SARIF `baselineState` per fingerprint: "new", "unchanged", or "absent" (in the baseline, gone now)."""
    if isinstance(baseline_or_previous, Baseline):
        before = set(baseline_or_previous.fingerprints)
    else:
        before = {x if isinstance(x, str) else x.fingerprint for x in baseline_or_previous}
    states: dict[str, str] = {}
    for f in findings:
        states[f.fingerprint] = "unchanged" if f.fingerprint in before else "new"
    for fp in sorted(before - states.keys()):
        states[fp] = "absent"
    return states
