"""The XPath, LDAP and marshal watchers (bastion/sensors/runtime.py): what they record, and no effect
without a session."""

from __future__ import annotations

import marshal
from pathlib import Path

from ldap3 import MOCK_SYNC, Connection, Server
from lxml import etree

from bastion.sensors import SensorSession, sensor_session
from bastion.sensors.hook import install

HERE = str(Path(__file__).parent)
DOC = etree.fromstring(b"<r><u n='a'/><u n='b'/></r>")


def _directory() -> Connection:
    conn = Connection(Server("mock"), user="cn=x,dc=t", password="x", client_strategy=MOCK_SYNC)
    conn.strategy.add_entry("cn=x,dc=t", {"userPassword": "x", "sn": "x"})
    conn.bind()
    return conn


def test_xpath_sensor_function_records_the_canary_with_the_app_frame() -> None:
    with sensor_session(SensorSession([HERE])) as s:
        selected = DOC.xpath("//u[@n='zz' or bastion-sensor('bstxpath0001') or '']")
        etree.XPath("//u[bastion-sensor('bstxpath0002')]")(DOC)
    assert selected == []  # the function returns false: the selection is unchanged
    events = s.matching("bstxpath0001")
    assert [e.kind for e in events] == ["xpath", "xpath"]  # once per candidate node
    assert events[0].file == __file__ and events[0].line
    assert s.matching("bstxpath0002")


def test_ldap_search_filter_is_recorded_before_parsing() -> None:
    conn = _directory()
    with sensor_session(SensorSession([HERE])) as s:
        conn.search("dc=t", "(&(objectClass=*)(cn=x)(cn=bstldap0001))")
        try:
            conn.search("dc=t", "(cn=bstldap0002))")  # malformed: ldap3 refuses it, the sensor saw it
        except Exception:  # noqa: S110 - the point is what was recorded
            pass
    assert [e.kind for e in s.matching("bstldap0001")] == ["ldap"]
    assert "filter=(cn=bstldap0002))" in s.matching("bstldap0002")[0].detail


def test_marshal_loads_is_recorded() -> None:
    data = marshal.dumps("bstmarshal01")
    with sensor_session(SensorSession([HERE])) as s:
        assert marshal.loads(data) == "bstmarshal01"
    assert [e.kind for e in s.matching("bstmarshal01")] == ["unmarshal"]


def test_no_session_no_events_and_no_effect() -> None:
    install()
    s = SensorSession([HERE])
    assert DOC.xpath("count(//u[bastion-sensor('bstxpath0003')])") == 0.0
    _directory().search("dc=t", "(cn=bstldap0003)")
    assert s.events == []


def test_canary_events_are_kept_past_the_shared_cap() -> None:
    from bastion.sensors import SensorEvent

    s = SensorSession(max_events=2)
    for i in range(3):
        s.record(SensorEvent("sql", f"SELECT {i}"))
    s.record(SensorEvent("sql", "SELECT 'bstcapped0001'"))
    s.record(SensorEvent("sql", "SELECT 'bstcapped0002'"))
    s.record(SensorEvent("sql", "SELECT 'bstcapped0003'"))  # the canary bound (max_events) is spent
    assert [e.raw_detail for e in s.events] == ["SELECT 0", "SELECT 1", "SELECT 'bstcapped0001'",
                                                "SELECT 'bstcapped0002'"]
    assert s.dropped == 2
