"""Turn exchanges into evidence and proofs."""

from __future__ import annotations

import re

from bastion.findings.model import Evidence, Proof, ProofCondition, ProofRequest
from bastion.target.exchange import Exchange

EXCERPT = 600
_SKIP_REQUEST_HEADERS = {"accept-encoding", "user-agent", "connection", "host", "content-length", "accept"}


# Headers whose values change with the clock, not with the flaw: left out so equal runs match.
_VOLATILE_RESPONSE_HEADERS = {"date", "age", "expires", "last-modified", "etag", "x-request-id", "x-runtime"}
_COOKIE_DATE = re.compile(r"(?i)(;\s*expires=)[^;]*")


def _stable_header_value(name: str, value: str) -> str:
    return stable_cookie(value) if name.lower() == "set-cookie" else value


def stable_cookie(raw: str) -> str:
    """A Set-Cookie value with its clock-dependent Expires date masked, so equal runs give equal evidence."""
    return _COOKIE_DATE.sub(r"\1<date>", raw)


def _kept(name: str, value: str) -> bool:
    """Client noise is dropped; an explicit Accept (not `*/*`) can decide the response, so it stays."""
    lname = name.lower()
    return lname not in _SKIP_REQUEST_HEADERS or (lname == "accept" and value.strip() != "*/*")


def excerpt(text: str, marker: str | None = None, width: int = EXCERPT) -> str:
    """A window of `text` around `marker` (or its start), with an ellipsis where cut."""
    if len(text) <= width:
        return text
    pos = text.find(marker) if marker else -1
    if pos < 0:
        return text[:width] + "…"
    # Stay on the marker's own lines: neighbouring lines (other stored records, timestamps) vary
    # between runs, and equal runs must give equal evidence.
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos + len(marker or ""))
    line_end = len(text) if line_end < 0 else line_end
    start = max(line_start, pos - width // 2)
    end = min(line_end, start + width)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def request_evidence(ex: Exchange, summary: str = "request") -> Evidence:
    req = ex.request
    lines = [f"{req.method} {req.url}"]
    lines += [f"{k}: {v}" for k, v in req.headers if _kept(k, v)]
    body = req.body.decode("utf-8", "replace")
    if body:
        lines += ["", excerpt(body)]
    return Evidence(kind="request", summary=summary, content="\n".join(lines),
                    meta={"method": req.method, "url": req.url})


def response_evidence(ex: Exchange, summary: str = "response", marker: str | None = None,
                      include_body: bool = True) -> Evidence:
    lines = [f"HTTP {ex.status}"] + [f"{k}: {_stable_header_value(k, v)}" for k, v in ex.headers
                                     if k.lower() not in _VOLATILE_RESPONSE_HEADERS]
    if include_body and ex.body:
        lines += ["", excerpt(ex.text, marker)]
    meta = {"status": str(ex.status)}
    if ex.events:
        meta["events"] = ",".join(ex.events)
    return Evidence(kind="response", summary=summary, content="\n".join(lines), meta=meta)


def exchange_evidence(ex: Exchange, summary: str, marker: str | None = None) -> list[Evidence]:
    return [request_evidence(ex, summary), response_evidence(ex, marker=marker)]


def note(summary: str, content: str = "") -> Evidence:
    return Evidence(kind="note", summary=summary, content=content)


def proof_from(ex: Exchange, *conditions: ProofCondition) -> Proof:
    req = ex.request
    headers = {k: v for k, v in req.headers if _kept(k, v)}
    body = req.body.decode("utf-8", "replace") if req.body else None
    return Proof(request=ProofRequest(method=req.method, url=req.url, headers=headers, body=body),
                 conditions=list(conditions))


def body_contains(text: str) -> ProofCondition:
    return ProofCondition(kind="body_contains", value=text)


def body_matches(regex: str) -> ProofCondition:
    return ProofCondition(kind="body_matches", value=regex)


def header_contains(header: str, text: str) -> ProofCondition:
    return ProofCondition(kind="header_contains", header=header, value=text)


def header_matches(header: str, regex: str) -> ProofCondition:
    return ProofCondition(kind="header_matches", header=header, value=regex)


def header_missing(header: str) -> ProofCondition:
    return ProofCondition(kind="header_missing", header=header)


def status_in(*statuses: int) -> ProofCondition:
    return ProofCondition(kind="status_in", statuses=list(statuses))


def elapsed_at_least(seconds: float) -> ProofCondition:
    return ProofCondition(kind="elapsed_at_least", seconds=seconds)
