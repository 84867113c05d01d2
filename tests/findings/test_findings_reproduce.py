"""Reproductions: the curl line is one safe shell command; the pytest test fails while the flaw exists."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from bastion.findings.evidence import body_contains, header_missing, proof_from, status_in
from bastion.findings.model import Finding, Location, Proof, ProofRequest
from bastion.findings.reproduce import build_reproduction, curl_command, pytest_source
from bastion.target import ProbeClient, Target

HOSTILE = "it's \"quoted\" $(touch PWNED) `touch PWNED2` ${HOME} \\ ; | & \n second line \t !$ é"

URL_TARGET = Target.from_url("http://127.0.0.1:8000")
APP_TARGET = Target(kind="wsgi", base_url="http://bastion.local", spec="pkg.app:create_app(flaws='all')")
ASGI_TARGET = Target(kind="asgi", base_url="http://bastion.local", spec="pkg.app:api")


def hostile_proof(base: str) -> Proof:
    return Proof(request=ProofRequest(method="POST", url=f"{base}/a%20b/it's?q=$(id)&r=%0a",
                                      headers={"x-evil": HOSTILE, "content-type": "text/plain"},
                                      body=HOSTILE),
                 conditions=[body_contains(HOSTILE), header_missing("x-frame-options"), status_in(200, 201)])


def hostile_finding(base: str) -> Finding:
    return Finding(check_id="demo.check\"''' \\x", threat_id="t", title=f'Title """ {HOSTILE} \\N{{oops}} \0',
                   severity="high", confidence="firm",
                   location=Location(method="POST", path='/a b/"""\\', url=base + "/x"),
                   proof=hostile_proof(base))


def run_curl_in_bash(command: str, tmp_path: Path, env: dict[str, str] | None = None) -> list[list[str]]:
    """Evaluate `command` in bash with `curl` replaced by a function that records its argv."""
    script = ('calls="$CALLS"\n'
              'curl() { printf "%s\\0" "$@" >> "$calls"; printf "\\n--end--\\0" >> "$calls"; }\n'
              + command + "\n")
    calls = tmp_path / "calls"
    calls.write_bytes(b"")
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True,
                   env={"PATH": os.environ["PATH"], "CALLS": str(calls), **(env or {})})
    invocations: list[list[str]] = [[]]
    for arg in calls.read_bytes().decode().split("\0")[:-1]:
        if arg == "\n--end--":
            invocations.append([])
        else:
            invocations[-1].append(arg)
    return invocations[:-1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_curl_for_url_target_is_one_safe_command(tmp_path: Path) -> None:
    proof = hostile_proof(URL_TARGET.base_url)
    (argv,) = run_curl_in_bash(curl_command(proof, URL_TARGET), tmp_path)
    assert argv[-1] == proof.request.url
    assert ["-X", "POST"] == argv[argv.index("-X"):argv.index("-X") + 2]
    assert f"x-evil: {HOSTILE}" in argv
    assert argv[argv.index("--data-binary") + 1] == HOSTILE
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_curl_for_in_process_target_uses_the_target_variable(tmp_path: Path) -> None:
    proof = hostile_proof(APP_TARGET.base_url)
    command = curl_command(proof, APP_TARGET)
    (argv,) = run_curl_in_bash(command, tmp_path, env={"TARGET": "http://127.0.0.1:5000"})
    assert argv[-1] == "http://127.0.0.1:5000/a%20b/it's?q=$(id)&r=%0a"
    (argv,) = run_curl_in_bash(command, tmp_path)
    assert argv[-1].startswith("http://127.0.0.1:8000/a%20b/")
    assert f"x-evil: {HOSTILE}" in argv
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("target", [URL_TARGET, APP_TARGET, ASGI_TARGET], ids=["url", "wsgi", "asgi"])
def test_pytest_source_with_hostile_values_compiles(target: Target) -> None:
    finding = hostile_finding(target.base_url)
    source = pytest_source(finding, finding.proof, target)
    code = compile(source, "repro.py", "exec")
    names = [n for n in code.co_names if n.startswith("test_")]
    assert len(names) == 1 and names[0].isidentifier()
    assert "\0" not in source
    import ast

    doc = ast.get_docstring(ast.parse(source)) or ""
    assert 'Title """ it\'s "quoted" $(touch PWNED)' in doc and "\\N{oops}" in doc


def test_build_reproduction_without_proof_keeps_what_the_check_gave() -> None:
    f = Finding(check_id="c", threat_id="t", title="x", severity="low", confidence="tentative",
                reproduction={"curl": "curl -I http://x", "pytest": ""})
    assert build_reproduction(f, URL_TARGET).curl == "curl -I http://x"


# --- running the generated test against a real app ---------------------------------------------------

_ids = itertools.count()

FLAWED_APP = '''
from flask import Flask, request


def create_app(greeting="Hello"):
    app = Flask(__name__)

    @app.get("/greet")
    def greet():
        return f"<p>{greeting}, " + request.args.get("name", "") + "</p>"

    return app
'''

FIXED_APP = '''
from flask import Flask, request
from markupsafe import escape


def create_app(greeting="Hello"):
    app = Flask(__name__)

    @app.get("/greet")
    def greet():
        return f"<p>{greeting}, {escape(request.args.get('name', ''))}</p>"

    return app
'''

PAYLOAD = "<script>bst0k1x9</script>"


def run_pytest_file(source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / f"test_repro_{next(_ids)}.py"
    test_file.write_text(source)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:bastion",
                           str(test_file)],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)


