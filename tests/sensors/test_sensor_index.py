"""SensorSession.matching finds the same events, in the same order, with or without its canary index."""

from __future__ import annotations

import random

from bastion.sensors.events import SensorEvent, SensorSession


def _linear(session: SensorSession, marker: str) -> list[SensorEvent]:
    return [e for e in session.events if marker in e.raw_detail]


def test_canary_lookup_equals_a_linear_scan() -> None:
    rnd = random.Random(3)
    session = SensorSession()
    canaries = ["bst" + "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))
                for n in (6, 7, 10, 10, 12)]
    markers = [*canaries, "bstbst" + canaries[0][3:], canaries[2][:9], "select", "bst", "BSTABCDEFG"]
    for i in range(400):
        c = rnd.choice(canaries)
        detail = rnd.choice([f"SELECT * FROM t WHERE a = '{c}'", f"x{c}yz", f"bst{c}", f"{c.upper()}",
                             f"open /tmp/{c[:-1]}", "select 1", f"bst{c[3:]}{c}"])
        session.record(SensorEvent("sql", detail))
        if i % 37 == 0:  # lookups interleaved with recording: the index catches up incrementally
            for m in markers:
                assert session.matching(m) == _linear(session, m)
    for m in markers:
        assert session.matching(m) == _linear(session, m)
    assert session.matching(canaries[0])  # the test exercises hits, not only misses
