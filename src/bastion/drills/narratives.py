"""Breach-drill narratives as data (narratives.yaml): steps with an attacker action and the detections expected."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bastion.errors import BastionError, ConfigError
from bastion.safeyaml import load_yaml_file

NARRATIVES_FILE = Path(__file__).with_name("narratives.yaml")
Action = Literal["credential-stuffing", "session-reuse", "data-export", "admin-calls", "role-change",
                 "poison-message"]
Expectation = Literal["detected", "blocked", "audited"]
PlaybookItem = Literal["alert-fired", "attacker-identifiable", "session-bound", "session-revocable",
                       "export-audited", "escalation-blocked", "escalation-alerted", "escalation-audited",
                       "poison-contained", "poison-alerted"]


class Step(BaseModel):
    """One attacker action and what the defences are expected to do about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1)
    action: Action
    says: str = Field(min_length=1)
    expect: list[Expectation] = Field(default_factory=list)


class Narrative(BaseModel):
    """An attack story: its steps in order and the playbook questions responders ask after it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)
    playbook: list[PlaybookItem] = Field(default_factory=list)


@cache
def load_narratives(path: Path = NARRATIVES_FILE) -> dict[str, Narrative]:
    """The narratives by id, in file order (ConfigError naming the file and entry on bad data)."""
    doc = load_yaml_file(path)
    if not isinstance(doc.data, list):
        raise ConfigError("expected a list of narratives", file=str(path))
    out: dict[str, Narrative] = {}
    for index, raw in enumerate(doc.data):
        try:
            narrative = Narrative.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(first["msg"], file=str(path), key=f"[{index}].{where}") from None
        out[narrative.id] = narrative
    return out


def select_narratives(ids: list[str] | None) -> list[Narrative]:
    """The named narratives (all when `ids` is empty); BastionError on an unknown id."""
    known = load_narratives()
    if not ids:
        return list(known.values())
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise BastionError(f"--narrative: unknown narrative {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[i] for i in ids]
