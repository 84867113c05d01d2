"""The security audit trail the model's `audit:` section declares: tamper evidence and secrets in it.

audit.tamper-evident: the trail's verification (`audit.verify`) must pass on the untouched trail;
Bastion then edits one stored record through the model's `audit.tamper` hook (in-process targets)
and the verification must fail. A trail with no verification at all is unverifiable: a finding too.

audit.secrets-in-trail: every role with a login is sent once more with a canary password (a failed
login, which trails record), then the trail (`audit.log`) is read; the canary or a configured
password in it is a finding. Both checks change state (a failed-login counter, an edited record)
and reset the target once at their end.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.errors import BastionError
from bastion.findings.evidence import exchange_evidence, note
from bastion.findings.model import Confidence, Finding, Location
from bastion.findings.redact import Redactor
from bastion.identity.login import login_role
from bastion.identity.probe import RecordingClient
from bastion.privacy.hooks import as_text, call_hook, entry, roles_to_try
from bastion.target.exchange import Exchange

NO_AUDIT = "the model declares no audit trail (audit:)"
_SECRET_FIELD = re.compile(r"passw|passphrase|pwd|secret", re.IGNORECASE)
# JSON flags a verification endpoint may answer with; any of them false = the trail is broken.
_VERDICT_KEYS = ("valid", "ok", "verified", "intact")
_DENIED = (401, 403, 404, 405)
MIN_SECRET_LEN = 6


def _audit(ctx: CheckContext) -> Any:
    cfg = getattr(ctx.config, "audit", None)
    if cfg is None:
        ctx.skip(NO_AUDIT)
    return cfg


def _location(ctx: CheckContext, spec: str) -> Location:
    where = entry(spec)
    return Location(method=where[0], path=where[1]) if where else Location(file=f"audit: {spec}")


# --- verification ------------------------------------------------------------------------------------


def _verdict(ex: Exchange) -> bool:
    """An endpoint's verdict: 2xx without a false valid/ok/verified/intact flag = intact."""
    if not 200 <= ex.status < 300:
        return False
    try:
        body = json.loads(ex.text)
    except ValueError:
        return True
    return not (isinstance(body, dict) and any(body.get(k) is False for k in _VERDICT_KEYS))


async def _verify(ctx: CheckContext, spec: str, role: str | None) -> tuple[bool, Exchange | None] | None:
    """(intact, exchange) from the model's verification; None when Bastion cannot call it."""
    where = entry(spec)
    if where is None:
        return bool(await call_hook(ctx, spec)), None
    for as_role in roles_to_try(ctx, spec, role):
        ex = await ctx.send(where[0], where[1], as_role=as_role)
        if ex.status not in _DENIED:
            return _verdict(ex), ex
    return None


