"""privacy.erasure-incomplete: after an erasure request, the user's data is gone from every listed store.

The model's `erasure:` names the request that erases a user (`METHOD /path` sent as the user, or a
`module:function` hook called with the app and the user name) and the stores where the data must be
gone. The subject is the least privileged configured role with a known account name (its login's user
name or e-mail field). Before the erasure every store (and every export in the surface, as in
privacy.retention) is read as every role; the subject's identifying values are its account names plus
the personal data (e-mail, phone, IBAN, card, national ids) in the records that name it. After the
erasure the stores are read again by everyone except the subject: a store that still returns one of
those values keeps the erased user's data. The check writes (it erases a user) and resets the target at
its end, logging the subject in again (it needs the target's reset hook).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.privacy import _store_location, _store_texts
from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import note
from bastion.findings.model import Confidence, Finding
from bastion.privacy.detectors import find_pii, mask_value
from bastion.privacy.hooks import call_hook, entry
from bastion.privacy.records import mentions, role_identity, split_records

# Personal data that identifies the subject in a record that names it.
IDENTIFYING_KINDS = frozenset({"email", "phone", "iban", "card_number", "ssn", "nino", "insee"})
# A longer "record" is a page that was not split into rows: other users' data would be taken for the subject's.
MAX_RECORD_CHARS = 500

StoreReads = list[tuple[str, str | None, str]]


def _subject(ctx: CheckContext) -> tuple[str, list[str]] | None:
    """(role, account names) of the least privileged role whose account name is known."""
    candidates = []
    for name in sorted(ctx.role_configs):
        names = role_identity(ctx.role_configs[name])
        if names and name in ctx.roles:
            # Fewer access-policy lines naming the role = fewer privileges; erasing an admin breaks more.
            privileges = sum(name in allowed for allowed in ctx.access.values())
            candidates.append((privileges, name, names))
    if not candidates:
        return None
    _, role, names = min(candidates)
    return role, names


def _identifying_values(names: list[str], reads: StoreReads) -> dict[str, str]:
    """value -> kind: the account names, and personal data in records that name the subject."""
    values = {n: "account name" for n in names}
    for _, _, text in reads:
        for record in split_records(text):
            if len(record) <= MAX_RECORD_CHARS and any(mentions(record, n) for n in names):
                values.update({m.value: m.kind for m in find_pii(record, IDENTIFYING_KINDS)})
    return values


def _holding(reads: StoreReads, subject: str, values: dict[str, str]) -> dict[str, set[str]]:
    """store -> the subject's values it returns to someone other than the subject."""
    held: dict[str, set[str]] = {}
    for where, role, text in reads:
        if role == subject:
            continue
        found = {v for v in values if mentions(text, v)}
        if found:
            held.setdefault(where, set()).update(found)
    return held


async def _erase(ctx: CheckContext, request: str, role: str, account: str) -> str | None:
    """Send the erasure request; what was done, or None when it did not succeed."""
    where = entry(request)
    if where is None:
        await call_hook(ctx, request, account)
        return f"{request} called for the account of role {role}"
    ex = await ctx.send(where[0], where[1], as_role=role)
    return f"{request} sent as {role}: {ex.status}" if 200 <= ex.status < 400 else None


def _ready(ctx: CheckContext, cfg: Any) -> bool:
    """Whether the erasure can be run here; records why not."""
    where = entry(cfg.request)
    if ctx.target.reset_hook is None:
        # Without a reset the erased account (a configured role) would stay deleted for the rest of the scan.
        ctx.skip("erasing a user needs the target's reset hook (target.reset) to restore the account")
    elif where is None and not ctx.target.in_process:
        ctx.skip("an erasure hook ('module:function') needs an in-process target")
    elif where is not None and "{" in where[1]:
        ctx.skip(f"the erasure request {cfg.request} has a path parameter: give the user's own endpoint")
    elif not ctx.may_write(*(where or ("DELETE", "/"))):
        ctx.skip(f"writes not allowed: the erasure request {cfg.request} deletes a user")
    else:
        return True
    return False


@check(id="privacy.erasure-incomplete", threat="privacy.erasure-incomplete", scope="target")
async def erasure_incomplete(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Erase a role's account through the model's erasure request; its data must leave every store."""
    cfg = getattr(ctx.config, "erasure", None)
    if cfg is None:
        ctx.skip("the model declares no erasure request (erasure:)")
        return
    subject = _subject(ctx)
    if subject is None:
        ctx.skip("no logged-in role with a known account name (a login user name or e-mail field)")
        return
    if not _ready(ctx, cfg):
        return
    role, names = subject
    before = await _store_texts(ctx, cfg.stores)
    values = _identifying_values(names, before)
    held_before = _holding(before, role, values)
    if not held_before:
        ctx.skip(f"no store returns data of role {role}'s account before the erasure: nothing to verify")
        return
    try:
        done = await _erase(ctx, cfg.request, role, names[0])
        after = await _store_texts(ctx, cfg.stores) if done else []
    finally:
        await ctx.reset(relogin=[role])
    if done is None:
        ctx.skip(f"the erasure request {cfg.request} did not succeed as {role}")
        return
    held_after = _holding(after, role, values)
    for where in sorted(held_after):
        kept = held_after[where] & held_before.get(where, set())
        if kept:
            yield _finding(ctx, where, role, done, {v: values[v] for v in kept})


def _finding(ctx: CheckContext, where: str, role: str, done: str, kept: dict[str, str]) -> Finding:
    shown = sorted(f"{kind}: {value if kind == 'account name' else mask_value(kind, value)}"
                   for value, kind in kept.items())
    return ctx.finding(
        title=f"Erased user's data still returned by {where}",
        confidence=Confidence.confirmed, location=_store_location(where),
        evidence=[note("erasure request", done),
                  note(f"still in {where} after the erasure (personal data masked)", "\n".join(shown))])
