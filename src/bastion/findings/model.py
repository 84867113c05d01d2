"""The one Finding model every check, report and history store shares."""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.lower())
        except ValueError:
            known = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {value!r}; use one of {known}") from None


_SEVERITY_RANK = {Severity.critical: 4, Severity.high: 3, Severity.medium: 2, Severity.low: 1,
                  Severity.info: 0}


class Confidence(StrEnum):
    """`confirmed` only with proof (canary executed, difference reproduced, sensor saw it)."""

    confirmed = "confirmed"
    firm = "firm"
    tentative = "tentative"

    @property
    def rank(self) -> int:
        return {"confirmed": 2, "firm": 1, "tentative": 0}[self.value]


InputLocationName = Literal["path", "query", "form", "json", "multipart", "header", "cookie", "body"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InputRef(_Model):
    in_: InputLocationName = Field(alias="in")
    name: str


class Location(_Model):
    method: str | None = None
    path: str | None = None
    url: str | None = None
    input: InputRef | None = None
    file: str | None = None
    line: int | None = None

    def sort_key(self) -> tuple[str, str, str, str, str, int]:
        inp = self.input
        return (self.path or "", self.method or "", inp.in_ if inp else "", inp.name if inp else "",
                self.file or "", self.line or 0)

    def label(self) -> str:
        parts = []
        if self.method or self.path:
            parts.append(f"{self.method or ''} {self.path or ''}".strip())
        if self.input:
            parts.append(f"[{self.input.in_}:{self.input.name}]")
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        return " ".join(parts) or "(target)"


class Evidence(_Model):
    """One piece of proof. `kind` says what it is; `content` is an excerpt, already redacted."""

    kind: Literal["request", "response", "sensor", "source", "note"]
    summary: str
    content: str = ""
    meta: dict[str, str] = Field(default_factory=dict)


class ProofCondition(_Model):
    """One observable fact that holds while the flaw exists (a tiny, fixed vocabulary).

    The generated pytest reproduction re-sends the proof request and asserts that the conditions do
    *not* all hold any more.
    """

    kind: Literal["body_contains", "body_matches", "header_contains", "header_matches", "header_missing",
                  "status_in", "elapsed_at_least"]
    value: str = ""
    header: str | None = None
    statuses: list[int] = Field(default_factory=list)
    seconds: float = 0.0

    def holds(self, status: int, headers: Any, text: str, elapsed: float) -> bool:
        """Evaluate against a response; `headers` maps lower-case names to lists of values."""
        values = headers.get(self.header.lower(), []) if self.header else []
        match self.kind:
            case "body_contains":
                return self.value in text
            case "body_matches":
                return re.search(self.value, text) is not None
            case "header_contains":
                return any(self.value in v for v in values)
            case "header_matches":
                return any(re.search(self.value, v) for v in values)
            case "header_missing":
                return not values
            case "status_in":
                return status in self.statuses
            case "elapsed_at_least":
                return elapsed >= self.seconds
        return False  # pragma: no cover


class ProofRequest(_Model):
    method: str
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None


class Proof(_Model):
    """The request that shows the flaw and the conditions its response satisfies while it exists."""

    request: ProofRequest
    conditions: list[ProofCondition]


class Reproduction(_Model):
    curl: str = ""
    pytest: str = ""


class Finding(_Model):
    check_id: str
    threat_id: str
    title: str
    severity: Severity
    confidence: Confidence
    cwe: int | None = None
    owasp: list[str] = Field(default_factory=list)
    location: Location = Field(default_factory=Location)
    role: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    reproduction: Reproduction = Field(default_factory=Reproduction)
    remediation: str = ""
    fingerprint: str = ""
    # Machine-checkable proof, used to build the reproduction; not part of the public JSON.
    proof: Proof | None = Field(default=None, exclude=True)

    def model_post_init(self, __context: Any) -> None:
        if not self.fingerprint:
            self.fingerprint = compute_fingerprint(self)

    def sort_key(self) -> tuple[int, str, tuple[str, str, str, str, str, int], str]:
        return (-self.severity.rank, self.check_id, self.location.sort_key(), self.fingerprint)

    def public_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude={"proof"})


_PARAM_RE = re.compile(r"\{[^}]*\}|<[^>]*>")


def normalize_path(path: str | None) -> str:
    """`/users/<int:id>` and `/users/{user_id}` normalise to `/users/{}`."""
    if not path:
        return ""
    return _PARAM_RE.sub("{}", path.rstrip("/") or "/")


def compute_fingerprint(finding: Finding) -> str:
    """Hash of check, normalised location and parameter: never timestamps, random values or secrets."""
    loc = finding.location
    parts = [
        finding.check_id,
        (loc.method or "").upper(),
        normalize_path(loc.path),
        loc.input.in_ if loc.input else "",
        (loc.input.name.lower() if loc.input and loc.input.in_ in ("header",) else loc.input.name)
        if loc.input else "",
        # A route is the identity of an HTTP finding; the handler's file path depends on where
        # Bastion runs from, so it only identifies findings that have no route (static ones).
        "" if (loc.method or loc.path) else (loc.file or ""),
        finding.role or "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