@check(id="audit.tamper-evident", threat="audit.tamper-evident", scope="target")
async def audit_tamper_evident(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Edit one audit record via the model's hook; the trail's verification must notice."""
    cfg = _audit(ctx)
    if cfg is None:
        return
    if cfg.verify is None:
        yield ctx.finding(title="Audit trail has no verification (hash chain or signature check)",
                          location=_location(ctx, cfg.log), confidence=Confidence.firm,
                          evidence=[note("audit section", f"log: {cfg.log}; no `verify:` declared")])
        return
    if cfg.tamper is None or entry(cfg.tamper) is not None or not ctx.target.in_process:
        ctx.skip("tampering needs an in-process target and an `audit.tamper` hook ('module:function')")
        return
    before = await _verify(ctx, cfg.verify, cfg.role)
    if before is None or not before[0]:
        ctx.skip("the trail's verification does not pass on the untouched trail (or cannot be called)")
        return
    if not ctx.may_write("PATCH", (entry(cfg.log) or ("GET", "/"))[1]):
        ctx.skip("writes not allowed: tampering with the trail edits a record")
        return
    changed = as_text(await call_hook(ctx, cfg.tamper)) or "one record edited"
    try:
        after = await _verify(ctx, cfg.verify, cfg.role)
    finally:
        await ctx.reset()
    if after is not None and after[0]:
        evidence = [note("record edited through the model's tamper hook", changed)]
        if after[1] is not None:
            evidence += exchange_evidence(after[1], "verification after the edit still reports the trail intact")
        yield ctx.finding(title="Audit trail edited without detection: verification still passes",
                          location=_location(ctx, cfg.verify), confidence=Confidence.confirmed,
                          evidence=evidence)


# --- secrets in the trail -----------------------------------------------------------------------------


def _with_password(config: Any, password: str) -> Any | None:
    """The role's login config with every secret-named field set to `password`; None without one."""
    login = getattr(config, "login", None)
    if login is None:
        return None
    body = login.json_body if login.json_body is not None else login.form
    if not body or not any(_SECRET_FIELD.search(str(k)) for k in body):
        return None
    swapped = {k: (password if _SECRET_FIELD.search(str(k)) else v) for k, v in body.items()}
    key = "json_body" if login.json_body is not None else "form"
    return config.model_copy(update={"login": login.model_copy(update={key: swapped}), "mfa": None})


def _configured_passwords(ctx: CheckContext) -> set[str]:
    values: set[str] = set()
    for config in ctx.role_configs.values():
        login = getattr(config, "login", None)
        body = (login.json_body or login.form or {}) if login is not None else {}
        values |= {str(v) for k, v in body.items() if _SECRET_FIELD.search(str(k)) and v}
        basic = getattr(config, "basic", None)
        if basic is not None:
            values.add(basic.password)
    return {v for v in values if len(v) >= MIN_SECRET_LEN}


async def _failed_logins(ctx: CheckContext) -> list[str]:
    """One failed login per role, each with its own canary password; the canaries sent."""
    canaries = []
    for name, config in ctx.role_configs.items():
        canary = "Pw-" + ctx.canary(12)
        wrong = _with_password(config, canary)
        if wrong is None or not ctx.may_write(wrong.login.method, wrong.login.path):
            continue
        await fail_login(ctx, name, wrong)
        canaries.append(canary)
    return canaries


async def fail_login(ctx: CheckContext, name: str, wrong: Any) -> None:
    """Log `name` in with the wrong credentials of `wrong` (a RoleConfig); the expected failure is swallowed."""
    recorder = RecordingClient(ctx.client)
    try:
        await login_role(recorder, name, wrong)  # type: ignore[arg-type]
    except BastionError:
        pass  # the failure is the point
    finally:
        ctx.stats.requests += len(recorder.exchanges)


async def _read_trail(ctx: CheckContext, spec: str, role: str | None) -> tuple[str, Exchange | None] | None:
    where = entry(spec)
    if where is None:
        return as_text(await call_hook(ctx, spec)), None
    for as_role in roles_to_try(ctx, spec, role):
        ex = await ctx.send(where[0], where[1], as_role=as_role)
        if 200 <= ex.status < 300:
            return ex.text, ex
    return None


@check(id="audit.secrets-in-trail", threat="audit.secrets-in-trail", scope="target")
async def audit_secrets_in_trail(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Fail a login with a canary password per role, read the trail, look for the canaries and passwords."""
    cfg = _audit(ctx)
    if cfg is None:
        return
    if entry(cfg.log) is None and not ctx.target.in_process:
        ctx.skip("a hook trail (`audit.log: module:function`) needs an in-process target")
        return
    try:
        canaries = await _failed_logins(ctx)
        trail = await _read_trail(ctx, cfg.log, cfg.role)
    finally:
        await ctx.reset()
    if trail is None:
        ctx.skip(f"the audit trail {cfg.log} could not be read by any role")
        return
    text, ex = trail
    leaked = sorted(v for v in {*canaries, *_configured_passwords(ctx)} if v in text)
    if not leaked:
        return
    redact = Redactor([*leaked, *canaries, *_configured_passwords(ctx)])
    first = text.find(leaked[0])
    shown = redact.text(text[max(0, first - 150):first + 150])
    what = "the password of a failed login" if any(v in canaries for v in leaked) else "a role's password"
    evidence = [note(f"the trail holds {what} (masked)", shown)]
    if ex is not None:
        evidence.append(exchange_evidence(ex, "audit trail read")[0])
    yield ctx.finding(title=f"Audit trail records {what}", location=_location(ctx, cfg.log),
                      confidence=Confidence.confirmed, evidence=evidence)
