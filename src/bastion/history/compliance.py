"""Compliance references for a threat: the catalog's OWASP ASVS ids plus PCI DSS 4.0 and GDPR Art. 32."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import yaml

from bastion.catalog import load_catalog
from bastion.errors import ConfigError

DATA_FILE = "compliance.yaml"
FRAMEWORKS = ("pci_dss", "gdpr")


@cache
def compliance_table() -> dict[str, dict[Any, dict[str, list[str]]]]:
    """The shipped mapping (by_family, by_threat, by_cwe), validated once."""
    name = f"history/data/{DATA_FILE}"
    data = yaml.safe_load((resources.files("bastion.history") / "data" / DATA_FILE).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", file=name)
    table: dict[str, dict[Any, dict[str, list[str]]]] = {}
    for section in ("by_family", "by_threat", "by_cwe"):
        entries = data.get(section) or {}
        for key, refs in entries.items():
            if not isinstance(refs, dict) or set(refs) - set(FRAMEWORKS):
                raise ConfigError(f"entries map {' and '.join(FRAMEWORKS)} to lists", file=name,
                                  key=f"{section}.{key}")
        table[section] = entries
    return table


def compliance_refs(threat_id: str, cwe: int | None = None) -> dict[str, list[str]]:
    """ASVS (from the catalog), PCI DSS 4.0 and GDPR references for a threat id (and its CWE)."""
    threat = load_catalog().get(threat_id)
    if cwe is None and threat is not None:
        cwe = threat.cwe
    table = compliance_table()
    matches = [table["by_family"].get(threat_id.split(".", 1)[0]), table["by_threat"].get(threat_id),
               table["by_cwe"].get(cwe) if cwe is not None else None]
    refs: dict[str, list[str]] = {"asvs": list(threat.asvs) if threat else []}
    for framework in FRAMEWORKS:
        found = {ref for m in matches if m for ref in m.get(framework, [])}
        refs[framework] = sorted(found, key=_natural)
    return refs


def _natural(ref: str) -> tuple[Any, ...]:
    """Sort "6.2.4" before "10.2.1" and "Art. 32(1)(a)" before "Art. 32(2)"."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", ref))
