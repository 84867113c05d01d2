"""findings.json: the public contract, key order, determinism apart from timing fields."""

from __future__ import annotations

import json

from report_samples import UNICODE, make_result

from bastion import __version__
from bastion.report import findings_document, findings_json, strip_timings


def test_document_follows_the_output_contract(result):
    doc = json.loads(findings_json(result))
    assert list(doc) == ["schema", "run", "findings"]
    assert doc["schema"] == "bastion-findings/1"
    run = doc["run"]
    assert list(run)[:8] == ["tool", "version", "seed", "target", "started_at", "duration_s", "requests",
                             "checks"]
    assert (run["tool"], run["version"], run["seed"]) == ("bastion", __version__, 7)
    assert run["checks"][2]["errors"] and run["events"] == ["scan stopped early: request budget"]
    assert [f["fingerprint"] for f in doc["findings"]] == [f.fingerprint for f in result.findings]
    first = doc["findings"][1]
    assert list(first)[:5] == ["check_id", "threat_id", "title", "severity", "confidence"]
    assert first["location"]["input"] == {"in": "query", "name": "q"}
    assert (first["location"]["file"], first["location"]["line"]) == ("app/search.py", 41)
    assert "proof" not in first
    assert doc["findings"] == [f.public_dict() for f in result.findings]


def test_text_is_indented_utf8_and_round_trips(result):
    text = findings_json(result)
    assert text.startswith('{\n  "schema": "bastion-findings/1",\n  "run": {\n    "tool"')
    assert UNICODE in text  # not \\u-escaped
    assert json.loads(text) == findings_document(result)


def test_same_seed_gives_identical_output_except_timings():
    a = make_result(started_at="2026-01-01T00:00:00+00:00", duration_s=1.0)
    b = make_result(started_at="2026-05-05T10:10:10+00:00", duration_s=9.5)
    b.checks[0].duration_s = 42.0
    assert findings_json(a) != findings_json(b)
    assert findings_json(a, include_timings=False) == findings_json(b, include_timings=False)
    assert strip_timings(json.loads(findings_json(a))) == strip_timings(json.loads(findings_json(b)))


def test_strip_timings_removes_only_timing_fields_and_copies(result):
    doc = findings_document(result)
    stripped = strip_timings(doc)
    assert "started_at" not in stripped["run"] and "duration_s" not in stripped["run"]
    assert all("duration_s" not in c for c in stripped["run"]["checks"])
    assert stripped["run"]["requests"] == 65 and stripped["findings"] == doc["findings"]
    assert "started_at" in doc["run"]  # the input is untouched
    assert findings_document(result, include_timings=False) == stripped
