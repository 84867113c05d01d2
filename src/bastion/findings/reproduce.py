"""Reproductions: a `curl` line and a standalone pytest test that fails while the flaw exists."""

from __future__ import annotations

import re
import shlex

from bastion.findings.model import Finding, Proof, ProofCondition, Reproduction
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


def pytest_source(finding: Finding, proof: Proof, target: Target) -> str:
    req = proof.request
    path = _relative(req.url, target.base_url)
    conditions = ",\n        ".join(_condition_expr(c) for c in proof.conditions)
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
    return Reproduction(curl=curl_command(finding.proof, target),
                        pytest=pytest_source(finding, finding.proof, target))
