"""Redaction: secrets never appear anywhere in a finding's JSON (evidence, reproduction, location)."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from bastion.findings.evidence import body_contains, exchange_evidence, note, proof_from
from bastion.findings.model import Finding, Location
from bastion.findings.redact import MASK, Redactor
from bastion.target.exchange import Exchange, SentRequest
from bastion.target.target import Target

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInJvbGUiOiJhZG1pbiJ9"
       ".c2lnbmF0dXJlLXRoYXQtaXMtbG9uZy1lbm91Z2g")
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq0secretkeymaterialAAAA\n"
       "b2ZmZXJzIG5vdGhpbmc=\n-----END RSA PRIVATE KEY-----")

TARGETS = [Target.from_url("http://127.0.0.1:8000"),
           Target(kind="wsgi", base_url="http://bastion.local", app=None, spec="myapp:create_app()")]


def variants(secret: str) -> set[str]:
    """Every spelling of `secret` a report could contain: raw, JSON-, repr- and URL-escaped."""
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
            repr(secret)[1:-1], repr(secret.encode())[2:-1],
            quote(secret, safe=""), quote_plus(secret)}


def assert_nowhere(secret: str, finding: Finding) -> None:
    dumped = [finding.model_dump_json(), json.dumps(finding.public_dict()),
              finding.reproduction.curl, finding.reproduction.pytest]
    for text in dumped:
        for spelling in variants(secret):
            assert spelling not in text, f"{secret!r} leaked as {spelling!r}"


def exchange(method: str = "GET", url: str = "http://127.0.0.1:8000/api", req_headers=(), req_body=b"",
             resp_headers=(), resp_body=b"") -> Exchange:
    sent = SentRequest(method, url, [("host", "127.0.0.1:8000"), *req_headers], req_body)
    return Exchange(sent, status=200, headers=[("content-type", "text/plain"), *resp_headers], body=resp_body)


def pipeline(ex: Exchange, target: Target, redactor: Redactor, marker: str = "flaw-marker") -> Finding:
    """What the engine does: evidence + proof → reproduction → redaction."""
    f = Finding(check_id="demo.check", threat_id="demo.threat", title="A flaw", severity="high",
                confidence="firm",
                location=Location(method=ex.request.method, path="/api", url=ex.request.url),
                evidence=[*exchange_evidence(ex, "probe"), note("note", ex.text)],
                proof=proof_from(ex, body_contains(marker)))
    return redactor.redact_with_reproduction(f, target)


CASES: list[tuple[str, dict]] = [
    ("tok_9f8e7d6c5b4a3210zz", {"req_headers": [("authorization", "Bearer tok_9f8e7d6c5b4a3210zz")]}),
    ("YWxpY2U6aHVudGVyMg==", {"req_headers": [("Authorization", "Basic YWxpY2U6aHVudGVyMg==")]}),
    ("opaque-0123456789", {"req_headers": [("authorization", "Token opaque-0123456789")]}),
    ("k3y-abcdef-012345", {"req_headers": [("X-API-Key", "k3y-abcdef-012345")]}),
    (JWT, {"req_headers": [("x-custom", f"jwt={JWT}")], "resp_body": f'{{"access": "{JWT}"}}'.encode()}),
    ("SESSIONVALUE123", {"req_headers": [("cookie", "theme=dark; session=SESSIONVALUE123; lang=en")]}),
    ("t0kenCookieValue", {"req_headers": [("Cookie", "auth_token=t0kenCookieValue")]}),
    ("srv-session-999", {"resp_headers": [("set-cookie", "session=srv-session-999; HttpOnly; Path=/")]}),
    ('Pa"ss w0rd!x', {"method": "POST", "req_headers": [("content-type", "application/json")],
                      "req_body": json.dumps({"username": "alice", "password": 'Pa"ss w0rd!x'}).encode()}),
    ("n3wS3cretPass", {"method": "POST", "req_body": b'{"user":{"new_password":"n3wS3cretPass"}}'}),
    ("hunter2form", {"method": "POST", "req_headers": [("content-type", "application/x-www-form-urlencoded")],
                     "req_body": b"username=alice&password=hunter2form&remember=1"}),
    ("f0rmNewPass", {"method": "POST",
                     "req_body": b"user%5Bpassword%5D=f0rmNewPass&confirm_password=f0rmNewPass"}),
    ("qs-token-value-1", {"url": "http://127.0.0.1:8000/api?access_token=qs-token-value-1&x=1"}),
    ("secretkeymaterial", {"resp_body": PEM.encode()}),
    ("AKIAIOSFODNN7EXAMPLE", {"resp_body": b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"}),
]


@pytest.mark.parametrize("target", TARGETS, ids=["url", "in-process"])
@pytest.mark.parametrize(("secret", "shape"), CASES, ids=[c[0][:12] for c in CASES])
def test_secret_shaped_values_never_leave(secret: str, shape: dict, target: Target) -> None:
    finding = pipeline(exchange(**shape), target, Redactor())
    assert_nowhere(secret, finding)
    assert MASK in finding.model_dump_json()


EXACT = "correct horse battery staple/+&?\"'\\ é"


@pytest.mark.parametrize("target", TARGETS, ids=["url", "in-process"])
def test_exact_secrets_never_leave_in_any_encoding(target: Target) -> None:
    ex = exchange("POST", url=f"http://127.0.0.1:8000/api?q={quote_plus(EXACT)}",
                  req_headers=[("x-note", EXACT), ("content-type", "application/json")],
                  req_body=json.dumps({"memo": EXACT}).encode(),
                  resp_body=f"echo: {EXACT} / {json.dumps(EXACT)}".encode())
    finding = pipeline(ex, target, Redactor([EXACT]), marker=EXACT)
    assert_nowhere(EXACT, finding)


def test_short_secrets_are_ignored_and_text_kept_readable() -> None:
    r = Redactor(["ab", ""])
    assert r.text("abc lab") == "abc lab"
    assert r.text("GET /search?q=hello HTTP/1.1") == "GET /search?q=hello HTTP/1.1"


def test_redaction_keeps_the_fingerprint_and_ids() -> None:
    ex = exchange(req_headers=[("authorization", "Bearer tok_9f8e7d6c5b4a3210zz")])
    raw = Finding(check_id="demo.check", threat_id="demo.threat", title="t", severity="low",
                  confidence="firm",
                  evidence=exchange_evidence(ex, "probe"))
    red = Redactor(["demo.check"]).finding(raw)
    assert red.fingerprint == raw.fingerprint and red.check_id == "demo.check"


def test_redacted_reproduction_is_still_valid_python_and_shell() -> None:
    import shlex

    ex = exchange("POST",
                  req_headers=[("cookie", "session=abc123456789; x=1"), ("authorization", "Bearer " + JWT)],
                  req_body=b'{"password": "it\'s \\"quoted\\""}')
    for target in TARGETS:
        f = pipeline(ex, target, Redactor())
        compile(f.reproduction.pytest, "repro.py", "exec")
        assert shlex.split(f.reproduction.curl)[0] == "curl"
