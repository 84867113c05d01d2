"""plan_scan is exception-safe: what it started (dependency doubles, the alert listener) stops when planning fails."""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

import bastion.drills.alerts as alerts
import bastion.resilience.wiring as wiring
import bastion.session as session


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _idp_port(wired: wiring.WiredDoubles) -> int:
    """The port the IdP double was served on (its settings keep the URL after it stops)."""
    port = urlsplit(next(w.raw["OIDC_ISSUER"] for w in wired.deps.values() if w.kind == "oidc")).port
    assert port is not None
    return port


def _fail(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("planning failed")


@pytest.mark.parametrize("step", ["demo_target", "discover"], ids=["before-attach", "after-attach"])
def test_a_failed_plan_stops_the_doubles_it_started(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    started: list[wiring.WiredDoubles] = []
    sinks: list[alerts.AlertSinks] = []
    real_wire, real_sinks = wiring.wire_dependencies, alerts.start_alert_sinks

    def wire(deps: Any) -> wiring.WiredDoubles | None:
        wired = real_wire(deps)
        started.extend([wired] if wired is not None else [])
        return wired

    def start_sinks(*args: Any, **kwargs: Any) -> alerts.AlertSinks | None:
        listener = real_sinks(*args, **kwargs)
        sinks.extend([listener] if listener is not None else [])
        return listener

    monkeypatch.setattr(wiring, "wire_dependencies", wire)
    monkeypatch.setattr(alerts, "start_alert_sinks", start_sinks)
    monkeypatch.setattr(session, step, _fail)
    env_before = dict(os.environ)
    with pytest.raises(RuntimeError, match="planning failed"):
        session.plan_scan(demo=True, checks=["resilience.fail-open", "drills"])
    [wired] = started
    assert not _port_open(_idp_port(wired))
    assert [s.server.server_address[1] for s in sinks if _port_open(s.server.server_address[1])] == []
    assert dict(os.environ) == env_before  # OIDC_ISSUER, QUEUE_URL, the webhook URL: all restored


def test_the_idp_double_serves_while_a_plan_lives() -> None:
    # The contrast that makes the test above meaningful: a planned scan's IdP port is open until release.
    plan = session.plan_scan(demo=True, checks=["resilience.fail-open"], crawl=False)
    try:
        wired = wiring.doubles_for(plan.target)
        assert wired is not None
        port = _idp_port(wired)
        assert _port_open(port)
    finally:
        wiring.release(plan.target)
        alerts.release_sinks(plan.target)
    assert not _port_open(port)
