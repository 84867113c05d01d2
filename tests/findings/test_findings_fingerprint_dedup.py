"""Fingerprints are stable across processes and spellings; dedup merges; the order is fixed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bastion.findings.dedup import MAX_EVIDENCE, dedupe
from bastion.findings.model import Confidence, Evidence, Finding, InputRef, Location, Severity, normalize_path


def make(check_id: str = "injection.sql", path: str = "/users/<int:id>", name: str = "q", in_: str = "query",
         method: str = "GET", severity: str = "high", confidence: str = "firm", role: str | None = None,
         evidence: list[Evidence] | None = None, title: str = "SQL injection") -> Finding:
    return Finding(check_id=check_id, threat_id=check_id, title=title, severity=Severity(severity),
                   confidence=Confidence(confidence), cwe=89, owasp=["A03:2021"],
                   location=Location(method=method, path=path, input=InputRef(**{"in": in_, "name": name})),
                   role=role, evidence=evidence or [])


# Hard-coded: changing the fingerprint recipe breaks every user's baseline and history; do it on purpose.
EXPECTED = "2306363bf6a105c3ade63c45"


def test_fingerprint_is_a_known_value() -> None:
    assert make().fingerprint == EXPECTED


def test_fingerprint_is_the_same_in_another_process() -> None:
    code = ("from bastion.findings.model import *\n"
            "f = Finding(check_id='injection.sql', threat_id='injection.sql', title='other title',"
            " severity='low', confidence='tentative',"
            " location=Location(method='get', path='/users/{user_id}/',"
            " input=InputRef(**{'in': 'query', 'name': 'q'})))\n"
            "print(f.fingerprint)")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == EXPECTED


def test_path_parameter_spellings_are_equal() -> None:
    spellings = ["/users/<int:id>", "/users/<id>", "/users/{id}", "/users/{user_id}", "/users/{id}/"]
    assert {make(path=p).fingerprint for p in spellings} == {EXPECTED}
    assert normalize_path("/a/<path:rest>/b/{x}") == "/a/{}/b/{}"
    assert normalize_path("/") == "/"


def test_fingerprint_ignores_evidence_title_severity_confidence() -> None:
    other = make(title="changed", severity="low", confidence="confirmed",
                 evidence=[Evidence(kind="note", summary="random canary bst0123456789")])
    assert other.fingerprint == EXPECTED


@pytest.mark.parametrize("change", [
    {"check_id": "injection.xss"}, {"path": "/users/<int:id>/edit"}, {"name": "id"}, {"in_": "json"},
    {"method": "POST"}, {"role": "alice"},
])
def test_different_input_gives_a_different_fingerprint(change: dict[str, str]) -> None:
    assert make(**change).fingerprint != EXPECTED


def test_header_names_are_case_insensitive_but_others_are_not() -> None:
    assert make(in_="header", name="X-Token").fingerprint == make(in_="header", name="x-token").fingerprint
    assert make(name="Q").fingerprint != make(name="q").fingerprint


def test_fingerprint_survives_json_round_trip() -> None:
    f = make()
    again = Finding.model_validate(json.loads(f.model_dump_json(by_alias=True)))
    assert again.fingerprint == f.fingerprint
    assert again == f


def ev(summary: str) -> Evidence:
    return Evidence(kind="note", summary=summary)


def test_dedup_merges_evidence_and_keeps_the_most_confident() -> None:
    weak = make(confidence="tentative", severity="high", evidence=[ev("a"), ev("shared")], title="weak")
    strong = make(confidence="confirmed", severity="medium", evidence=[ev("shared"), ev("b")], title="strong")
    other = make(check_id="injection.xss")
    out = dedupe([weak, other, strong])
    assert len(out) == 2
    merged = next(f for f in out if f.check_id == "injection.sql")
    assert merged.title == "strong" and merged.confidence == Confidence.confirmed
    assert [e.summary for e in merged.evidence] == ["shared", "b", "a"]
    assert merged.fingerprint == EXPECTED


def test_dedup_is_order_independent() -> None:
    a = make(confidence="firm", evidence=[ev("1")])
    b = make(confidence="confirmed", evidence=[ev("2")])
    c = make(check_id="headers.csp", severity="low")
    assert dedupe([a, b, c]) == dedupe([c, b, a])


def test_dedup_caps_evidence() -> None:
    many = [make(evidence=[ev(str(i))]) for i in range(MAX_EVIDENCE + 5)]
    (merged,) = dedupe(many)
    assert len(merged.evidence) == MAX_EVIDENCE


def test_sort_order_is_severity_then_check_then_location() -> None:
    findings = [
        make(check_id="b.check", severity="low", path="/a"),
        make(check_id="a.check", severity="low", path="/b"),
        make(check_id="a.check", severity="low", path="/a"),
        make(check_id="z.check", severity="critical", path="/z"),
        make(check_id="a.check", severity="info", path="/a", name="r"),
        make(check_id="m.check", severity="high", path="/m", name="b"),
        make(check_id="m.check", severity="high", path="/m", name="a"),
    ]
    out = dedupe(reversed(findings))
    assert [(f.severity.value, f.check_id, f.location.path, f.location.input.name) for f in out] == [
        ("critical", "z.check", "/z", "q"),
        ("high", "m.check", "/m", "a"),
        ("high", "m.check", "/m", "b"),
        ("low", "a.check", "/a", "q"),
        ("low", "a.check", "/b", "q"),
        ("low", "b.check", "/a", "q"),
        ("info", "a.check", "/a", "r"),
    ]
