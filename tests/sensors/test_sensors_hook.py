"""The audit-hook sensors: what each watcher records, scoping by context, the egress guard."""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

from bastion.findings.model import Confidence, Evidence, Finding, Proof, ProofRequest
from bastion.sensors import (
    EgressBlocked,
    SensorSession,
    active_session,
    app_roots,
    correlate,
    egress_allowlist,
    probe_scope,
    request_key,
    sensor_session,
)

HERE = str(Path(__file__).parent)


def test_no_session_no_events_and_no_effect(tmp_path: Path) -> None:
    s = SensorSession()
    with sensor_session(s):
        pass
    (tmp_path / "f").write_text("x")
    assert active_session() is None
    assert s.events == []


def test_watchers_record_open_argv_compile_sql_pickle(tmp_path: Path) -> None:
    target = tmp_path / "bstfile12345"
    target.write_text("x")
    with sensor_session(SensorSession([HERE])) as s:
        target.read_text()
        subprocess.run([sys.executable, "-c", "pass", "bstargv12345"], check=True)
        eval(compile("'bstcode12345'", "<probe>", "eval"))  # noqa: S307
        conn = sqlite3.connect(":memory:")
        conn.execute("SELECT 'bstsql123456'")
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("SELECT 'bstbroken123")  # a statement that fails to parse is still seen
        conn.execute("SELECT ?", ("bstbound12345",))
        pickle.loads(pickle.dumps(Path("x")))  # noqa: S301
    kinds = {(e.kind, token) for e in s.events for token in e.canaries}
    assert {("open", "bstfile12345"), ("subprocess", "bstargv12345"), ("compile", "bstcode12345"),
            ("sql", "bstsql123456"), ("sql", "bstbroken123")} <= kinds
    assert not s.matching("bstbound12345"), "bound parameters are data, not SQL text"
    # The class's module differs by Python version (pathlib vs pathlib._local on 3.13).
    assert any(d.startswith("pathlib") and d.endswith(".PosixPath") for d in (e.detail for e in s.of_kind("pickle")))
    ev = s.matching("bstsql123456")[0]
    assert ev.file == __file__ and ev.line is not None  # the innermost frame in the app's own code


def test_events_without_an_app_frame_are_dropped_when_roots_are_given() -> None:
    with sensor_session(SensorSession(["/nonexistent-app-root"])) as s:
        eval("1 + 1")  # noqa: S307
    assert s.events == []


def test_session_follows_the_context_into_worker_threads_not_other_threads(tmp_path: Path) -> None:
    seen_elsewhere = tmp_path / "bstother12345"
    seen_elsewhere.write_text("x")
    worker = tmp_path / "bstworker1234"
    worker.write_text("x")

    async def main() -> None:
        await anyio.to_thread.run_sync(worker.read_text)  # how the WSGI transport runs the app

    with sensor_session(SensorSession()) as s:
        asyncio.run(main())
        t = threading.Thread(target=seen_elsewhere.read_text)  # a plain thread: a fresh context
        t.start()
        t.join()
    assert s.matching("bstworker1234")
    assert not s.matching("bstother12345")


def test_two_sessions_in_two_tasks_do_not_mix(tmp_path: Path) -> None:
    a, b = SensorSession(), SensorSession()
    (tmp_path / "bstaaaaaaaaa1").write_text("x")
    (tmp_path / "bstbbbbbbbbb1").write_text("x")

    async def use(session: SensorSession, name: str) -> None:
        with sensor_session(session):
            await asyncio.sleep(0)
            await anyio.to_thread.run_sync((tmp_path / name).read_text)

    async def main() -> None:
        await asyncio.gather(use(a, "bstaaaaaaaaa1"), use(b, "bstbbbbbbbbb1"))

    asyncio.run(main())
    assert a.matching("bstaaaaaaaaa1") and not a.matching("bstbbbbbbbbb1")
    assert b.matching("bstbbbbbbbbb1") and not b.matching("bstaaaaaaaaa1")


def test_event_cap_counts_drops() -> None:
    with sensor_session(SensorSession(max_events=3)) as s:
        for _ in range(5):
            eval("0")  # noqa: S307 - compile + exec events
    assert len(s.events) == 3 and s.dropped >= 2


def test_detail_is_redacted() -> None:
    with sensor_session(SensorSession()) as s:
        sqlite3.connect(":memory:").execute("SELECT 'password=hunter2secret'")
    assert all("hunter2secret" not in e.detail for e in s.of_kind("sql"))
    assert any("password=***" in e.detail for e in s.of_kind("sql"))


def test_egress_guard_blocks_before_connect_and_records_it() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sensor_session(SensorSession(allowed_hosts=egress_allowlist([]))) as s:
        # TEST-NET-1 is never routed; the audit event fires before the connect syscall, so the hook's
        # exception means no SYN was sent (the socket stays unconnected).
        with pytest.raises(EgressBlocked):
            sock.connect(("192.0.2.1", 80))
        with pytest.raises(EgressBlocked):
            socket.getaddrinfo("example.invalid", 443)
        with pytest.raises(OSError):  # EgressBlocked is an OSError: apps handle it as a network error
            socket.create_connection(("192.0.2.1", 80), timeout=0.01)
    with pytest.raises(OSError):
        sock.getpeername()  # never connected
    sock.close()
    blocked = [e.detail for e in s.of_kind("egress-blocked")]
    assert "192.0.2.1:80" in blocked and "example.invalid:443" in blocked


