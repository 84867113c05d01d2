"""injection.ldap: unescaped filters seen by the sensor, error-based and boolean-based, escaped twins."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, jsonify, request
from ldap3 import MOCK_SYNC, OFFLINE_SLAPD_2_4, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target
from bastion.testing import findings_of, scan_app

CHECK = "injection.ldap"
BASE = "ou=staff,dc=example,dc=org"


def _directory() -> Connection:
    conn = Connection(Server("ldap.example.org", get_info=OFFLINE_SLAPD_2_4), user="cn=ro,dc=example,dc=org",
                      password="ro", client_strategy=MOCK_SYNC)
    conn.strategy.add_entry("cn=ro,dc=example,dc=org", {"userPassword": "ro", "sn": "ro"})
    for uid in ("dana", "eli"):
        conn.strategy.add_entry(f"cn={uid},{BASE}", {"objectClass": ["inetOrgPerson"], "cn": uid, "sn": uid,
                                                     "mail": f"{uid}@example.org"})
    conn.bind()
    return conn


def directory_app() -> Flask:
    app = Flask(__name__)

    def search(flt: str) -> list[str]:
        conn = _directory()
        conn.search(BASE, flt, attributes=["mail"])
        return sorted(str(e.mail) for e in conn.entries)

    @app.get("/people")
    def people() -> object:
        try:
            return jsonify(mail=search(f"(&(objectClass=inetOrgPerson)(cn={request.args.get('cn', '')}))"))
        except LDAPException:
            return jsonify(mail=[])

    @app.get("/lookup")
    def lookup() -> object:
        try:
            return jsonify(mail=search(f"(&(objectClass=inetOrgPerson)(cn={request.args.get('who', '')}))"))
        except LDAPException as exc:
            return f"{type(exc).__name__}: {exc}", 500

    @app.get("/safe/people")
    def safe_people() -> object:
        cn = escape_filter_chars(request.args.get("cn", ""))
        return jsonify(mail=search(f"(&(objectClass=inetOrgPerson)(cn={cn}))"))

    @app.get("/safe/echo")
    def safe_echo() -> str:
        return "nobody called " + request.args.get("cn", "")

    return app


SURFACE = Surface([
    EntryPoint("GET", "/people", [Input("query", "cn")]),
    EntryPoint("GET", "/lookup", [Input("query", "who")]),
    EntryPoint("GET", "/safe/people", [Input("query", "cn")]),
    EntryPoint("GET", "/safe/echo", [Input("query", "cn")]),
])


@pytest.fixture(scope="module")
def result() -> ScanResult:
    return scan_app(directory_app(), SURFACE, checks=[CHECK])


def test_unescaped_filters_are_confirmed_by_the_sensor(result: ScanResult) -> None:
    found = {f.location.path: f for f in findings_of(result, CHECK)}
    assert set(found) == {"/people", "/lookup"}
    for f in found.values():
        assert f.confidence == "confirmed" and f.cwe == 90 and "seen by the sensors" in f.title
        sensor = [e for e in f.evidence if e.kind == "sensor"]
        assert sensor and sensor[0].meta["file"].endswith("test_ldap.py")
        assert ")(cn=bst" in sensor[0].content


def test_without_sensors_boolean_and_error_techniques() -> None:
    target = Target.from_app(directory_app(), spec="tests:app")
    result = run_scan(target, SURFACE, ScanOptions(checks=[CHECK], sensors=False))
    found = {f.location.path: f.title for f in findings_of(result, CHECK)}
    assert found == {"/people": "LDAP filter injection in query input 'cn' (boolean-based)",
                     "/lookup": "LDAP filter injection in query input 'who' (error-based)"}


def test_demo_ldap_injection_found(scan_demo: Callable[..., ScanResult]) -> None:
    findings = findings_of(scan_demo(flaws="ldap_injection", checks=[CHECK]), CHECK)
    assert [(f.location.path, f.location.input.name) for f in findings] == [("/api/directory", "name")]


def test_demo_hardened_twin_is_clean(scan_demo: Callable[..., ScanResult]) -> None:
    assert findings_of(scan_demo(flaws="none", checks=[CHECK]), CHECK) == []
