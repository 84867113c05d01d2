"""Canary correlation: attach the sensor events a finding's probe caused, and confirm the finding."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from bastion.findings.model import Confidence, Evidence, Finding, ProofRequest
from bastion.sensors.events import CANARY_RE, REDACTOR, SensorEvent
from bastion.surface.handler_ast import display_path

MAX_SENSOR_EVIDENCE = 5
_PLAIN = re.compile(r"[A-Za-z0-9_ -]*")
# Events that show what the app did with a probe's data (egress-blocked is the guard's own note).
_CORRELATED_KINDS = frozenset({"sql", "open", "subprocess", "compile", "pickle", "connect", "resolve",
                               "xpath", "ldap", "unmarshal", "template"})
# A view that shows the same data better: the template source instead of the code compiled from it.
_SUPERSEDES = {"template": "compile"}


RequestKey = tuple[str, str, str, tuple[tuple[str, str], ...]]


def request_key(req: ProofRequest) -> RequestKey:
    """How a probe is recognised from a finding's proof: both sides come from `proof_from`."""
    return (req.method.upper(), req.url, req.body or "", tuple(sorted(req.headers.items())))


def _finding_text(f: Finding) -> str:
    parts = [e.content for e in f.evidence] + [e.summary for e in f.evidence]
    if f.proof is not None:
        req = f.proof.request
        parts += [req.url, req.body or "", *req.headers.values(), *(c.value for c in f.proof.conditions)]
    return "\n".join(parts)


def _by_canary(events: Iterable[SensorEvent]) -> dict[str, list[SensorEvent]]:
    index: dict[str, list[SensorEvent]] = defaultdict(list)
    for e in events:
        for token in e.canaries:
            index[token].append(e)
    return index


def _by_request(events: Iterable[SensorEvent]) -> dict[RequestKey, list[SensorEvent]]:
    index: dict[RequestKey, list[SensorEvent]] = defaultdict(list)
    for e in events:
        if e.probe is not None and e.probe.key is not None:
            index[e.probe.key].append(e)
    return index


def _request_values(url: str, body: str | None, headers: dict[str, str]) -> set[str]:
    """The values a request carried (path, query, form, JSON, headers, cookies), to spot them in events."""
    parsed = urlsplit(url)
    values = {unquote(seg) for seg in parsed.path.split("/")}
    for name, value in headers.items():
        values.add(value)
        if name.lower() == "cookie":
            values |= {unquote(c.partition("=")[2]).strip('"') for c in value.split(";")}
    values |= {v for _, v in parse_qsl(parsed.query, keep_blank_values=True)}
    if body:
        values |= {v for _, v in parse_qsl(body, keep_blank_values=True)}
        try:
            values |= set(_json_leaves(json.loads(body)))
        except (ValueError, RecursionError):
            pass
    # Only payload-shaped values (quotes, dots, operators...): a benign default like `bastion`
    # shows up in the app's own statements whether or not it is injectable.
    return {v for v in values if len(v) >= 3 and not _PLAIN.fullmatch(v)}


def _json_leaves(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _json_leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_leaves(v)
    elif value is not None:
        yield str(value)


def _matches(f: Finding, canaries: dict[str, list[SensorEvent]],
             requests: dict[RequestKey, list[SensorEvent]]) -> list[tuple[SensorEvent, str]]:
    """(event, marker) pairs: events carrying one of the finding's canaries, else events its proof
    request caused that contain one of that request's values (the injected payload)."""
    text = _finding_text(f)
    tokens = set(CANARY_RE.findall(text))
    hits: list[tuple[SensorEvent, str]] = []
    for token, events in canaries.items():
        # Containment both ways: a canary may be followed by more alphanumerics in either text.
        marker = token if token in text else next((t for t in tokens if t in token), None)
        hits += [(e, marker) for e in events if marker]
    # Without a canary, only an input finding's proof request is matched: its injected value is what
    # an event must contain (a route-level finding like an exposed file has no payload to look for).
    if not hits and f.proof is not None and f.location.input is not None:
        req = f.proof.request
        values = _request_values(req.url, req.body, req.headers)
        # What the proof expects to see (an SSTI product) also shows in the compiled template.
        values |= {c.value for c in f.proof.conditions if c.kind == "body_contains" and len(c.value) >= 6}
        for e in requests.get(request_key(req), []):
            marker = next((v for v in sorted(values, key=lambda v: (-len(v), v)) if v in e.raw_detail), None)
            if marker:
                hits.append((e, marker))
    hits = [(e, m) for e, m in hits if e.kind in _CORRELATED_KINDS]
    kinds = {e.kind for e, _ in hits}
    hidden = {_SUPERSEDES[k] for k in kinds if k in _SUPERSEDES}
    return [(e, m) for e, m in hits if e.kind not in hidden]


def _excerpt(detail: str, marker: str, width: int = 160) -> str:
    """The part of a long detail around the marker (compiled templates are long)."""
    at = detail.find(marker)
    if len(detail) <= 2 * width or at < 0:
        return detail
    start, end = max(0, at - width), at + len(marker) + width
    return ("…" if start else "") + detail[start:end] + ("…" if end < len(detail) else "")


def _evidence(event: SensorEvent, marker: str) -> Evidence:
    file = display_path(event.file) if event.file else None
    meta = {"sensor": event.kind}
    if file:
        meta |= {"file": file, "line": str(event.line)}
    where = f" at {file}:{event.line}" if file else ""
    return Evidence(kind="sensor", summary=f"{event.kind} sensor saw the probe's data{where}",
                    content=REDACTOR.text(_excerpt(event.raw_detail, marker)), meta=meta)


def correlate(findings: list[Finding], events: list[SensorEvent]) -> list[Finding]:
    """Findings whose probe shows up in a sensor event get that evidence, a file:line, `confirmed`
    (tentative ones keep their confidence)."""
    if not events:
        return findings
    canaries, requests = _by_canary(events), _by_request(events)
    out = []
    for f in findings:
        hits = _matches(f, canaries, requests)
        out.append(_attach(f, hits) if hits else f)
    return out


def _attach(f: Finding, hits: list[tuple[SensorEvent, str]]) -> Finding:
    unique = {(ev.summary, ev.content): ev for ev in (_evidence(e, m) for e, m in hits)}
    # Sorted, so the order concurrent probes ran in never changes the output; located events first.
    chosen = [unique[k] for k in sorted(unique, key=lambda k: ("file" not in unique[k].meta, k))]
    chosen = chosen[:MAX_SENSOR_EVIDENCE]
    update: dict[str, Any] = {"evidence": [*f.evidence, *chosen]}
    # A tentative finding is a hint the check itself doubts (e.g. only a SyntaxError seen): the
    # sensor evidence is attached for the reader, the check's verdict stands.
    if f.confidence != Confidence.tentative:
        update["confidence"] = Confidence.confirmed
    located = next((ev for ev in chosen if "file" in ev.meta), None)
    if located is not None and not f.location.file:
        update["location"] = f.location.model_copy(
            update={"file": located.meta["file"], "line": int(located.meta["line"])})
    return f.model_copy(update=update)
