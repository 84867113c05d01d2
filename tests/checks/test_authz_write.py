"""State-changing authorization probes: write cells of the policy matrix, BOLA writes, stale privileges."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, abort, jsonify, request

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.engine.writes import WritePolicy
from bastion.identity.login import login_roles_sync
from bastion.identity.matrix import WRITES_DENIED, cell_label
from bastion.model.schema import RoleConfig
from bastion.session import discover, plan_scan
from bastion.target.target import Target

WRITE_CHECKS = ["authz.policy-drift", "authz.bola-write", "authz.stale-privileges"]
PASSWORD = "Notes-Passw0rd!"
SEED_NOTES = {"n-41": ("erin", "groceries"), "n-42": ("erin", "dentist"), "n-77": ("frank", "gym")}


def _ids(result: ScanResult) -> set[str]:
    return {f.check_id for f in result.findings if f.severity.value != "info"}


# --- the demo oracle ----------------------------------------------------------------------------------


def test_write_bola_fires_on_the_planted_invoice_flaw(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="invoice_write_bola", checks=WRITE_CHECKS)
    found = {(f.check_id, f.location.method) for f in result.findings
             if f.location.path == "/api/invoices/{invoice_id}"}
    assert {("authz.bola-write", "PUT"), ("authz.bola-write", "DELETE"),
            ("authz.policy-drift", "PUT"), ("authz.policy-drift", "DELETE")} <= found
    bola = [f for f in result.findings if f.check_id == "authz.bola-write"]
    # One finding per route, listing every role that could do it.
    assert len(bola) == 2 and all("(as alice, bob)" in f.title for f in bola)
    cells = {(c.method, c.role): c for c in result.authz_matrix if c.path == "/api/invoices/{invoice_id}"}
    assert cells[("PUT", "bob")].drift and cells[("PUT", "admin")].actual == "allow"


def test_stale_privileges_fire_on_the_planted_flaw(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="stale_privileges", checks=WRITE_CHECKS)
    stale = [f for f in result.findings if f.check_id == "authz.stale-privileges"]
    assert len(stale) == 1 and stale[0].location.path == "/api/admin/users/{user_id}"
    assert stale[0].confidence.value == "confirmed"


def test_write_probes_are_silent_on_the_hardened_demo(scan_demo: Callable[..., ScanResult]) -> None:
    result = scan_demo(flaws="none", checks=WRITE_CHECKS)
    assert _ids(result) == set()
    assert not [c.errors for c in result.checks if c.errors]
    writes = [c for c in result.authz_matrix if c.method != "GET"]
    assert writes and all(c.actual != "untested" for c in writes) and not [c for c in writes if c.drift]


def test_writes_denied_leave_write_cells_untested() -> None:
    plan = plan_scan(demo=True, flaws="invoice_write_bola", checks=WRITE_CHECKS)
    plan.options.writes = WritePolicy.resolve("none", in_process=True)
    result = run_scan(plan.target, plan.surface, plan.options)
    writes = [c for c in result.authz_matrix if c.method != "GET"]
    assert writes and {c.actual for c in writes} == {"untested"} and {c.reason for c in writes} == {WRITES_DENIED}
    assert cell_label(writes[0]) == f"untested ({WRITES_DENIED})"
    assert _ids(result) == set()  # nothing was written, so nothing is claimed
    reads = [c for c in result.authz_matrix if c.method == "GET"]
    assert reads and all(c.actual != "untested" for c in reads)


def test_url_targets_default_to_no_writes() -> None:
    assert not WritePolicy.resolve("auto", in_process=False).allows("PUT", "/api/invoices/1")
    assert WritePolicy.resolve("auto", in_process=True).allows("PUT", "/api/invoices/1")


# --- a third-party-style notes API --------------------------------------------------------------------


def notes_app(*, check_owner: bool = True, cache_role: bool = False) -> Flask:
    """Bearer-token notes API: own notes (read, edit, delete), an admin page and an admin role setter."""
    app = Flask("notes")
    users = {"erin": {"id": 11, "role": "member"}, "frank": {"id": 12, "role": "member"},
             "root": {"id": 1, "role": "superuser"}}
    notes = {k: {"owner": o, "text": t} for k, (o, t) in SEED_NOTES.items()}
    tokens: dict[str, dict[str, str]] = {}

    def reset() -> None:
        notes.clear()
        notes.update({k: {"owner": o, "text": t} for k, (o, t) in SEED_NOTES.items()})
        for name, role in (("erin", "member"), ("frank", "member"), ("root", "superuser")):
            users[name]["role"] = role

    app.config["reset"] = reset

    def me() -> tuple[str, str]:
        session = tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if session is None:
            abort(401)
        name = session["name"]
        return name, session["role"] if cache_role else users[name]["role"]

    @app.post("/auth/token")
    def token() -> Any:
        body = request.get_json(silent=True) or {}
        if body.get("password") != PASSWORD or body.get("username") not in users:
            return jsonify(error="bad credentials"), 401
        value = secrets.token_hex(16)
        tokens[value] = {"name": body["username"], "role": users[body["username"]]["role"]}
        return jsonify(access_token=value)

    @app.get("/whoami")
    def whoami() -> Any:
        name, role = me()
        return jsonify(id=users[name]["id"], name=name, role=users[name]["role"])

    @app.get("/notes")
    def my_notes() -> Any:
        name, _ = me()
        return jsonify(notes=[{"id": k, "text": v["text"]} for k, v in notes.items() if v["owner"] == name])

    def note_of(note_id: str, name: str, role: str) -> dict[str, str]:
        found = notes.get(note_id)
        if found is None or (check_owner and found["owner"] != name and role != "superuser"):
            abort(404)
        return found

    @app.get("/notes/<note_id>")
    def read_note(note_id: str) -> Any:
        name, role = me()
        return jsonify(id=note_id, **note_of(note_id, name, role))

    @app.put("/notes/<note_id>")
    def edit_note(note_id: str) -> Any:
        name, role = me()
        found = note_of(note_id, name, role)
        found["text"] = str((request.get_json(silent=True) or {}).get("text", found["text"]))[:200]
        return jsonify(id=note_id, **found)

    @app.delete("/notes/<note_id>")
    def delete_note(note_id: str) -> Any:
        name, role = me()
        note_of(note_id, name, role)
        del notes[note_id]
        return "", 204

    @app.get("/admin/stats")
    def stats() -> Any:
        _, role = me()
        if role != "superuser":
            abort(403)
        return jsonify(notes_total=len(notes), users_total=len(users), storage="sqlite-primary-eu")

    @app.patch("/admin/users/<int:user_id>")
    def set_role(user_id: int) -> Any:
        _, role = me()
        if role != "superuser":
            abort(403)
        new = (request.get_json(silent=True) or {}).get("role")
        target = next((u for u in users.values() if u["id"] == user_id), None)
        if target is None or new not in ("member", "superuser"):
            abort(400)
        target["role"] = new
        return jsonify(id=user_id, role=new)

    return app


def scan_notes(writes: str = "auto", **flags: bool) -> ScanResult:
    app = notes_app(**flags)
    target = Target.from_app(app)
    target.reset_hook = lambda a: a.config["reset"]()
    surface = discover(target, crawl=False)
    configs = {name: RoleConfig.model_validate({"login": {"path": "/auth/token", "json": {
        "username": name, "password": PASSWORD}}}) for name in ("erin", "frank", "root")}
    roles = login_roles_sync(target, configs)
    options = ScanOptions(checks=WRITE_CHECKS, roles=roles, secrets=[PASSWORD],
                          access={"GET /admin/stats": ["root"], "PATCH /admin/users/{user_id}": ["root"],
                                  "PUT /notes/{note_id}": ["owner", "root"]},
                          writes=WritePolicy.resolve(writes, in_process=True))
    return run_scan(target, surface, options)


def test_a_safe_notes_api_scans_clean() -> None:
    result = scan_notes()
    assert _ids(result) == set() and not [c.errors for c in result.checks if c.errors]


def test_bola_writes_on_a_notes_api() -> None:
    result = scan_notes(check_owner=False)
    bola = {f.location.method for f in result.findings if f.check_id == "authz.bola-write"}
    assert bola == {"PUT", "DELETE"}
    assert "authz.stale-privileges" not in _ids(result)


def test_stale_privileges_on_a_notes_api_with_roles_in_the_token() -> None:
    result = scan_notes(cache_role=True)
    assert _ids(result) == {"authz.stale-privileges"}


@pytest.mark.parametrize("writes", ["none", ["GET /notes"]])
def test_notes_api_without_write_permission_sends_no_writes(writes: Any) -> None:
    result = scan_notes(writes=writes, check_owner=False, cache_role=True)
    assert _ids(result) == set()
