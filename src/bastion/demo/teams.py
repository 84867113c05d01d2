"""Demo teams: members read their team's runbook; site admins manage memberships and team roles.

Flaws planted here, each next to its safe twin:
- `stale_team_membership`: a team's membership is resolved once per credential (session cookie or
  bearer token) and cached, like a claim baked into a token; removing a member does not reach the
  sessions and tokens it already holds.
- `team_roles_member_writable`: any member of a team may change its members' roles (the site-admin check
  is missing), so a member makes itself or another account a team admin.
- `team_role_change_unaudited`: team role changes and member removals leave no audit record.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, request

from bastion.demo.flask_app import audit, db, login_required, planted

teams_bp = Blueprint("demo_teams", __name__)

TEAM_ROLES = ("member", "admin")
# The seeded team: (id, name, runbook) and its members (username, team role).
SEED_TEAM = (1, "Operations", "1. Page the on-call. 2. Freeze deploys. 3. Open the incident channel.")
SEED_MEMBERS = (("admin", "admin"), ("alice", "member"), ("bob", "member"))
_SCHEMA = ("CREATE TABLE IF NOT EXISTS teams (id INTEGER PRIMARY KEY, name TEXT NOT NULL, runbook TEXT NOT NULL)",
           "CREATE TABLE IF NOT EXISTS team_members (team_id INTEGER NOT NULL, user_id INTEGER NOT NULL, "
           "role TEXT NOT NULL, PRIMARY KEY (team_id, user_id))")
# App-wide cache of membership answers per credential (the stale_team_membership flaw).
_CACHE = "bastion_demo.team_membership"


def _ensure_teams() -> None:
    """Create and seed the tables on first use (the demo's reset empties them; the next request reseeds)."""
    conn = db()
    for statement in _SCHEMA:
        conn.execute(statement)
    if conn.execute("SELECT 1 FROM teams LIMIT 1").fetchone() is not None:
        return
    conn.execute("INSERT OR IGNORE INTO teams (id, name, runbook) VALUES (?,?,?)", SEED_TEAM)
    for username, role in SEED_MEMBERS:
        conn.execute("INSERT OR IGNORE INTO team_members (team_id, user_id, role) "
                     "SELECT ?, id, ? FROM users WHERE username = ?", (SEED_TEAM[0], role, username))


def _credential() -> str:
    """What identifies the caller's session or token (never stored in clear)."""
    raw = g.get("session_id") or request.headers.get("Authorization", "")
    return hashlib.sha256(str(raw).encode("utf-8")).hexdigest()


def _member_now(team_id: int, user_id: int) -> bool:
    row = db().execute("SELECT 1 FROM team_members WHERE team_id = ? AND user_id = ?", (team_id, user_id)).fetchone()
    return row is not None


def _is_member(team_id: int) -> bool:
    """Whether the caller belongs to the team: from the database, or from a per-credential cache (the flaw)."""
    if not planted("stale_team_membership"):
        return _member_now(team_id, g.user["id"])
    cache: dict[tuple[str, int], bool] = current_app.extensions.setdefault(_CACHE, {})
    key = (_credential(), team_id)
    if key not in cache:
        cache[key] = _member_now(team_id, g.user["id"])
    return cache[key]


def _team(team_id: int) -> Any:
    _ensure_teams()
    row = db().execute("SELECT * FROM teams WHERE id = ?", (team_id,)).fetchone()
    if row is None:
        abort(404)
    return row


@teams_bp.get("/api/teams")
@login_required
def api_teams() -> Any:
    """The caller's teams."""
    _ensure_teams()
    rows = db().execute("SELECT t.id, t.name, m.role FROM teams t JOIN team_members m ON m.team_id = t.id "
                        "WHERE m.user_id = ? ORDER BY t.id", (g.user["id"],)).fetchall()
    return jsonify(teams=[{"id": r["id"], "name": r["name"], "my_role": r["role"]} for r in rows])


@teams_bp.get("/api/teams/<int(max=2147483647):team_id>/runbook")
@login_required
def api_team_runbook(team_id: int) -> Any:
    team = _team(team_id)
    if not _is_member(team_id) and g.user["role"] != "admin":
        abort(404)  # non-members do not learn that the team exists
    return jsonify(team_id=team["id"], name=team["name"], runbook=team["runbook"])


def _may_manage(team_id: int) -> bool:
    """Site admins manage memberships; with the flaw, any member of the team does."""
    if g.user["role"] == "admin":
        return True
    return planted("team_roles_member_writable") and _member_now(team_id, g.user["id"])


def _target_member(team_id: int, user_id: int) -> Any:
    row = db().execute("SELECT u.username, m.role FROM team_members m JOIN users u ON u.id = m.user_id "
                       "WHERE m.team_id = ? AND m.user_id = ?", (team_id, user_id)).fetchone()
    if row is None:
        abort(404)
    return row


@teams_bp.put("/api/teams/<int(max=2147483647):team_id>/members/<int(max=2147483647):user_id>")
@login_required
def api_team_member_role(team_id: int, user_id: int) -> Any:
    """Change a member's team role."""
    _team(team_id)
    if not _may_manage(team_id):
        abort(403)
    member = _target_member(team_id, user_id)
    body = request.get_json(silent=True)
    role = body.get("role") if isinstance(body, dict) else None
    if role not in TEAM_ROLES:
        return jsonify(error=f"role must be one of {', '.join(TEAM_ROLES)}"), 400
    db().execute("UPDATE team_members SET role = ? WHERE team_id = ? AND user_id = ?", (role, team_id, user_id))
    if not planted("team_role_change_unaudited"):
        audit("team.member.role", f"team={team_id} user={member['username']} role={member['role']}->{role}")
    return jsonify(team_id=team_id, user_id=user_id, role=role)


@teams_bp.delete("/api/teams/<int(max=2147483647):team_id>/members/<int(max=2147483647):user_id>")
@login_required
def api_team_member_remove(team_id: int, user_id: int) -> Any:
    """Remove a member from the team."""
    _team(team_id)
    if g.user["role"] != "admin":
        abort(403)
    member = _target_member(team_id, user_id)
    db().execute("DELETE FROM team_members WHERE team_id = ? AND user_id = ?", (team_id, user_id))
    if not planted("team_role_change_unaudited"):
        audit("team.member.remove", f"team={team_id} user={member['username']}")
    return "", 204
