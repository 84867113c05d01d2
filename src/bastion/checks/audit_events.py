"""audit.events-missing: each security event the model's `audit.events` lists leaves a record with its actor.

For every event kind Bastion performs the action itself, reading the trail (`audit.log`) just before and
just after; the records that appeared in between are the action's records:
- login_failure / login_success: per distinct login endpoint of the configured roles, one login with a
  canary password, then one real login; the record must name the account and say it failed (resp. an
  outcome at all);
- export: the export entry points of the surface (as in privacy.pii-in-export), read as a role allowed;
- admin_action: safe (GET, no path parameter) entry points the access policy allows only to some roles,
  read as one of them;
- privilege_change (writes allowed): an admin-like role removes a non-admin role from a group it belongs
  to and changes its rights field (the routes bastion.identity.privileges finds generically:
  `DELETE /teams/{team_id}/members/{user_id}`, `PATCH /users/{id}` `{"role": ...}`, ...); the record
  must also name the target user (its account name, or its id as `id=`/`user_id:`...). Every change
  must be recorded.
A kind with no new record is "not recorded"; a record of the action that does not name the account is
"without the actor"; one without success/failure wording or an outcome/result/status field is "without
an outcome"; JSON records with no time field are "without a time". Exports and admin actions are judged
leniently (one recorded candidate is enough: not every download is an auditable export). The check
fails a login per login endpoint (a lockout counter) and resets the target at its end.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bastion.checks.audit_trail import NO_AUDIT, _configured_passwords, _read_trail, _with_password, fail_login
from bastion.checks.privacy import _export_endpoints
from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import note
from bastion.findings.model import Confidence, Finding, Location
from bastion.findings.redact import Redactor
from bastion.identity.ownership import (
    SelfView,
    admin_roles,
    allowed_roles,
    candidate_ids,
    is_2xx,
    role_pages,
    self_views,
)
from bastion.identity.privileges import (
    MAX_GROUP_IDS,
    group_pages,
    membership_routes,
    removal_request,
    rights_request,
    role_update_routes,
    role_values,
)
from bastion.identity.probe import fresh_login
from bastion.privacy.hooks import entry
from bastion.privacy.records import mentions, new_records, record_fields, role_identity, split_records
from bastion.surface.requests import build_request

MAX_EXPORTS = 3
MAX_ADMIN_ACTIONS = 5
MAX_SHOWN_RECORDS = 5
_LOGIN_WORDS = re.compile(r"(?i)log_?in|logon|sign_?in|auth|session|token|credential|password")
_EVENT_WORDS: dict[str, re.Pattern[str] | None] = {
    "login_failure": _LOGIN_WORDS, "login_success": _LOGIN_WORDS,
    "export": re.compile(r"(?i)export|download|dump"), "admin_action": None, "privilege_change": None,
}
_FAILURE = re.compile(r"(?i)fail|denied|deny|invalid|reject|refus|wrong|unauthori[sz]|forbidden|locked|"
                      r"bad.?(?:password|credential)|\b40[13]\b")
_OUTCOME = re.compile(rf"(?i){_FAILURE.pattern}|succe|granted|allowed|accepted|issued|completed|\bok\b|"
                      r"outcome|result|status|\b[2-5]\d\d\b")
_TIME_KEY = re.compile(r"(?i)time|^ts$|_at$|^at$|date|when|created|logged")
_UNSAFE_PATH = re.compile(r"(?i)logout|signout|sign-out|delete|purge|reset|revoke|remove|disable")
LABELS = {"login_failure": "Failed login", "login_success": "Successful login", "export": "Data export",
          "admin_action": "Admin action", "privilege_change": "Privilege change"}


@dataclass
class Attempt:
    """One performed action: what it was, who did it (account names) and the trail records it left."""

    kind: str
    where: str
    what: str
    names: list[str]
    records: list[str]
    # Who the action was done to (privilege changes): account names and ids.
    targets: list[str] = field(default_factory=list)

    def problem(self) -> str | None:
        """Why the action's record is not good enough; None when it is."""
        about = [r for r in self.records if any(mentions(r, n) for n in self.names)]
        if not about:
            words = _EVENT_WORDS.get(self.kind)
            related = [r for r in self.records if words is None or words.search(r)]
            return "recorded without the actor" if related else "not recorded"
        if self.targets and not any(_names_target(r, self.targets) for r in about):
            return "recorded without the target user"
        outcome = _FAILURE if self.kind == "login_failure" else _OUTCOME
        if not any(outcome.search(r) for r in about):
            return "recorded without an outcome"
        fields = [record_fields(r) for r in about]
        if all(f is not None for f in fields) and not any(_TIME_KEY.search(k) for f in fields for k in f or {}):
            return "recorded without a time"
        return None


