"""The attacker actions a narrative step names; each fills a StepRecord with what it did and how it ended.

Everything is generic: logins and accounts come from the role configs, pages from the surface, export
entry points from the privacy check's export detection, admin entry points from the access policy, the
queue from the model's `dependencies:`. Every action is bounded (constants below).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bastion.checks.privacy import _is_export_candidate
from bastion.drills.alerts import AlertWatch
from bastion.drills.timeline import StepRecord
from bastion.engine.context import CheckContext
from bastion.identity.endpoints import (
    Account,
    FormSession,
    credentials,
    discover_auth,
    limit_sign,
    login_identity,
    strong_password,
)
from bastion.identity.matrix import ALLOW, access_outcome
from bastion.identity.probe import LOGOUT_PATH, MembersPage, authenticated, fresh_login, members_page
from bastion.identity.session import RoleSession
from bastion.payloads.corpus import render
from bastion.privacy.hooks import as_text, call_hook, entry, roles_to_try
from bastion.resilience.queueing import dead_lettered, queue_targets, run_consumer, signed_headers, sweep
from bastion.surface.requests import build_request
from bastion.target.exchange import Exchange

# Leaked pairs that match no account, sent before the one real pair (well past any alerting threshold).
WRONG_PAIRS = 19
MAX_EXPORTS = 3
MAX_ADMIN_CALLS = 6
MAX_ROLE_CHANGES = 3
# The "other client" a stolen session is replayed from (TEST-NET-3 address: never a real client).
OTHER_CLIENT = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) bastion-drill-other-client",
                "X-Forwarded-For": "203.0.113.77"}
# What identifies Bastion's own client in an alert or audit record (loopback in-process and on URL targets).
CLIENT_MARKERS = ("127.0.0.1", "::1", "localhost", "testclient")
ROLE_FIELD = re.compile(r"(?:^|[._\[\]])(?:role|roles|is_admin|admin|is_staff|is_superuser|group|groups|"
                        r"permissions?|scopes?)$", re.IGNORECASE)
ADMIN_PATH = re.compile(r"(?:^|/)admin(?:/|$)", re.IGNORECASE)
PICKLE_TYPES = ("application/python-pickle", "application/x-python-pickle", "application/octet-stream")
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


@dataclass
class DrillState:
    """What a narrative's steps hand on to each other (the stolen session) and what the playbook reads."""

    watch: AlertWatch
    account: Account | None = None
    stolen: RoleSession | None = None
    page: MembersPage | None = None
    # Identities the attacker acted as (an audit record naming one names the actor).
    actors: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    facts: dict[str, Any] = field(default_factory=dict)
    wrote: bool = False
    relogin: set[str] = field(default_factory=set)


def _skip(rec: StepRecord, reason: str) -> None:
    rec.outcome, rec.reason = "skipped", reason


def _pick_account(ctx: CheckContext) -> Account | None:
    """The real account the leaked list holds: a logged-in role without a second factor first."""
    accounts = [a for a in discover_auth(ctx.surface, ctx.role_configs).accounts if a.role in ctx.roles]
    accounts.sort(key=lambda a: getattr(ctx.role_configs[a.role], "mfa", None) is not None)
    return accounts[0] if accounts else None


async def credential_stuffing(ctx: CheckContext, st: DrillState, rec: StepRecord) -> None:
    """Leaked pairs that match nobody, then one real pair; stop at the first sign of a limit."""
    account = _pick_account(ctx)
    if account is None:
        return _skip(rec, "no role with a username/password login in the model")
    login = account.login
    if not ctx.may_write(login.method, login.path):
        return _skip(rec, f"writes not allowed on {login.key} (failed logins change lockout counters)")
    st.account, st.wrote = account, True
    first: Exchange | None = None
    for sent in range(1, WRONG_PAIRS + 1):
        canary = ctx.canary()
        identity = login_identity(login, canary, f"{canary}@example.com")
        password = strong_password(canary)
        st.actors.append(identity)
        st.secrets.add(password)
        ex = await FormSession(ctx.send).submit(login, credentials(login, identity, password))
        first = first or ex
        sign = limit_sign(ex, first if ex is not first else None)
        if sign:
            rec.did = f"{login.method} {login.path} ×{sent}: leaked pairs matching no account"
            rec.outcome, rec.reason = "rate-limited", f"attempt {sent} answered with {sign}"
            return None
    st.actors.append(account.username)
    mfa = getattr(ctx.role_configs[account.role], "mfa", None) is not None
    fresh = await fresh_login(ctx, account.role, second_factor=False)
    rec.did = (f"{login.method} {login.path} ×{WRONG_PAIRS + 1}: {WRONG_PAIRS} leaked pairs matching no account, "
               f"then role {account.role}'s real pair")
    if fresh is None:
        rec.outcome, rec.reason = "blocked", "the real pair no longer logs in after the wrong ones"
        return None
    session, exchanges = fresh
    st.secrets |= session.secret_values()
    sign = next((s for s in (limit_sign(e) for e in exchanges) if s), None)
    if sign:
        rec.outcome, rec.reason = "rate-limited", f"the real pair was answered with {sign}"
    elif mfa:
        rec.outcome, rec.reason = "blocked", "the account asks for a second factor the attacker does not have"
    else:
        st.stolen = session
        rec.outcome, rec.reason = "succeeded", f"logged in as role {account.role}; session obtained"
    return None


