"""Reproductions: a `curl` line and a standalone pytest test that fails while the flaw exists."""

from __future__ import annotations

import base64
import contextlib
import re
import shlex
from urllib.parse import unquote

from bastion.findings.model import Finding, Proof, ProofCondition, Reproduction
from bastion.sensors.correlate import _request_values
from bastion.sensors.events import CANARY_RE
from bastion.target.target import Target

_SERVED = "${TARGET:-http://127.0.0.1:8000}"


def _relative(url: str, base: str) -> str:
    return url[len(base):] or "/" if url.startswith(base) else url


def curl_command(proof: Proof, target: Target) -> str:
    req = proof.request
    parts = ["curl", "-i", "-s", "-X", req.method]
    for k, v in req.headers.items():
        parts += ["-H", f"{k}: {v}"]
    if req.body:
        parts += ["--data-binary", req.body]
    quoted = " ".join(shlex.quote(p) for p in parts)
    if target.in_process:
        # In-process apps have no address: serve the app, point TARGET at it.
        path = _relative(req.url, target.base_url)
        return f'{quoted} "{_SERVED}"{shlex.quote(path)}'
    return f"{quoted} {shlex.quote(req.url)}"


def _condition_expr(c: ProofCondition) -> str:
    h = repr((c.header or "").lower())
    match c.kind:
        case "body_contains":
            return f"{c.value!r} in r.text"
        case "body_matches":
            return f"re.search({c.value!r}, r.text) is not None"
        case "header_contains":
            return f"any({c.value!r} in v for v in r.headers.get_list({h}))"
        case "header_matches":
            return f"any(re.search({c.value!r}, v) for v in r.headers.get_list({h}))"
        case "header_missing":
            return f"{h} not in r.headers"
        case "status_in":
            return f"r.status_code in {tuple(c.statuses)!r}"
        case "elapsed_at_least":
            return f"r.elapsed.total_seconds() >= {c.seconds!r}"
    raise ValueError(c.kind)  # pragma: no cover


def _test_name(finding: Finding) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", f"{finding.check_id}_{finding.location.path or ''}".lower()).strip("_")
    return f"test_{slug[:60]}_is_fixed"


