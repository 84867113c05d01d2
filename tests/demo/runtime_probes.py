"""Probes for the demo's runtime-injection flaws (bastion/demo/integrations.py), for PROBES.

Blind flaws show nothing in a response: their probes watch the app through a sensor session.
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Callable

import httpx

from bastion.demo.db import USERS
from bastion.sensors import SensorSession, sensor_session
from bastion.target.listener import LoopbackListener

PASSWORDS = {name: pw for name, _, pw, _, _ in USERS}


def _pickle_import(c: httpx.Client) -> bool:
    blob = base64.b64encode(pickle.dumps({"theme": "dark"})).decode()
    r = c.post("/api/preferences/import", json={"blob": blob})
    return r.status_code == 200 and r.json()["imported"] == ["theme"]


def _yaml_load(c: httpx.Client) -> bool:
    r = c.post("/api/rules/import", content=b"- !!python/tuple [1, 2]\n", headers={"content-type": "application/yaml"})
    return r.status_code == 200


def _webhook_ssrf(c: httpx.Client) -> bool:
    token = c.post("/api/auth/token", json={"username": "bob", "password": PASSWORDS["bob"]}).json()["access_token"]
    with LoopbackListener() as listener:
        c.post("/api/webhooks/test", json={"url": listener.url("bstprobehook1")},
               headers={"authorization": f"Bearer {token}"})
        return bool(listener.hits_for("bstprobehook1"))


def _blind_sqli(c: httpx.Client) -> bool:
    with sensor_session(SensorSession()) as s:
        r = c.get("/api/catalog/search", params={"q": "mug'||'bstprobesql1'||'"})
    return r.status_code == 200 and any("'||'bstprobesql1'||'" in e.raw_detail for e in s.of_kind("sql"))


def _blind_command_injection(c: httpx.Client) -> bool:
    with sensor_session(SensorSession()) as s:
        r = c.post("/api/archives", data={"name": "q1;echo bstprobecmd1"})
    return r.status_code == 202 and any("/bin/sh -c" in e.raw_detail and ";echo bstprobecmd1" in e.raw_detail
                                        for e in s.of_kind("subprocess"))


def _xpath_injection(c: httpx.Client) -> bool:
    r = c.get("/api/catalog/lookup", params={"sku": "x' or '1'='1"})
    return r.status_code == 200 and len(r.json()["products"]) == 3


def _ldap_injection(c: httpx.Client) -> bool:
    r = c.get("/api/directory", params={"name": "*)(cn=*"})
    return r.status_code == 200 and len(r.json()["people"]) == 3


RUNTIME_PROBES: dict[str, Callable[..., bool]] = {
    "pickle_import": _pickle_import, "yaml_load": _yaml_load, "webhook_ssrf": _webhook_ssrf,
    "blind_sqli": _blind_sqli, "blind_command_injection": _blind_command_injection,
    "xpath_injection": _xpath_injection, "ldap_injection": _ldap_injection,
}