def _other_client(session: RoleSession) -> dict[str, Any]:
    return {"cookies": dict(session.cookies), "headers": {**session.headers, **OTHER_CLIENT}}


async def session_reuse(ctx: CheckContext, st: DrillState, rec: StepRecord) -> None:
    """Replay the obtained session from another User-Agent and X-Forwarded-For on a members-only page."""
    if st.stolen is None or st.account is None:
        return _skip(rec, "no session was obtained in an earlier step")
    st.page = await members_page(ctx, st.account.role)
    if st.page is None:
        return _skip(rec, f"no page tells role {st.account.role}'s session from an anonymous client")
    ok, ex = await authenticated(ctx, st.page, dict(st.stolen.cookies), {**st.stolen.headers, **OTHER_CLIENT})
    rec.did = f"GET {st.page.path} ×1 with the obtained session, from another client"
    st.facts["session_bound"] = not ok
    if ok:
        rec.outcome, rec.reason = "succeeded", f"answered {ex.status} with the member page"
    else:
        rec.outcome, rec.reason = "blocked", f"answered {ex.status}: the session did not work from another client"
    return None


async def data_export(ctx: CheckContext, st: DrillState, rec: StepRecord) -> None:
    """Call the export-like entry points with the stolen session from the other client."""
    if st.stolen is None:
        return _skip(rec, "no session was obtained in an earlier step")
    exports = [ep for ep in ctx.surface.sorted() if _is_export_candidate(ep)][:MAX_EXPORTS]
    if not exports:
        return _skip(rec, "no export-like entry point in the surface")
    got, statuses = [], []
    for ep in exports:
        spec = build_request(ep)
        ex = await ctx.send(spec.method, spec.path, as_role="anonymous", **_merge(spec.kwargs(), st.stolen))
        statuses.append(f"{ep.path} {ex.status}")
        if 200 <= ex.status < 300 and ex.body:
            got.append(f"{ep.path} ({ex.status})")
    rec.did = f"GET ×{len(exports)}: " + ", ".join(ep.path for ep in exports)
    if got:
        rec.outcome, rec.reason = "succeeded", "exported " + ", ".join(got)
    else:
        rec.outcome, rec.reason = "blocked", "answered " + ", ".join(statuses)
    return None


def _merge(kwargs: dict[str, Any], session: RoleSession) -> dict[str, Any]:
    other = _other_client(session)
    return {**kwargs, "cookies": {**(kwargs.get("cookies") or {}), **other["cookies"]},
            "headers": {**(kwargs.get("headers") or {}), **other["headers"]}}


def _leaked_role(ctx: CheckContext) -> str | None:
    """The role whose credential 'leaked': a header-carrying (API) role first, then the least-allowed one."""
    allowed = {r: sum(r in roles for roles in ctx.access.values()) for r in ctx.roles}
    order = list(ctx.roles)
    candidates = sorted(ctx.roles, key=lambda r: (not ctx.roles[r].headers, allowed[r], order.index(r)))
    # The most-allowed role is the administrator: its leak is no escalation.
    top = max(allowed.values(), default=0)
    low = [r for r in candidates if allowed[r] < top] if len(set(allowed.values())) > 1 else []
    return low[0] if low else None


