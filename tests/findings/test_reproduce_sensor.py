"""Sensor-proof reproductions: blind findings become pytest tests that watch the sensors.

The generated test fails while the sensor still sees the probe's data and passes once the flaw is
fixed; it runs under plain pytest with Bastion's plugin (the `sensors` fixture).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.engine.runner import ScanResult
from bastion.findings.evidence import body_contains, status_in
from bastion.findings.model import Evidence, Finding, Location, Proof, ProofRequest
from bastion.findings.reproduce import build_reproduction, sensor_proof
from bastion.sensors import SensorEvent
from bastion.sensors.proof import flaw_events, shell_runs_marker
from bastion.target.target import Target

BLIND = "blind, seen only by the sensors"
APP_TARGET = Target(kind="wsgi", base_url="http://bastion.local", spec="pkg.app:create_app()")


def _finding(url: str, sensor: str, content: str, *, body: str | None = None, conditions: list | None = None,
             ) -> Finding:
    return Finding(check_id="injection.sql", threat_id="injection.sql", title="blind", severity="high",
                   confidence="confirmed", location=Location(method="GET", path="/s"),
                   evidence=[Evidence(kind="sensor", summary="s", content=content, meta={"sensor": sensor})],
                   proof=Proof(request=ProofRequest(method="GET", url=url, body=body),
                               conditions=conditions if conditions is not None else [status_in(200)]))


def test_marker_is_the_injected_value_for_sql() -> None:
    f = _finding("http://bastion.local/s?q=x%27%7C%7C%27bstabc1234%27%7C%7C%27", "sql",
                 "SELECT 1 WHERE n = 'x'||'bstabc1234'||''")
    assert sensor_proof(f) == ("sql", "x'||'bstabc1234'||'")
    repro = build_reproduction(f, APP_TARGET)
    assert "flaw_events(sensors, SENSOR_KIND, MARKER)" in repro.pytest and "def test_" in repro.pytest
    assert "(sensors)" in repro.pytest
    assert repro.curl.startswith("curl ") and "# blind:" in repro.curl


def test_marker_is_a_base64_carried_canary_for_documents() -> None:
    import base64

    blob = base64.b64encode(b"cbuiltins\ncompile\n(Vbstdoc12345\n").decode()
    f = _finding("http://bastion.local/import", "compile", "<bastion>: bstdoc12345", body=f'{{"blob":"{blob}"}}')
    assert sensor_proof(f) == ("compile", "bstdoc12345")


def test_response_proofs_and_url_targets_keep_the_response_test() -> None:
    with_body = _finding("http://bastion.local/s?q=bstabc1234", "sql", "bstabc1234",
                         conditions=[status_in(200), body_contains("bstabc1234")])
    assert sensor_proof(with_body) is None
    unrelated = _finding("http://bastion.local/s?q=x", "sql", "SELECT bstother999")  # not the request's data
    assert sensor_proof(unrelated) is None
    blind = _finding("http://bastion.local/s?q=x%27bstabc1234", "sql", "SELECT 'x'bstabc1234'")
    url = build_reproduction(blind, Target.from_url("http://127.0.0.1:8000"))
    assert "flaw_signs" in url.pytest and "# blind" not in url.curl  # no sensors in a remote process


@pytest.mark.parametrize(("line", "shows"), [
    ("/bin/sh -c tar czf x;echo bstabc123 >/dev/null", True),
    ("/bin/sh -c tar czf 'x';echo bstabc123;'' >/dev/null", True),
    ("/bin/sh -c tar czf 'x;echo bstabc123' >/dev/null", False),  # shlex.quote: one word
    ("tar czf x;echo bstabc123", False),  # argv list: no shell
    ("/bin/sh -c tar 'unbalanced;echo bstabc123", False),
])
def test_shell_marker_must_follow_a_live_separator(line: str, shows: bool) -> None:
    assert shell_runs_marker(line, "bstabc123") is shows
    assert bool(flaw_events([SensorEvent("subprocess", line)], "subprocess", "bstabc123")) is shows


def _run_pytest(sources: dict[str, str], directory: Path) -> tuple[dict[str, str], str]:
    """Run generated tests (file stem -> source) in one pytest process: (stem -> outcome line, output)."""
    for stem, source in sources.items():
        (directory / f"{stem}.py").write_text(source)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:randomly",
                           "-p", "no:cacheprovider", *[f"{stem}.py" for stem in sources]],
                          cwd=directory, capture_output=True, text=True, timeout=600, check=False)
    lines = done.stdout.splitlines()
    outcomes = {stem: next((ln for ln in lines if ln.startswith(("PASSED", "FAILED", "ERROR")) and f"{stem}.py" in ln),
                           "not run") for stem in sources}
    return outcomes, done.stdout + done.stderr


def test_demo_blind_reproductions_fail_on_flaw_and_pass_on_fix(
        scan_demo: Callable[..., ScanResult], tmp_path: Path) -> None:
    # The same cached scan as tests/checks/test_blind.py.
    result = scan_demo(flaws="blind_sqli,blind_command_injection", checks=("injection.command", "injection.sql"))
    sources: dict[str, str] = {}
    for check, kind, flaw in (("injection.sql", "sql", "blind_sqli"),
                              ("injection.command", "subprocess", "blind_command_injection")):
        (f,) = [f for f in result.findings if f.check_id == check and BLIND in f.title]
        source = f.reproduction.pytest
        assert "from bastion.sensors.proof import flaw_events" in source and f"SENSOR_KIND = {kind!r}" in source
        assert "# blind:" in f.reproduction.curl
        scanned = source[source.index("create_app("):].split(")", 1)[0] + ")"
        sources[f"test_{kind}_flawed"] = source.replace(scanned, f"create_app(flaws={flaw!r})")
        sources[f"test_{kind}_fixed"] = source.replace(scanned, "create_app(flaws='none')")
    outcome, output = _run_pytest(sources, tmp_path)
    for kind in ("sql", "subprocess"):
        assert outcome[f"test_{kind}_flawed"].startswith("FAILED"), output
        assert f"the {kind} sensor saw" in output, output  # failed by the sensor assertion, not an error
        assert outcome[f"test_{kind}_fixed"].startswith("PASSED"), output
