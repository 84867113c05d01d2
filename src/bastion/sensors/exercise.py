"""One bounded pass that makes the app do its work while the sensors watch, shared by the runtime checks.

The crypto, log-privacy and trust-boundary checks learn nothing from responses: they need the app to
hash passwords, encrypt records, log logins and fill sessions. The pass sends every entry point that
takes input once, with a canary in each text field and one made-up identity (username, e-mail,
password) in the account fields, so a sign-up is followed by a reset request for the same address.
Account creation goes first; logout-like and other session-ending routes are never sent; writes only
where `ctx.may_write` allows them, then the target is reset. Requests during which the app encrypted
something are sent a second time (reusing a nonce needs two encryptions). The result is cached for
the run (in the sensor session), so the checks that share it pay for it once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bastion.findings.evidence import note, proof_from
from bastion.findings.model import Confidence, Evidence, Finding, Location, compute_fingerprint
from bastion.identity.probe import LOGOUT_PATH, UNSAFE_PATH
from bastion.sensors.correlate import RequestKey, request_key
from bastion.sensors.crypto import ENCRYPTING_PROBES, rearm
from bastion.sensors.events import SensorEvent
from bastion.surface.handler_ast import display_path
from bastion.surface.model import EntryPoint, Input
from bastion.surface.requests import RequestSpec, build_request
from bastion.target.exchange import Exchange

if TYPE_CHECKING:
    from bastion.engine.context import CheckContext

MAX_EXERCISE_REQUESTS = 150
NO_SENSORS = "needs the in-process sensors (an in-process target with sensors on)"
BLIND = "blind: no response shows this; only the in-process sensor saw the call"
_STATE_KEY = "bastion.exercise"
_PASSWORD = re.compile(r"passw|passphrase|pwd", re.IGNORECASE)
_EMAIL = re.compile(r"e-?mail", re.IGNORECASE)
_USERNAME = re.compile(r"^(user(_?name)?|login|handle|nick(name)?|account)$", re.IGNORECASE)
_BODY_LOCATIONS = ("query", "form", "json", "multipart")
_DENIED = (401, 403)
_PATH_PARAM = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True)
class Identity:
    """The made-up account the pass signs up and logs in with (values carry canaries)."""

    username: str
    email: str
    password: str


@dataclass
class Sent:
    """One exercise request: its entry point, the role it went as, the canary of each text input."""

    ep: EntryPoint
    spec: RequestSpec
    role: str | None
    exchange: Exchange
    canaries: dict[str, Input] = field(default_factory=dict)


@dataclass
class Exercise:
    identity: Identity
    sent: list[Sent]
    wrote: bool = False
    # Every request the pass sent (retries and repeats too), in sending order: its events are told apart.
    order: dict[RequestKey, int] = field(default_factory=dict)

    def saw(self, ex: Exchange) -> Exchange:
        """Remember that `ex` was one of the pass's requests."""
        self.order.setdefault(request_key(proof_from(ex).request), len(self.order))
        return ex

    def position(self, event: SensorEvent) -> int | None:
        """Where the request that caused `event` came in the pass; None when another check's sent it."""
        key = event.probe.key if event.probe is not None else None
        return self.order.get(key) if key is not None else None

    def input_of(self, marker: str) -> tuple[Sent, Input] | None:
        """The request and input that carried `marker` (a canary found somewhere)."""
        for s in self.sent:
            for canary, inp in s.canaries.items():
                if canary in marker or marker in canary:
                    return s, inp
        return None


