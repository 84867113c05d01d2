"""Load the threat catalog shipped with Bastion."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bastion.errors import ConfigError
from bastion.findings.model import Severity

Stride = Literal["spoofing", "tampering", "repudiation", "information-disclosure", "denial-of-service",
                 "elevation-of-privilege"]


class Threat(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    stride: list[Stride]
    cwe: int
    severity: Severity
    owasp: list[str] = Field(default_factory=list, description="OWASP Top 10 2021 ids, e.g. A03:2021")
    owasp_api: list[str] = Field(default_factory=list, description="OWASP API Top 10 2023, e.g. API8:2023")
    asvs: list[str] = Field(default_factory=list, description="OWASP ASVS 4.0.3 requirement ids")
    summary: str = Field(description="one line: what the flaw is")
    why: str = Field(description="why it is bad")
    example: str = ""
    mitigation: str

    @property
    def owasp_refs(self) -> list[str]:
        return [*self.owasp, *self.owasp_api]


@cache
def load_catalog() -> dict[str, Threat]:
    """All threats by id, from every YAML file in bastion/catalog/threats/."""
    threats: dict[str, Threat] = {}
    folder = resources.files("bastion.catalog") / "threats"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        name = f"catalog/threats/{entry.name}"
        data = yaml.safe_load(entry.read_text(encoding="utf-8")) or []
        if not isinstance(data, list):
            raise ConfigError("expected a list of threats", file=name)
        for index, item in enumerate(data):
            try:
                threat = Threat.model_validate(item)
            except ValidationError as exc:
                raise ConfigError(str(exc), file=name, key=f"[{index}]") from None
            if threat.id in threats:
                raise ConfigError(f"duplicate threat id {threat.id!r}", file=name, key=f"[{index}]")
            threats[threat.id] = threat
    return threats


def get_threat(threat_id: str) -> Threat:
    try:
        return load_catalog()[threat_id]
    except KeyError:
        raise KeyError(f"unknown threat id {threat_id!r}; `bastion catalog` lists them") from None
