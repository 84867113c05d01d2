"""The flaw registry is the suite's oracle: it must be well-formed and strict about ids."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bastion.demo import FASTAPI_FLAWS, FLAWS, Flaw, create_app, create_fastapi_app, resolve_flaws
from bastion.demo.flaws import _TABLE

CHECK_ID = re.compile(r"^[a-z]+\.[a-z0-9-]+$")


def test_every_flaw_names_checks_and_a_location() -> None:
    for flaw_id, flaw in FLAWS.items():
        assert flaw.id == flaw_id
        assert flaw.checks, flaw_id
        assert all(CHECK_ID.match(c) for c in flaw.checks), flaw.checks
        assert flaw.title and flaw.location


def test_flaw_ids_are_unique_and_flaws_frozen() -> None:
    assert len({f.id for f in _TABLE}) == len(_TABLE) == len(FLAWS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        FLAWS["xxe"].id = "other"  # type: ignore[misc]
    assert isinstance(FLAWS["xxe"], Flaw)


def test_fastapi_flaws_are_registered_flaws() -> None:
    assert FASTAPI_FLAWS <= set(FLAWS)
    required = {"sqli_error", "xss_reflected", "ssti", "cors_reflect_origin", "missing_security_headers",
                "version_banner", "open_redirect"}
    assert required <= FASTAPI_FLAWS


@pytest.mark.parametrize(("spec", "expected"), [
    ("all", frozenset(FLAWS)),
    ("none", frozenset()),
    ("", frozenset()),
    ((), frozenset()),
    (None, frozenset()),
    ("xxe", frozenset({"xxe"})),
    (" xxe , ssti ", frozenset({"xxe", "ssti"})),
    (["xxe", "ssti"], frozenset({"xxe", "ssti"})),
    (("sqli_time",), frozenset({"sqli_time"})),
])
def test_resolve_flaws(spec: object, expected: frozenset[str]) -> None:
    assert resolve_flaws(spec) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["xxe,nope", ["nope"], "all,xxe"])
def test_unknown_flaw_ids_are_named_in_the_error(spec: object) -> None:
    with pytest.raises(ValueError, match="nope|all"):
        resolve_flaws(spec)  # type: ignore[arg-type]


def test_factories_reject_unknown_flaws() -> None:
    with pytest.raises(ValueError, match="sqli_eror"):
        create_app("sqli_eror")
    with pytest.raises(ValueError, match="sqli_eror"):
        create_fastapi_app("sqli_eror")