async def exercise(ctx: CheckContext) -> Exercise:
    """The run's exercise pass (sent on first use, cached for the run)."""
    cache = ctx.sensors.state if ctx.sensors is not None else ctx.memo
    done = cache.get(_STATE_KEY)
    if isinstance(done, Exercise):
        return done
    identity = Identity(username=ctx.canary(8), email=f"{ctx.canary(8)}@example.com",
                        password=f"Pw-{ctx.canary(10)}-9x!Q")
    result = Exercise(identity, [])
    cache[_STATE_KEY] = result
    if ctx.sensors is not None:
        rearm(ctx.sensors)
    login_paths = _login_paths(ctx)
    accounts = 0
    for ep in _entry_points(ctx):
        if len(result.sent) >= MAX_EXERCISE_REQUESTS:
            break
        who = identity
        if _creates_account(ep, login_paths):
            # A second sign-up (a form page and a JSON API) with the same name would only get "taken".
            who = identity if accounts == 0 else _variant(identity, accounts)
            accounts += 1
        sent = await _send(ctx, ep, who, result)
        result.sent.append(sent)
        result.wrote = result.wrote or sent.spec.method not in ("GET", "HEAD")
    for sent in _encrypting(ctx, result.sent)[:MAX_EXERCISE_REQUESTS // 10]:
        result.saw(await ctx.send_spec(sent.spec, as_role=sent.role or "anonymous"))
    if result.wrote:
        await ctx.reset()
    return result


def _variant(identity: Identity, n: int) -> Identity:
    """The same person signing up again elsewhere: another name and address, the same password."""
    local, _, domain = identity.email.partition("@")
    return Identity(username=f"{identity.username}{n}", email=f"{local}{n}@{domain}", password=identity.password)


def _login_paths(ctx: CheckContext) -> set[str]:
    return {getattr(getattr(c, "login", None), "path", None) or "" for c in ctx.role_configs.values()} - {""}


def _creates_account(ep: EntryPoint, login_paths: set[str]) -> bool:
    names = [i.name.rsplit(".", 1)[-1] for i in ep.inputs]
    return (ep.path not in login_paths and any(_PASSWORD.search(n) for n in names)
            and any(_EMAIL.search(n) or _USERNAME.match(n) for n in names)
            and not any("current" in n.lower() or "old" in n.lower() or "token" in n.lower() for n in names))


def _entry_points(ctx: CheckContext) -> list[EntryPoint]:
    """Entry points with text inputs that are safe to send: account creation first, then surface order."""
    out = []
    for ep in ctx.surface.sorted():
        if ep.method in ("DELETE", "OPTIONS", "HEAD") or LOGOUT_PATH.search(ep.path) or UNSAFE_PATH.search(ep.path):
            continue
        if not any(i.location in _BODY_LOCATIONS for i in ep.inputs):
            continue
        if ctx.client.scope.path_excluded(ep.path) or not ctx.may_write(ep.method, ep.path):
            continue
        out.append(ep)
    login_paths = _login_paths(ctx)
    return sorted(out, key=lambda ep: not _creates_account(ep, login_paths))


def _value(ctx: CheckContext, inp: Input, identity: Identity) -> str | None:
    """What the pass puts in one input; None keeps the benign default (numbers, files, headers)."""
    if inp.location not in _BODY_LOCATIONS or inp.kind not in ("string",):
        return None
    leaf = inp.name.rsplit(".", 1)[-1]
    if _PASSWORD.search(leaf):
        return identity.password
    if _EMAIL.search(leaf):
        return identity.email
    if _USERNAME.match(leaf):
        return identity.username
    return ctx.canary(10)


def _spec(ctx: CheckContext, ep: EntryPoint, identity: Identity) -> tuple[RequestSpec, dict[str, Input]]:
    spec = build_request(ep)
    canaries: dict[str, Input] = {}
    for inp in ep.inputs:
        value = _value(ctx, inp, identity)
        if value is None:
            continue
        if inp.location == "query":
            spec.params[inp.name] = value
        elif inp.location in ("form", "multipart") and spec.form is not None and inp.name in spec.form:
            spec.form[inp.name] = value
        elif inp.location == "json" and isinstance(spec.json, dict) and inp.name in spec.json:
            spec.json[inp.name] = value  # top-level fields; nested ones keep their defaults
        else:
            continue
        canaries[value] = inp
    return spec, canaries


def _denied(ctx: CheckContext, ex: Exchange) -> bool:
    if ex.status in _DENIED:
        return True
    location = (ex.header("location") or "").lower()
    return 300 <= ex.status < 400 and any(p.lower() in location for p in _login_paths(ctx) | {"login"})


async def _send(ctx: CheckContext, ep: EntryPoint, identity: Identity, run: Exercise) -> Sent:
    spec, canaries = _spec(ctx, ep, identity)
    ex = run.saw(await ctx.send_spec(spec, as_role="anonymous"))
    if _denied(ctx, ex) and ctx.roles:
        role = next(iter(ctx.roles))
        return Sent(ep, spec, role, run.saw(await ctx.send_spec(spec, as_role=role)), canaries)
    return Sent(ep, spec, None, ex, canaries)


def _encrypting(ctx: CheckContext, sent: list[Sent]) -> list[Sent]:
    """The exercise requests during which the app encrypted something."""
    if ctx.sensors is None:
        return []
    keys = {p.key for p in ctx.sensors.state.get(ENCRYPTING_PROBES, []) if p.key is not None}
    return [s for s in sent if request_key(proof_from(s.exchange).request) in keys]


# --- findings from sensor events ---------------------------------------------------------------------


def stable_order(run: Exercise, events: Iterable[SensorEvent]) -> list[SensorEvent]:
    """`events` in an order that timing cannot change, so the first event per site is a stable pick.

    The pass's own events come first, in its (sequential) sending order; then the events of other
    checks' requests, whose concurrent units reach a site in any order, by request and detail.
    """
    def key(event: SensorEvent) -> tuple[bool, int, RequestKey | tuple[()], str]:
        position = run.position(event)
        request = event.probe.key if event.probe is not None and event.probe.key is not None else ()
        return position is None, position or 0, request, event.raw_detail

    return sorted(events, key=key)



def _route(ctx: CheckContext, event: SensorEvent) -> tuple[str | None, str | None]:
    """The entry point (method, path template) of the request during which the event happened."""
    key = event.probe.key if event.probe is not None else None
    if key is None:
        return None, None
    method, path = key[0], urlsplit(key[1]).path or "/"
    for ep in ctx.surface.sorted():
        pattern = "^" + _PATH_PARAM.sub("[^/]+", re.escape(ep.path).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        if ep.method == method and re.match(pattern, path):
            return method, ep.path
    return method, path


def sensor_finding(ctx: CheckContext, event: SensorEvent, title: str, *, cwe: int | None = None,
                   severity: str | None = None, confidence: Confidence = Confidence.confirmed,
                   extra: list[Evidence] | None = None) -> Finding:
    """A blind finding located at the event's app file:line (and the route whose request caused it)."""
    assert event.file is not None
    file = display_path(event.file) or event.file
    method, path = _route(ctx, event)
    evidence = [Evidence(kind="sensor", summary=f"{event.kind} sensor at {file}:{event.line}",
                         content=event.detail, meta={"sensor": event.kind, "file": file, "line": str(event.line)}),
                *(extra or []), note("blind", BLIND)]
    f = ctx.finding(title=f"{title} at {file}:{event.line} (blind, sensor-only)", confidence=confidence,
                    severity=severity, evidence=evidence,
                    location=Location(method=method, path=path, file=file, line=event.line))
    # Several call sites can sit behind one route: the site is part of the identity.
    base = compute_fingerprint(f)
    fingerprint = hashlib.sha256(f"{base}\x1f{event.kind}\x1f{file}\x1f{event.line}".encode()).hexdigest()[:24]
    return f.model_copy(update={"fingerprint": fingerprint, **({"cwe": cwe} if cwe else {})})