def reflected_xss_finding(target: Target) -> Finding:
    """Probe the target for real and build the finding a reflection check would report."""

    async def probe():
        async with ProbeClient(target) as client:
            return await client.request("GET", "/greet", params={"name": PAYLOAD})

    ex = asyncio.run(probe())
    assert PAYLOAD in ex.text  # the flaw is really there
    return Finding(check_id="injection.xss", threat_id="injection.xss", title="Reflected XSS",
                   severity="high",
                   confidence="confirmed", location=Location(method="GET", path="/greet"),
                   proof=proof_from(ex, body_contains(PAYLOAD), status_in(200)))


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    name = f"bastion_repro_app_{os.getpid()}_{next(_ids)}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(FLAWED_APP))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, path
    sys.modules.pop(name, None)


def test_generated_pytest_fails_while_flawed_and_passes_once_fixed_in_process(
        app_module: tuple[str, Path], tmp_path: Path) -> None:
    name, path = app_module
    target = Target.from_spec(f"{name}:create_app(greeting='Hi')")
    finding = reflected_xss_finding(target)
    repro = build_reproduction(finding, target)

    flawed = run_pytest_file(repro.pytest, tmp_path)
    assert flawed.returncode == 1, flawed.stdout + flawed.stderr
    assert "flaw still present: Reflected XSS" in flawed.stdout

    path.write_text(textwrap.dedent(FIXED_APP))
    fixed = run_pytest_file(repro.pytest, tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


@pytest.fixture
def live_server() -> Iterator[tuple[str, dict[str, bool]]]:
    """A werkzeug server whose flaw is toggled by `state["fixed"]`."""
    from markupsafe import escape

    state = {"fixed": False}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        from urllib.parse import parse_qs

        name = parse_qs(environ.get("QUERY_STRING", "")).get("name", [""])[0]
        shown = str(escape(name)) if state["fixed"] else name
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [f"<p>Hello, {shown}</p>".encode()]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", state
    server.shutdown()
    server.server_close()


def test_generated_pytest_fails_while_flawed_and_passes_once_fixed_for_url(
        live_server: tuple[str, dict[str, bool]], tmp_path: Path) -> None:
    url, state = live_server
    target = Target.from_url(url)
    repro = build_reproduction(reflected_xss_finding(target), target)
    assert url in repro.curl

    flawed = run_pytest_file(repro.pytest, tmp_path)
    assert flawed.returncode == 1, flawed.stdout + flawed.stderr

    state["fixed"] = True
    fixed = run_pytest_file(repro.pytest, tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
