"""Demo accounts API: own profile, user directory, invoice updates, admin role changes (authz flaws).

Planted flaws live next to their safe twins: `invoice_write_bola` (any signed-in user may change or
delete any invoice), `excessive_data_exposure` (the user directory returns whole user rows),
`stale_privileges` (a session keeps the role its user had when the session was first used).
`profile_mass_assignment` sits in the profile update view of flask_app.py.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, request

from bastion.demo.flask_app import admin_required, audit, db, invoice_json, login_required, planted

profile_bp = Blueprint("demo_profile", __name__)

ROLES = ("user", "admin")
INVOICE_STATUSES = ("draft", "open", "paid", "overdue", "void")
# The app-wide cache of the role each session was first used with (the stale_privileges flaw).
_ROLE_CACHE = "bastion_demo.session_roles"


@profile_bp.before_app_request
def _cached_session_role() -> None:
    """With stale_privileges planted, a session keeps the role it was first used with."""
    if not planted("stale_privileges") or g.get("user") is None or g.get("session_id") is None:
        return
    cache: dict[str, str] = current_app.extensions.setdefault(_ROLE_CACHE, {})
    role = cache.setdefault(g.session_id, g.user["role"])
    if role != g.user["role"]:
        g.user = {**dict(g.user), "role": role}


def profile_json(user: Any) -> dict[str, Any]:
    return {"id": user["id"], "username": user["username"], "email": user["email"],
            "display_name": user["display_name"], "bio": user["bio"], "address": {"city": user["city"]},
            "role": user["role"]}


@profile_bp.get("/api/profile")
@login_required
def api_my_profile() -> Any:
    user = db().execute("SELECT * FROM users WHERE id = ?", (g.user["id"],)).fetchone()
    return jsonify(profile_json(user))


@profile_bp.get("/api/users")
@login_required
def api_users() -> Any:
    """The member directory every signed-in user sees."""
    rows = db().execute("SELECT * FROM users ORDER BY id").fetchall()
    if planted("excessive_data_exposure"):
        # Serialised straight from the table: the client "only shows the name".
        return jsonify(users=[dict(r) for r in rows])
    return jsonify(users=[{"id": r["id"], "username": r["username"], "display_name": r["display_name"]}
                          for r in rows])


def _writable_invoice(invoice_id: int) -> Any:
    """The invoice if the caller may change it (owner or admin), else 404."""
    row = db().execute("SELECT * FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
    allowed = row is not None and (row["owner_id"] == g.user["id"] or g.user["role"] == "admin"
                                   or planted("invoice_write_bola"))
    if not allowed:
        abort(404)
    return row


@profile_bp.put("/api/invoices/<int(max=2147483647):invoice_id>")
@login_required
def api_update_invoice(invoice_id: int) -> Any:
    row = _writable_invoice(invoice_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="expected a JSON object"), 400
    customer = str(body.get("customer", row["customer"]))[:120]
    status = str(body.get("status", row["status"]))
    if status not in INVOICE_STATUSES or not customer.strip():
        return jsonify(error=f"status must be one of {', '.join(INVOICE_STATUSES)}; customer is required"), 400
    db().execute("UPDATE invoices SET customer = ?, status = ? WHERE id = ?", (customer, status, invoice_id))
    audit("invoice.update", f"id={invoice_id}")
    return jsonify(invoice_json(db().execute("SELECT * FROM invoices WHERE id = ?", (invoice_id,)).fetchone()))


@profile_bp.delete("/api/invoices/<int(max=2147483647):invoice_id>")
@login_required
def api_delete_invoice(invoice_id: int) -> Any:
    _writable_invoice(invoice_id)
    db().execute("DELETE FROM invoices WHERE id = ?", (invoice_id,))
    audit("invoice.delete", f"id={invoice_id}")
    return "", 204


@profile_bp.patch("/api/admin/users/<int(max=2147483647):user_id>")
@admin_required
def api_admin_set_role(user_id: int) -> Any:
    body = request.get_json(silent=True)
    role = body.get("role") if isinstance(body, dict) else None
    if role not in ROLES:
        return jsonify(error=f"role must be one of {', '.join(ROLES)}"), 400
    if db().execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id)).rowcount == 0:
        abort(404)
    audit("user.role", f"id={user_id} role={role}")
    return jsonify(id=user_id, role=role)