async def _observe(ctx: CheckContext, cfg: Any, action: Callable[[], Awaitable[Any]]) -> tuple[Any, list[str]] | None:
    """Run `action` between two reads of the trail: (its result, the records that appeared)."""
    before = await _read_trail(ctx, cfg.log, cfg.role)
    if before is None:
        return None
    result = await action()
    after = await _read_trail(ctx, cfg.log, cfg.role)
    if after is None:
        return None
    return result, new_records(split_records(before[0]), split_records(after[0]))


def _login_roles(ctx: CheckContext) -> dict[str, str]:
    """login 'METHOD /path' -> the role that tries it: per login endpoint, a role without MFA if there is one."""
    chosen: dict[str, tuple[bool, str]] = {}
    for name in sorted(ctx.role_configs):
        config = ctx.role_configs[name]
        login = getattr(config, "login", None)
        if login is None or not role_identity(config) or _with_password(config, "x") is None:
            continue
        key, rank = f"{login.method} {login.path}", (config.mfa is not None, name)
        if key not in chosen or rank < chosen[key]:
            chosen[key] = rank
    return {key: rank[1] for key, rank in sorted(chosen.items())}


async def _login_attempts(ctx: CheckContext, cfg: Any, canaries: list[str]) -> list[Attempt]:
    attempts = []
    for where, role in _login_roles(ctx).items():
        config = ctx.role_configs[role]
        if not ctx.may_write(config.login.method, config.login.path):
            continue
        names = role_identity(config)
        canary = "Pw-" + ctx.canary(12)
        canaries.append(canary)
        wrong = _with_password(config, canary)

        async def fail(wrong: Any = wrong, role: str = role) -> None:
            await fail_login(ctx, role, wrong)

        seen = await _observe(ctx, cfg, fail)
        if seen is not None:
            attempts.append(Attempt("login_failure", where, f"login as {role} with a wrong password", names, seen[1]))

        async def succeed(role: str = role) -> Any:
            return await fresh_login(ctx, role)

        seen = await _observe(ctx, cfg, succeed)
        if seen is not None and seen[0] is not None:
            attempts.append(Attempt("login_success", where, f"login as {role}", names, seen[1]))
    return attempts


def _allowed(ctx: CheckContext, key: str) -> list[str]:
    named = [r for r in ctx.access.get(key, []) if r in ctx.roles]
    return named or sorted(ctx.roles)


async def _read_attempts(ctx: CheckContext, cfg: Any, kind: str, keys: list[str]) -> list[Attempt]:
    """GET each entry point as the first allowed role that gets a 2xx, observing the trail around it."""
    attempts = []
    for key in keys:
        path = key.split(" ", 1)[1]
        answered: list[str] = []

        async def read(path: str = path, key: str = key, answered: list[str] = answered) -> None:
            for role in _allowed(ctx, key):
                if 200 <= (await ctx.send("GET", path, as_role=role)).status < 300:
                    answered.append(role)
                    return

        seen = await _observe(ctx, cfg, read)
        if seen is not None and answered:
            role = answered[0]
            names = role_identity(ctx.role_configs.get(role)) or [role]
            attempts.append(Attempt(kind, key, f"GET {path} as {role}", names, seen[1]))
    return attempts


def _admin_entries(ctx: CheckContext, cfg: Any) -> list[str]:
    """Safe entry points the access policy grants to some roles only (never the trail itself)."""
    own = {cfg.log, cfg.verify}
    everyone = set(ctx.roles)
    keys = []
    for key, allowed in sorted(ctx.access.items()):
        where = entry(key)
        if where is None or where[0] != "GET" or "{" in where[1] or key in own or _UNSAFE_PATH.search(where[1]):
            continue
        granted = {r for r in allowed if r in everyone}
        if granted and granted < everyone and "owner" not in allowed:
            keys.append(key)
    return keys[:MAX_ADMIN_ACTIONS]



def _names_target(record: str, targets: list[str]) -> bool:
    """Whether a record names the target: an account name as a word, or an id as `id=2`, `"user_id": 2`."""
    for target in targets:
        if target.isdigit():
            if re.search(rf"(?i)\b\w*(?:id|user|target|subject|account)\w*[\"']?\s*[=:]\s*[\"']?{target}(?![\w-])",
                         record):
                return True
        elif mentions(record, target):
            return True
    return False


def _target_names(ctx: CheckContext, role: str, view: SelfView) -> list[str]:
    names = role_identity(ctx.role_configs.get(role)) or [role]
    return [*names, str(view.user_id)]


async def _observed_write(ctx: CheckContext, cfg: Any, spec: Any, role: str) -> list[str] | None:
    """The records a write left when it went through (2xx); None when it was refused or the trail is unreadable."""
    async def write() -> Any:
        return await ctx.send_spec(spec, as_role=role)

    seen = await _observe(ctx, cfg, write)
    return seen[1] if seen is not None and is_2xx(seen[0]) else None


