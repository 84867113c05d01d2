"""Demo collections: small owner-scoped CRUD APIs (create, read, update, delete by id) for stateful fuzzing.

Four collections share one table and one set of handlers: bookmarks, labels, drafts and memos. Flaws
planted here (each next to its safe twin), one per collection so that each shows in its own sequence:
- `fuzz_state_delete_ineffective` (bookmarks): DELETE only marks the row, the read-by-id path forgets to
  filter it, so a deleted bookmark stays readable by its id (the listing filters it).
- `fuzz_state_update_lost` (labels): PUT answers 200 and echoes the request, but saves only the title.
- `fuzz_state_crash_after_update` (drafts): an update stores the revision as text ("r2"); reading an
  edited draft then raises (500). Nothing but a create → update → read sequence reaches it.
- `fuzz_state_foreign_read` (memos): reading a memo by id does not check its owner (the threat model
  says `GET /api/memos/{memo_id}: [owner]`).
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import Blueprint, g, jsonify, request

from bastion.demo import flask_app as core

bookmarks_bp = Blueprint("demo_bookmarks", __name__)

MAX_TITLE = 200
MAX_URL = 500
MAX_ROW_ID = 2**63 - 1
# collection (URL segment) -> the flaw planted in it
COLLECTIONS = {"bookmarks": "fuzz_state_delete_ineffective", "labels": "fuzz_state_update_lost",
               "drafts": "fuzz_state_crash_after_update", "memos": "fuzz_state_foreign_read"}
_SCHEMA = ("CREATE TABLE IF NOT EXISTS collection_items (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
           "owner_id INTEGER NOT NULL, title TEXT NOT NULL, url TEXT NOT NULL, revision TEXT NOT NULL DEFAULT '1', "
           "deleted INTEGER NOT NULL DEFAULT 0)")
_READ = "SELECT id, owner_id, title, url, revision, deleted FROM collection_items WHERE id = ? AND kind = ?"
_UPDATES = {"title": "UPDATE collection_items SET title = ?, revision = ? WHERE id = ?",
            "url": "UPDATE collection_items SET url = ?, revision = ? WHERE id = ?"}


def _signed_in(view: Any) -> Any:
    """flask_app.login_required, looked up per call (flask_app imports this module while loading)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return core.login_required(view)(*args, **kwargs)

    return wrapper


def _db() -> Any:
    conn = core.db()
    conn.execute(_SCHEMA)
    return conn


def _flawed(kind: str) -> bool:
    return core.planted(COLLECTIONS[kind])


def _fields(partial: bool) -> tuple[dict[str, str], str | None]:
    """The validated title/url of the JSON body, or an error message."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {}, "expected a JSON object"
    out: dict[str, str] = {}
    for name, value, limit in (("title", body.get("title"), MAX_TITLE), ("url", body.get("url"), MAX_URL)):
        if value is None and partial:
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            return {}, f"{name} must be a non-empty string of at most {limit} characters"
        out[name] = value
    return out, None


def _own(kind: str, item_id: int) -> Any:
    """The caller's live item of this collection, or None (the flaws skip one of the filters)."""
    if not 0 < item_id <= MAX_ROW_ID:
        return None  # sqlite integers are 64-bit: a larger id cannot exist (and would not bind)
    row = _db().execute(_READ, (item_id, kind)).fetchone()
    if row is None:
        return None
    if row["deleted"] and not (kind == "bookmarks" and _flawed(kind)):
        return None
    if row["owner_id"] != g.user["id"] and not (kind == "memos" and _flawed(kind)):
        return None
    return row


def _json(row: Any) -> dict[str, Any]:
    # The flawed drafts store "r2" after an edit; int() of it raises on every later read.
    return {"id": row["id"], "title": row["title"], "url": row["url"], "revision": int(row["revision"])}


def _collection(kind: str) -> None:
    """Register list, create, read, update and delete routes for one collection."""
    base, param = f"/api/{kind}", f"{kind[:-1]}_id"

    @bookmarks_bp.get(base, endpoint=f"{kind}_list")
    @_signed_in
    def list_items() -> Any:
        rows = _db().execute("SELECT id, title, url, revision FROM collection_items WHERE kind = ? AND owner_id = ? "
                             "AND deleted = 0 ORDER BY id", (kind, g.user["id"])).fetchall()
        return jsonify(items=[_json(r) for r in rows])

    @bookmarks_bp.post(base, endpoint=f"{kind}_create")
    @_signed_in
    def create_item() -> Any:
        fields, error = _fields(partial=False)
        if error:
            return jsonify(error=error), 400
        cur = _db().execute("INSERT INTO collection_items (kind, owner_id, title, url) VALUES (?, ?, ?, ?)",
                            (kind, g.user["id"], fields["title"], fields["url"]))
        return jsonify(id=cur.lastrowid, **fields), 201

    @bookmarks_bp.get(f"{base}/<int:{param}>", endpoint=f"{kind}_read")
    @_signed_in
    def read_item(**ids: int) -> Any:
        row = _own(kind, ids[param])
        return (jsonify(_json(row)), 200) if row is not None else (jsonify(error="not found"), 404)

    @bookmarks_bp.put(f"{base}/<int:{param}>", endpoint=f"{kind}_update")
    @_signed_in
    def update_item(**ids: int) -> Any:
        row = _own(kind, ids[param])
        if row is None:
            return jsonify(error="not found"), 404
        fields, error = _fields(partial=True)
        if error:
            return jsonify(error=error), 400
        revision = int(row["revision"]) + 1
        stored = f"r{revision}" if kind == "drafts" and _flawed(kind) else str(revision)
        for name, value in fields.items():
            if name == "url" and kind == "labels" and _flawed(kind):
                continue  # the mapper was never taught the url column: dropped, yet the answer is 200
            _db().execute(_UPDATES[name], (value, stored, row["id"]))
        return jsonify(id=row["id"], **fields)

    @bookmarks_bp.delete(f"{base}/<int:{param}>", endpoint=f"{kind}_delete")
    @_signed_in
    def delete_item(**ids: int) -> Any:
        row = _own(kind, ids[param])
        if row is None:
            return jsonify(error="not found"), 404
        # Soft delete: rows are kept for the nightly analytics job; every read path must filter them.
        _db().execute("UPDATE collection_items SET deleted = 1 WHERE id = ?", (row["id"],))
        return "", 204


for _kind in COLLECTIONS:
    _collection(_kind)
