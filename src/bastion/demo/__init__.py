"""The shipped demo service: a small shop whose flaws can be planted one by one (the test oracle)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bastion.demo.flaws import FASTAPI_FLAWS, FLAWS, Flaw, resolve_flaws

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["FASTAPI_FLAWS", "FLAWS", "Flaw", "create_app", "create_fastapi_app", "resolve_flaws"]


def create_app(flaws: str | Iterable[str] | None = "all") -> Flask:
    """The Flask demo app with `flaws` planted ("all", "none", "a,b" or an iterable of ids)."""
    from bastion.demo.flask_app import create_app as build

    return build(flaws)


def create_fastapi_app(flaws: str | Iterable[str] | None = "all") -> Any:
    """The FastAPI demo app; plants the requested flaws it implements (see FASTAPI_FLAWS)."""
    from bastion.demo.fastapi_app import create_fastapi_app as build

    return build(flaws)