def _docstring_text(text: str) -> str:
    """Escape text for a triple-quoted literal: quotes, backslashes, NULs and control characters."""
    out = []
    for ch in text:
        if ch == "\n" or (ch.isprintable() and ch not in '\\"'):
            out.append(ch)
        elif ch in '\\"':
            out.append("\\" + ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _client_source(proof: Proof, target: Target) -> tuple[str, str]:
    """(loader, body of `_send()`): how the test re-creates the target and re-sends the proof request."""
    req = proof.request
    path = _relative(req.url, target.base_url)
    body = f"content={req.body.encode('utf-8')!r}, " if req.body else ""
    send = (f"client.request({req.method!r}, {path!r}, headers={dict(req.headers)!r}, {body}"
            "follow_redirects=False)")
    if target.kind == "url":
        client = (f"    with httpx.Client(base_url={target.base_url!r}, timeout=30) as client:\n"
                  f"        r = {send}\n        r.read()\n        return r\n")
        loader = ""
    else:
        module, _, expr = target.spec.partition(":")
        loader = (f"_app_module = importlib.import_module({module!r})\n\n\ndef _app():\n"
                  f"    return eval({expr!r}, vars(_app_module))  # the app factory Bastion scanned\n\n")
        if target.kind == "wsgi":
            client = (f"    transport = httpx.WSGITransport(app=_app(), raise_app_exceptions=False)\n"
                      f"    with httpx.Client(transport=transport, base_url={target.base_url!r}) as client:\n"
                      f"        r = {send}\n        r.read()\n        return r\n")
        else:
            client = (f"    async def go():\n"
                      f"        transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)\n"
                      f"        async with httpx.AsyncClient(transport=transport,"
                      f" base_url={target.base_url!r}) as client:\n"
                      f"            r = await {send}\n            await r.aread()\n            return r\n\n"
                      f"    return asyncio.run(go())\n")
    return loader, client


def pytest_source(finding: Finding, proof: Proof, target: Target) -> str:
    loader, client = _client_source(proof, target)
    conditions = ",\n        ".join(_condition_expr(c) for c in proof.conditions)
    doc = _docstring_text(f"Bastion reproduction: {finding.check_id} at {finding.location.label()}.\n\n"
                          f"{finding.title}\nFails while the flaw exists; passes once it is fixed.\n")
    return (
        f'"""{doc}"""\n\nimport asyncio  # noqa: F401\nimport importlib  # noqa: F401\n'
        f"import re  # noqa: F401\n\nimport httpx\n\n"
        f"{loader}\ndef _send():\n{client}\n\n"
        f"def {_test_name(finding)}():\n    r = _send()\n    flaw_signs = [\n        {conditions},\n    ]\n"
        f"    assert not all(flaw_signs), {('flaw still present: ' + finding.title)!r}\n"
    )


def build_reproduction(finding: Finding, target: Target) -> Reproduction:
    if finding.proof is None:
        return finding.reproduction
    sensed = sensor_proof(finding) if target.in_process else None
    if sensed is not None:
        kind, marker = sensed
        return Reproduction(curl=curl_command(finding.proof, target) + _CURL_BLIND_NOTE.format(kind=kind),
                            pytest=sensor_pytest_source(finding, finding.proof, target, kind, marker))
    return Reproduction(curl=curl_command(finding.proof, target),
                        pytest=pytest_source(finding, finding.proof, target))


# --- sensor proofs: blind flaws that no response shows ---------------------------------------------

# Sensor kinds whose events show what the app did with a probe's data (see sensors/correlate.py).
SENSOR_PROOF_KINDS = frozenset({"sql", "subprocess", "compile", "pickle", "unmarshal", "xpath", "ldap",
                                "template", "open", "connect", "resolve"})
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
# Appended to the curl line (a shell comment): curl sees only the response, which shows nothing.
_CURL_BLIND_NOTE = ("  # blind: the response shows nothing; only Bastion's in-process {kind} sensor sees the flaw "
                    "(run the pytest reproduction)")


def _request_text(proof: Proof) -> str:
    """The request as text, plus its base64-looking values decoded (documents travel base64'd)."""
    req = proof.request
    parts = [unquote(req.url), req.body or "", *req.headers.values()]
    for value in _request_values(req.url, req.body, req.headers) | set(parts):
        if len(value) >= 8 and _BASE64.fullmatch(value):
            with contextlib.suppress(ValueError):
                parts.append(base64.b64decode(value + "=" * (-len(value) % 4)).decode("latin-1"))
    return "\n".join(parts)


def sensor_proof(finding: Finding) -> tuple[str, str] | None:
    """(sensor kind, marker) when the finding's only proof is a sensor event: its response conditions
    say nothing more than "same status", and sensor evidence shows a value its proof request carried.

    The marker is the longest such value (the injected payload: its quotes and operators are what a
    fix escapes or binds), else the probe's canary (also one the request carried base64-encoded, as
    serialized documents travel); for shell commands it is the canary and the test checks that it
    follows a live separator.
    """
    proof = finding.proof
    if proof is None or any(c.kind != "status_in" for c in proof.conditions):
        return None
    req = proof.request
    text = _request_text(proof)
    canaries = set(CANARY_RE.findall(text))
    values = {v for v in _request_values(req.url, req.body, req.headers) if any(c in v for c in canaries)}
    for ev in finding.evidence:
        kind = ev.meta.get("sensor", "")
        if ev.kind != "sensor" or kind not in SENSOR_PROOF_KINDS:
            continue
        ordered = sorted(values, key=lambda v: (-len(v), v)) if kind != "subprocess" else []
        marker = next((m for m in [*ordered, *sorted(canaries)] if m in ev.content), None)
        if marker is not None:
            return kind, marker
    return None


def sensor_pytest_source(finding: Finding, proof: Proof, target: Target, kind: str, marker: str) -> str:
    """A test that re-sends the probe under Bastion's `sensors` fixture and fails while a `kind` event
    still carries `marker` (in-process targets: the sensors live in the test's own process)."""
    loader, client = _client_source(proof, target)
    doc = _docstring_text(
        f"Bastion reproduction: {finding.check_id} at {finding.location.label()}.\n\n{finding.title}\n"
        f"No response shows this flaw: the test watches Bastion's grey-box sensors (the `sensors` fixture of "
        f"Bastion's pytest plugin) and fails while its {kind} sensor still sees the probe's data; it passes "
        "once the flaw is fixed.\n")
    message = f"flaw still present: {finding.title}; the {kind} sensor saw: "
    return (
        f'"""{doc}"""\n\nimport asyncio  # noqa: F401\nimport importlib  # noqa: F401\n\nimport httpx\n\n'
        f"from bastion.sensors.proof import flaw_events\n\nSENSOR_KIND = {kind!r}\nMARKER = {marker!r}\n\n"
        f"{loader}\ndef _send():\n{client}\n\n"
        f"def {_test_name(finding)}(sensors):\n    _send()\n"
        f"    seen = flaw_events(sensors, SENSOR_KIND, MARKER)\n"
        f"    assert not seen, {message!r} + '; '.join(e.detail for e in seen[:3])\n"
    )