def test_egress_guard_allows_loopback_and_scope_hosts() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        with sensor_session(SensorSession(allowed_hosts=egress_allowlist(["svc.internal"]))) as s:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            with pytest.raises(EgressBlocked):
                socket.getaddrinfo("svc.internal.invalid", 80)  # a look-alike of a scope host
            with pytest.raises(socket.gaierror):  # in scope: resolved for real (and fails: no DNS)
                socket.getaddrinfo("svc.internal", 80, flags=socket.AI_NUMERICHOST)
    assert [e.detail for e in s.of_kind("egress-blocked")] == ["svc.internal.invalid:80"]
    assert f"127.0.0.1:{port}" in [e.detail for e in s.of_kind("connect")]


def test_app_roots_from_spec() -> None:
    roots = app_roots(object(), "bastion.demo:create_app()")
    assert roots == [os.path.dirname(__import__("bastion.demo").demo.__file__)]


def _finding(url: str, summary: str = "") -> Finding:
    return Finding(check_id="injection.x", threat_id="t", title="t", severity="high",
                   confidence=Confidence.firm,
                   location={"method": "GET", "path": "/p", "input": {"in": "query", "name": "q"}},
                   evidence=[Evidence(kind="note", summary=summary)],
                   proof=Proof(request=ProofRequest(method="GET", url=url), conditions=[]))


def test_correlation_by_canary_is_order_independent() -> None:
    with sensor_session(SensorSession([HERE])) as s:
        conn = sqlite3.connect(":memory:")
        conn.execute("SELECT 'bstzzzzzz9' AS a")
        conn.execute("SELECT 'bstzzzzzz9' AS b")
    f = _finding("http://x/p?q=1", "canary bstzzzzzz9 came back")
    one = correlate([f], list(s.events))[0]
    two = correlate([f], list(reversed(s.events)))[0]
    assert one == two
    sensor = [e for e in one.evidence if e.kind == "sensor"]
    assert [e.content for e in sensor] == sorted(e.content for e in sensor) and len(sensor) == 2
    assert one.confidence == Confidence.confirmed
    assert sensor[0].meta["file"].endswith("test_sensors_hook.py")


def test_correlation_by_probe_request_needs_the_payload_in_the_event() -> None:
    req = ProofRequest(method="GET", url="http://x/p?q=a%27b")
    with sensor_session(SensorSession([HERE])) as s:
        with probe_scope() as probe:
            conn = sqlite3.connect(":memory:")
            conn.execute("SELECT 1")  # the app's own statement: not evidence
            with pytest.raises(sqlite3.OperationalError):
                conn.execute("SELECT * FROM t WHERE q = 'a'b'")
        probe.key = request_key(req)
    out = correlate([_finding(req.url)], s.events)[0]
    assert [e.content for e in out.evidence if e.kind == "sensor"] == ["SELECT * FROM t WHERE q = 'a'b'"]
    unrelated = correlate([_finding("http://x/other?q=a%27b")], s.events)[0]
    assert unrelated.confidence == Confidence.firm and len(unrelated.evidence) == 1


def test_correlation_without_canary_needs_an_input_finding() -> None:
    req = ProofRequest(method="GET", url="http://x/.env")
    with sensor_session(SensorSession([HERE])) as s:
        with probe_scope() as probe:
            sqlite3.connect(":memory:").execute("SELECT '/srv/app/.env'")
        probe.key = request_key(req)
    f = Finding(check_id="config.x", threat_id="t", title="t", severity="high", confidence=Confidence.firm,
                location={"method": "GET", "path": "/.env"},
                proof=Proof(request=req, conditions=[]))
    assert correlate([f], s.events)[0] == f


def test_tentative_findings_get_evidence_but_keep_their_confidence() -> None:
    with sensor_session(SensorSession([HERE])) as s:
        sqlite3.connect(":memory:").execute("SELECT 'bsttent12345'")
    f = _finding("http://x/p?q=1", "bsttent12345").model_copy(update={"confidence": Confidence.tentative})
    out = correlate([f], s.events)[0]
    assert out.confidence == Confidence.tentative and out.evidence[-1].kind == "sensor"


def test_check_context_sensor_events_filters_by_marker() -> None:
    import random

    from bastion.engine.context import CheckContext

    with sensor_session(SensorSession()) as s:
        sqlite3.connect(":memory:").execute("SELECT 'bstctxmark123'")
    ctx = CheckContext(spec=None, client=None, surface=None, payloads=None,  # type: ignore[arg-type]
                       rng=random.Random(0), stats=None, sensors=s)  # type: ignore[arg-type]
    assert [e.kind for e in ctx.sensor_events("bstctxmark123")] == ["sql"]
    ctx.sensors = None
    assert ctx.sensor_events("bstctxmark123") == []