def _denied_entries(ctx: CheckContext, role: str) -> list[tuple[str, str]]:
    """'METHOD /path' policy lines that keep `role` out (no path parameters, so they can be called)."""
    out = []
    for key, roles in ctx.access.items():
        method, _, path = key.partition(" ")
        if role not in roles and "owner" not in roles and "anonymous" not in roles and "{" not in path:
            out.append((method, path))
    return out


async def admin_calls(ctx: CheckContext, st: DrillState, rec: StepRecord) -> None:
    """Use a low-privilege role's credential, as if leaked, on the read-only entry points the policy denies it."""
    role = _leaked_role(ctx)
    if role is None:
        return _skip(rec, "no access policy that gives roles different rights (access:)")
    targets = [(m, p) for m, p in _denied_entries(ctx, role) if m == "GET"][:MAX_ADMIN_CALLS]
    if not targets:
        return _skip(rec, f"no read-only entry point the policy keeps from role {role}")
    st.actors.append(_identity(ctx, role))
    login_paths = tuple(s.login_path for s in ctx.roles.values() if s.login_path)
    reached, answers = [], []
    for method, path in targets:
        ex = await ctx.send(method, path, as_role=role, headers=dict(OTHER_CLIENT))
        answers.append(f"{path} {ex.status}")
        if access_outcome(ex, login_paths) == ALLOW and 200 <= ex.status < 300:
            reached.append(f"{method} {path} ({ex.status})")
            rec.facts.setdefault("entry_points", []).append(f"{method} {path}")
    rec.facts["role"] = role
    rec.did = f"GET ×{len(targets)} as role {role} (credential used from another client): " + \
        ", ".join(p for _, p in targets)
    if reached:
        rec.outcome, rec.reason = "succeeded", "reached " + ", ".join(reached)
    else:
        rec.outcome, rec.reason = "blocked", "answered " + ", ".join(answers)
    return None


def _identity(ctx: CheckContext, role: str) -> str:
    account = next((a for a in discover_auth(ctx.surface, ctx.role_configs).accounts if a.role == role), None)
    return account.username if account is not None else role


async def role_change(ctx: CheckContext, st: DrillState, rec: StepRecord) -> None:
    """Send a role-changing update (role/is_admin/... = admin) to write entry points the policy denies the role."""
    role = _leaked_role(ctx)
    if role is None:
        return _skip(rec, "no access policy that gives roles different rights (access:)")
    candidates = []
    for ep in ctx.surface.sorted():
        if ep.method not in ("POST", "PUT", "PATCH"):
            continue
        allowed = ctx.access.get(f"{ep.method} {ep.path}")
        denied = allowed is not None and role not in allowed and "owner" not in allowed
        field_ = next((i for i in ep.inputs if i.location in ("json", "form") and ROLE_FIELD.search(i.name)), None)
        if field_ is not None and (denied or (allowed is None and ADMIN_PATH.search(ep.path))) \
                and ctx.may_write(ep.method, ep.path):
            candidates.append((ep, field_))
    if not candidates:
        return _skip(rec, f"no role-changing entry point kept from role {role} that writes may reach")
    st.wrote = True
    st.actors.append(_identity(ctx, role))
    accepted, answers = [], []
    for ep, field_ in candidates[:MAX_ROLE_CHANGES]:
        ex = await ctx.send_spec(build_request(ep, field_, "admin"), as_role=role)
        answers.append(f"{ep.key} {ex.status}")
        if 200 <= ex.status < 300:
            accepted.append(f"{ep.key} ({field_.name}=admin, {ex.status})")
            rec.facts.setdefault("entry_points", []).append(ep.key)
    rec.facts["role"] = role
    rec.did = f"{len(candidates[:MAX_ROLE_CHANGES])} update(s) as role {role}: " + \
        ", ".join(f"{ep.key} {f.name}=admin" for ep, f in candidates[:MAX_ROLE_CHANGES])
    if accepted:
        rec.outcome, rec.reason = "succeeded", "accepted " + ", ".join(accepted)
    else:
        rec.outcome, rec.reason = "blocked", "answered " + ", ".join(answers)
    return None


