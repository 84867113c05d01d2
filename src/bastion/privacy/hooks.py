"""Run what the threat model's privacy and audit sections name: a hook ('module:function') or an endpoint."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from bastion.engine.context import CheckContext
from bastion.target.exchange import Exchange
from bastion.target.target import load_app

_ENTRY = re.compile(r"^(?P<method>[A-Z]+) (?P<path>/\S*)$")


def entry(spec: str) -> tuple[str, str] | None:
    """('METHOD', '/path') for an endpoint spec, None for a hook."""
    match = _ENTRY.match(spec)
    return (match["method"], match["path"]) if match else None


async def call_hook(ctx: CheckContext, spec: str, *args: Any) -> Any:
    """Call a 'module:function' hook with the in-process app and `args`, in a worker thread."""
    hook = load_app(spec)
    return await asyncio.to_thread(hook, ctx.target.app, *args)


def roles_to_try(ctx: CheckContext, spec: str, preferred: str | None) -> list[str | None]:
    """Who calls an endpoint: the configured role, else the roles the access policy allows, else every role."""
    if preferred is not None:
        return [preferred] if preferred in ctx.roles else []
    allowed = ctx.access.get(spec, [])
    named = [r for r in allowed if r in ctx.roles]
    return list(named or ctx.roles) or [None]


async def call_entry(ctx: CheckContext, spec: str, preferred: str | None) -> tuple[str | None, Exchange] | None:
    """Send an endpoint spec as the first role it answers 2xx for; None when no role may call it."""
    method, path = entry(spec) or ("GET", "/")
    for role in roles_to_try(ctx, spec, preferred):
        ex = await ctx.send(method, path, as_role=role)
        if 200 <= ex.status < 300:
            return role, ex
    return None


def as_text(value: Any) -> str:
    """A hook's result as searchable text (records as dicts or lists are joined)."""
    if isinstance(value, (list, tuple)):
        return "\n".join(as_text(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)
