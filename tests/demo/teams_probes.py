"""Probes for the demo's team flaws (bastion/demo/teams.py): each True when the flaw is observable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from .authz_probes import _login_bob, _set_role


def _db(c: httpx.Client) -> Any:
    app: Any = c._transport.app  # type: ignore[attr-defined]  # the WSGI app behind the test client
    return app.extensions["bastion_demo"].workspace.db.connect()


def _stale_team_membership(c: httpx.Client) -> bool:
    _login_bob(c)
    assert c.get("/api/teams/1/runbook").status_code == 200
    with _db(c) as conn:  # the admin removes bob from the team while his session lives on
        conn.execute("DELETE FROM team_members WHERE user_id = (SELECT id FROM users WHERE username = 'bob')")
    return c.get("/api/teams/1/runbook").status_code == 200


def _team_roles_member_writable(c: httpx.Client) -> bool:
    _login_bob(c)
    return c.put("/api/teams/1/members/1", json={"role": "member"}).status_code == 200


def _team_role_change_unaudited(c: httpx.Client) -> bool:
    _set_role(c, "bob", "admin")  # a site admin without a second factor, for the probe
    _login_bob(c)
    assert c.put("/api/teams/1/members/2", json={"role": "admin"}).status_code == 200
    with _db(c) as conn:
        rows = conn.execute("SELECT 1 FROM audit_log WHERE action LIKE 'team.%'").fetchall()
    return not rows


TEAMS_PROBES: dict[str, Callable[[httpx.Client], bool]] = {
    "stale_team_membership": _stale_team_membership, "team_roles_member_writable": _team_roles_member_writable,
    "team_role_change_unaudited": _team_role_change_unaudited,
}