async def _privilege_attempts(ctx: CheckContext, cfg: Any) -> list[Attempt]:
    """An admin-like role removes a non-admin role from a group, then changes its rights field."""
    admins = [r for r in ctx.roles if r in admin_roles(ctx)]
    selves = self_views(await role_pages(ctx), list(ctx.roles))
    subject = next((r for r in ctx.roles if r not in admins and r in selves and selves[r].user_id is not None), None)
    if not admins or subject is None:
        return []
    targets = _target_names(ctx, subject, selves[subject])
    user_id = str(selves[subject].user_id)
    attempts = []
    for ep in membership_routes(ctx):
        admin = next((a for a in admins if (p := allowed_roles(ctx, ep)) is None or a in p), None)
        gid = await _member_group(ctx, ep, subject) if admin is not None else None
        if admin is None or gid is None:
            continue
        records = await _observed_write(ctx, cfg, removal_request(ep, gid, user_id), admin)
        if records is not None:
            attempts.append(Attempt("privilege_change", ep.key, f"{ep.method} {ep.path} ({subject} removed) as {admin}",
                                    _actor(ctx, admin), records, targets))
    for ep, rights in role_update_routes(ctx):
        admin = next((a for a in admins if (p := allowed_roles(ctx, ep)) is None or a in p), None)
        if admin is None:
            continue
        promote, _ = role_values(rights, selves.get(admin), selves[subject])
        records = await _observed_write(ctx, cfg, rights_request(ep, user_id, rights, promote), admin)
        if records is not None:
            attempts.append(Attempt("privilege_change", ep.key, f"{ep.method} {ep.path} ({rights} of {subject}) as "
                                    f"{admin}", _actor(ctx, admin), records, targets))
    return attempts


def _actor(ctx: CheckContext, role: str) -> list[str]:
    return role_identity(ctx.role_configs.get(role)) or [role]


async def _member_group(ctx: CheckContext, removal: Any, role: str) -> str | None:
    """A group id whose page `role` reads (so it is a member to remove), from the role's own pages."""
    texts = [p.exchange.text for p in (await role_pages(ctx)).get(role, [])]
    for page, gid_inp in group_pages(ctx, removal):
        for gid in candidate_ids(page, gid_inp, texts)[:MAX_GROUP_IDS]:
            if is_2xx(await ctx.send_spec(build_request(page, gid_inp, gid), as_role=role)):
                return gid
    return None


@check(id="audit.events-missing", threat="audit.events-missing", scope="target")
async def audit_events_missing(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Perform each audited event kind; the trail must gain a record with its actor and outcome."""
    cfg = getattr(ctx.config, "audit", None)
    if cfg is None:
        ctx.skip(NO_AUDIT)
        return
    if entry(cfg.log) is None and not ctx.target.in_process:
        ctx.skip("a hook trail (`audit.log: module:function`) needs an in-process target")
        return
    events: set[str] = set(cfg.events)
    canaries: list[str] = []
    attempts: list[Attempt] = []
    try:
        if events & {"login_failure", "login_success"}:
            attempts += await _login_attempts(ctx, cfg, canaries)
        if "export" in events:
            exports = [ep.key for ep in _export_endpoints(ctx)][:MAX_EXPORTS]
            attempts += await _read_attempts(ctx, cfg, "export", exports)
        if "admin_action" in events:
            attempts += await _read_attempts(ctx, cfg, "admin_action", _admin_entries(ctx, cfg))
        if "privilege_change" in events:
            attempts += await _privilege_attempts(ctx, cfg)
    finally:
        await ctx.reset()
    _note_untested(ctx, events, attempts)
    redact = Redactor([*canaries, *_configured_passwords(ctx)])
    for kind in sorted(events & set(LABELS)):
        failing = _failing(kind, [a for a in attempts if a.kind == kind])
        if failing:
            yield _finding(ctx, kind, failing, redact)


def _failing(kind: str, attempts: list[Attempt]) -> list[tuple[Attempt, str]]:
    """The attempts that prove the kind unrecorded: every failing login; exports/admin only if none passed."""
    failing = [(a, p) for a in attempts if (p := a.problem()) is not None]
    if kind in ("export", "admin_action") and len(failing) < len(attempts):
        return []
    return failing


def _note_untested(ctx: CheckContext, events: set[str], attempts: list[Attempt]) -> None:
    untested = sorted(k for k in events if not any(a.kind == k for a in attempts))
    if untested:
        ctx.skip(f"not exercised (no entry point found, writes not allowed or not supported): {', '.join(untested)}")


def _finding(ctx: CheckContext, kind: str, failing: list[tuple[Attempt, str]], redact: Redactor) -> Finding:
    first, problem = failing[0]
    evidence = []
    for attempt, why in failing:
        shown = [redact.text(r[:300]) for r in attempt.records[:MAX_SHOWN_RECORDS]]
        evidence.append(note(f"{attempt.what}: {why}",
                             "new trail records:\n" + "\n".join(shown) if shown else "no new trail record"))
    where = entry(first.where)
    return ctx.finding(title=f"{LABELS[kind]} {problem} in the audit trail",
                       confidence=Confidence.confirmed,
                       location=Location(method=where[0], path=where[1]) if where else Location(file=first.where),
                       evidence=evidence)