async def poison_message(ctx: CheckContext, st: DrillState, rec: StepRecord) -> None:
    """Publish a pickle that would call compile(canary) to the consumer's queue; the sensors tell if it loaded."""
    if ctx.sensors is None:
        return _skip(rec, "needs the grey-box sensors (in-process targets)")
    targets = await queue_targets(ctx)
    if not targets:
        return _skip(rec, "no queue dependency with a double, a topic and a consume entry point (dependencies:)")
    qt = targets[0]
    doc = next(d for d in ctx.payloads.get("deserialization-documents") if d["format"] == "pickle")
    st.wrote = True
    canaries = []
    for content_type in PICKLE_TYPES:
        canary = ctx.canary()
        body = render(doc["template"], c=canary).encode("utf-8")
        qt.queue.publish(qt.topic, body, headers=signed_headers(qt, body, {"content-type": content_type}))
        canaries.append(canary)
    await run_consumer(ctx, qt, runs=qt.queue.max_deliveries + 1)
    sweep(qt, canaries)
    rec.did = (f"{len(canaries)} pickle messages (content types {', '.join(PICKLE_TYPES)}) on topic "
               f"'{qt.topic}', then {qt.consume.key}")
    executed = [c for c in canaries if any(e.kind == "compile" and c in e.raw_detail for e in ctx.sensor_events(c))]
    dead = sum(bool(dead_lettered(qt, c)) for c in canaries)
    st.facts["poison_dead_lettered"] = dead
    rec.facts["entry_points"] = [qt.consume.key]
    if executed:
        rec.outcome = "succeeded"
        rec.reason = "the consumer unpickled the message: the sensors saw compile() called with the canary"
    else:
        rec.outcome = "blocked"
        rec.reason = f"not deserialized; {dead} of {len(canaries)} dead-lettered"
    return None


Action = Callable[[CheckContext, DrillState, StepRecord], Awaitable[None]]
ACTIONS: dict[str, Action] = {
    "credential-stuffing": credential_stuffing, "session-reuse": session_reuse, "data-export": data_export,
    "admin-calls": admin_calls, "role-change": role_change, "poison-message": poison_message,
}


async def revoke_stolen(ctx: CheckContext, st: DrillState) -> bool | None:
    """Log the stolen session out, then replay it: True = revoked, False = still works, None = untestable."""
    if st.stolen is None or st.page is None or st.account is None:
        return None
    logout = next((ep for ep in ctx.surface.sorted() if LOGOUT_PATH.search(ep.path) and "{" not in ep.path
                   and ep.method in ("GET", "POST") and ctx.may_write(ep.method, ep.path)), None)
    if logout is None:
        return None
    st.facts["logout"] = logout.key
    await ctx.send(logout.method, logout.path, as_role="anonymous", cookies=dict(st.stolen.cookies),
                   headers=dict(st.stolen.headers))
    st.relogin.add(st.account.role)
    ok, _ = await authenticated(ctx, st.page, dict(st.stolen.cookies), dict(st.stolen.headers))
    return not ok


# --- the audit trail ----------------------------------------------------------------------------------


class AuditTrail:
    """Reads the model's audit trail (`audit.log`) as records, to see which ones a step added."""

    def __init__(self, ctx: CheckContext, cfg: Any) -> None:
        self.ctx, self.cfg = ctx, cfg

    async def records(self) -> list[str] | None:
        """The trail's records as text (None when no role can read it)."""
        spec, where = self.cfg.log, entry(self.cfg.log)
        if where is None:
            if not self.ctx.target.in_process:
                return None
            return _split(as_text(await call_hook(self.ctx, spec)))
        for role in roles_to_try(self.ctx, spec, self.cfg.role):
            ex = await self.ctx.send(where[0], where[1], as_role=role)
            if 200 <= ex.status < 300:
                return _split(ex.text)
        return None


def _split(text: str) -> list[str]:
    """Records of a trail: JSON list items, HTML table rows, or lines."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        doc = next((v for v in doc.values() if isinstance(v, list)), None)
    if isinstance(doc, list):
        return [json.dumps(item, sort_keys=True) if not isinstance(item, str) else item for item in doc]
    parts = re.split(r"</tr>|\n", text, flags=re.IGNORECASE)
    return [clean for p in parts if (clean := _SPACE.sub(" ", _TAG.sub(" ", p)).strip())]


def names_actor(record: str, actors: list[str]) -> bool:
    """Whether an audit record names one of the identities the attacker used (as a whole word)."""
    return any(re.search(rf"(?<![\w@.-]){re.escape(a)}(?![\w@-])", record) for a in actors if a)
