"""Blind-only findings: SQL, OS command and XXE flaws no response shows, found through the sensors."""

from __future__ import annotations

import sqlite3
import subprocess
import xml.sax
from collections.abc import Callable
from xml.sax.handler import ContentHandler, feature_external_ges

import pytest
from flask import Flask, request

from bastion.checks.injection.command import live_separator
from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target
from bastion.testing import findings_of, scan_app

SQL, COMMAND, XXE = "injection.sql", "injection.command", "injection.xxe"
BLIND = "blind, seen only by the sensors"


def quiet_app() -> Flask:
    """Handlers whose flaws never show: results discarded, errors swallowed, nothing awaited."""
    app = Flask(__name__)

    def db() -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:")  # one per request, like a pool checkout
        conn.execute("CREATE TABLE hits (term TEXT)")
        return conn

    @app.get("/track")
    def track() -> str:
        try:
            db().execute(f"SELECT count(*) FROM hits WHERE term = '{request.args.get('term', '')}'").fetchone()
        except sqlite3.Error:
            pass
        return "ok"

    @app.get("/safe/track")
    def safe_track() -> str:
        term = request.args.get("term", "").replace("'", "''")  # escaped, not injectable
        db().execute(f"SELECT count(*) FROM hits WHERE term = '{term}'").fetchone()
        return "ok"

    @app.post("/thumbnail")
    def thumbnail() -> tuple[str, int]:
        subprocess.Popen(f"echo resize '{request.form.get('file', '')}' >/dev/null", shell=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return "queued", 202

    @app.post("/safe/thumbnail")
    def safe_thumbnail() -> tuple[str, int]:
        import shlex

        subprocess.run(f"echo resize {shlex.quote(request.form.get('file', ''))} >/dev/null", shell=True,
                       check=False)
        return "queued", 202

    @app.post("/feed")
    def feed() -> str:
        parser = xml.sax.make_parser()
        parser.setFeature(feature_external_ges, True)  # resolves SYSTEM entities, shows nothing
        parser.setContentHandler(ContentHandler())
        try:
            parser.feed(request.get_data())
            parser.close()
        except Exception:  # the feed is best effort
            pass
        return "thanks"

    @app.post("/safe/feed")
    def safe_feed() -> str:
        parser = xml.sax.make_parser()  # external entities off (the default)
        parser.setContentHandler(ContentHandler())
        try:
            parser.feed(request.get_data())
            parser.close()
        except Exception:
            pass
        return "thanks"

    return app


SURFACE = Surface([
    EntryPoint("GET", "/track", [Input("query", "term")]),
    EntryPoint("GET", "/safe/track", [Input("query", "term")]),
    EntryPoint("POST", "/thumbnail", [Input("form", "file")]),
    EntryPoint("POST", "/safe/thumbnail", [Input("form", "file")]),
    EntryPoint("POST", "/feed", [Input("body", "body")], consumes=["application/xml"]),
    EntryPoint("POST", "/safe/feed", [Input("body", "body")], consumes=["application/xml"]),
])


@pytest.fixture(scope="module")
def result() -> ScanResult:
    return scan_app(quiet_app(), SURFACE, checks=[SQL, COMMAND, XXE])


def test_blind_sql_and_command_injection_found_only_by_the_sensors(result: ScanResult) -> None:
    sql = {f.location.path: f for f in findings_of(result, SQL)}
    command = {f.location.path: f for f in findings_of(result, COMMAND)}
    assert set(sql) == {"/track"} and set(command) == {"/thumbnail"}
    for f in (sql["/track"], command["/thumbnail"]):
        assert BLIND in f.title and f.confidence == "confirmed"
        assert any(e.summary == "blind (seen only by the sensors)" for e in f.evidence)
        sensor = [e for e in f.evidence if e.kind == "sensor"]
        assert sensor and sensor[0].meta["file"].endswith("test_blind.py")
    assert "separator ';" in command["/thumbnail"].title  # the app's own quotes are closed first


def test_blind_xxe_found_out_of_band(result: ScanResult) -> None:
    found = {f.location.path: f for f in findings_of(result, XXE)}
    assert set(found) == {"/feed"}
    f = found["/feed"]
    assert "blind" in f.title and f.confidence == "confirmed" and f.severity == "high"
    assert any("loopback listener received" in e.content or "open sensor" in e.content for e in f.evidence)


def test_without_sensors_blind_flaws_stay_unreported() -> None:
    target = Target.from_app(quiet_app(), spec="tests:app")
    surface = Surface([ep for ep in SURFACE.sorted() if ep.path in ("/track", "/thumbnail")])
    result = run_scan(target, surface, ScanOptions(checks=[SQL, COMMAND], sensors=False))
    assert findings_of(result, SQL) == [] and findings_of(result, COMMAND) == []


@pytest.mark.parametrize(("line", "live"), [
    ("/bin/sh -c echo archiving x;echo bstabc123 > /dev/null", True),
    ("/bin/sh -c echo 'x';echo bstabc123;'' >/dev/null", True),
    ("/bin/sh -c echo archiving 'x;echo bstabc123' >/dev/null", False),  # shlex.quote keeps one word
    ("echo archiving x;echo bstabc123", False),  # an argv list, no shell
    ("/bin/sh -c echo 'unbalanced;echo bstabc123", False),
])
def test_live_separator(line: str, live: bool) -> None:
    assert live_separator(line, "bstabc123") is live


DEMO_CHECKS = (COMMAND, SQL)


def test_demo_blind_flaws_found(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="blind_sqli,blind_command_injection", checks=DEMO_CHECKS)
    blind = {(f.check_id, f.location.path, f.location.input.name) for f in result.findings if BLIND in f.title}
    assert blind == {(SQL, "/api/catalog/search", "q"), (COMMAND, "/api/archives", "name")}
    assert {f.check_id for f in result.findings} == {SQL, COMMAND} and len(result.findings) == 2


def test_demo_hardened_twin_has_no_blind_findings(scan_demo: Callable[..., ScanResult]) -> None:
    # The same scans as the SQL and command checks' own hardened-twin tests (cached per session).
    assert findings_of(scan_demo(flaws="none", checks=[SQL]), SQL) == []
    assert findings_of(scan_demo(flaws="none", checks=[COMMAND]), COMMAND) == []
