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


FUZZ_PROBES: dict[str, Callable[..., bool]] = {"fuzz_crash": _fuzz_crash, "fuzz_contract": _fuzz_contract}
