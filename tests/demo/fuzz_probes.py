"""Probes for the demo's fuzzing flaws (bastion/demo/reports.py, the basket report), for PROBES."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from jsonschema import Draft202012Validator

BASKET = "/api/reports/basket"


def _fuzz_crash(c: httpx.Client) -> bool:
    assert c.post(BASKET, json={"quantities": [3, 12]}).status_code == 200
    assert c.post(BASKET, json={"quantities": [0]}).status_code == 400  # validation is there...
    return c.post(BASKET, json={"quantities": []}).status_code == 500  # ...but misses the empty list


def _published_schema(c: httpx.Client) -> dict[str, Any]:
    doc = c.get("/openapi.json").json()
    schema: dict[str, Any] = doc["paths"][BASKET]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    return schema


def _fuzz_contract(c: httpx.Client) -> bool:
    validator = Draft202012Validator(_published_schema(c))
    large = c.post(BASKET, json={"quantities": [3, 12]})
    assert large.status_code == 200 and validator.is_valid(large.json()), large.text
    small = c.post(BASKET, json={"quantities": [1, 2]})  # under the discount threshold
    assert small.status_code == 200
    return not validator.is_valid(small.json())


def _login(c: httpx.Client, username: str) -> None:
    from bastion.demo.db import USERS

    password = next(pw for name, _, pw, _, _ in USERS if name == username)
    assert c.post("/login", data={"username": username, "password": password}).status_code == 302


def _created(c: httpx.Client, collection: str) -> str:
    """Sign in as bob (no second factor), create an item, return its URL."""
    _login(c, "bob")
    created = c.post(f"/api/{collection}", json={"title": "docs", "url": "https://example.org/docs"})
    assert created.status_code == 201, created.text
    return f"/api/{collection}/{created.json()['id']}"


def _fuzz_state_delete_ineffective(c: httpx.Client) -> bool:
    """A deleted bookmark is still readable by its id (bastion/demo/fuzz_state.py), never listed."""
    item = _created(c, "bookmarks")
    assert c.delete(item).status_code == 204
    assert c.get("/api/bookmarks").json() == {"items": []}
    return c.get(item).status_code == 200


def _fuzz_state_update_lost(c: httpx.Client) -> bool:
    item = _created(c, "labels")
    assert c.put(item, json={"title": "new", "url": "https://example.org/new"}).status_code == 200
    return c.get(item).json()["url"] == "https://example.org/docs"


def _fuzz_state_crash_after_update(c: httpx.Client) -> bool:
    item = _created(c, "drafts")
    assert c.get(item).status_code == 200
    assert c.put(item, json={"title": "second"}).status_code == 200
    return c.get(item).status_code == 500


def _fuzz_state_foreign_read(c: httpx.Client) -> bool:
    item = _created(c, "memos")
    c.cookies.clear()
    _login(c, "guest")
    return c.get(item).status_code == 200


FUZZ_PROBES: dict[str, Callable[..., bool]] = {
    "fuzz_crash": _fuzz_crash, "fuzz_contract": _fuzz_contract,
    # stateful sequences (bastion/demo/fuzz_state.py)
    "fuzz_state_delete_ineffective": _fuzz_state_delete_ineffective,
    "fuzz_state_update_lost": _fuzz_state_update_lost,
    "fuzz_state_crash_after_update": _fuzz_state_crash_after_update,
    "fuzz_state_foreign_read": _fuzz_state_foreign_read,
}
