"""Stateful fuzzing: create → read → update → delete chains on one resource, as different roles.

Resources come from OpenAPI `links` (a create operation's response links to operations taking its id,
e.g. `$response.body#/id`) and from the surface: a POST to a collection `/x` next to item routes
`/x/{param}` (GET, PUT/PATCH, DELETE), the id read from the `Location` header or an `id`-like JSON
field. A chain creates the resource as role A (hypothesis-generated valid body carrying a canary),
reads and updates it as A, reads (and updates) it as another role B and anonymously, deletes it as A
and reads it back. Oracles: the single-request ones (5xx, stack trace, sensor sink) at every step,
and state oracles: the delete did not take effect, the update was lost, and — only where the threat
model's `access:` policy covers the item route — another role or anonymous could read or change it.

Hypothesis drives generation (seeded, `database=None`) in a worker thread; each step goes through the
check context on the engine's loop. When a chain fails, its steps are dropped one at a time while the
failure persists, then hypothesis shrinks the bodies on the minimal chain. Budget: `budget` requests
per resource for the search (every step counts), SHRINK_REQUESTS more to minimise a failure.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, find, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException, NoSuchExample

from bastion.engine.context import CheckContext
from bastion.errors import BastionError, BudgetExhausted
from bastion.fuzz.contract import find_operation
from bastion.fuzz.oracles import StackSignature, is_crash, leaked_stack, sink_events
from bastion.fuzz.shape import RequestShape, shape_from_inputs, with_json_schema
from bastion.fuzz.strategies import MODE, Example, build_example_request, default_value, valid_strategy
from bastion.surface.model import EntryPoint, Surface
from bastion.surface.openapi import OpenAPIDocument, _server_prefix
from bastion.target.exchange import Exchange

SHRINK_REQUESTS = 48
MAX_RESOURCES = 8
# Inputs a chain never generates: credentials belong to the role, not to the fuzzer.
_SKIPPED_LOCATIONS = ("header", "cookie")
_ID_KEY = re.compile(r"^(id|uuid|.+_id|.+Id)$")
_PARAM = re.compile(r"\{([^}]*)\}")
# A delete that answers 202 (accepted) may legitimately finish later: only 200/204 promise it is gone.
_DELETED = (200, 204)
# Failure kinds, most severe first (the first of a kind found in a resource is kept).
KINDS = ("crash", "sink", "access", "delete", "update")


@dataclass
class Resource:
    """A collection's create operation and the item operations that take the created id."""

    create: EntryPoint
    items: dict[str, EntryPoint]  # read | update | delete -> entry point
    param: str  # the item routes' path parameter that holds the id
    expressions: tuple[str, ...]  # where the id is: "$response.body#/id", "$response.header.Location"
    origin: str  # "openapi links" | "observed ids"

    @property
    def key(self) -> str:
        return f"{self.create.method} {self.create.path}"


def _params(template: str) -> list[str]:
    return _PARAM.findall(template)


def _generic(template: str) -> str:
    return _PARAM.sub("{}", template)


def observed_resources(surface: Surface) -> list[Resource]:
    """Collections `POST /x` with item routes `/x/{param}` (the id found in the create response)."""
    by_path: dict[str, dict[str, EntryPoint]] = {}
    for ep in surface.sorted():
        by_path.setdefault(ep.path, {})[ep.method] = ep
    out = []
    for path, methods in sorted(by_path.items()):
        create = methods.get("POST")
        if create is None:
            continue
        for item_path, item_methods in sorted(by_path.items()):
            parent, _, last = item_path.rstrip("/").rpartition("/")
            if (parent or "/") != (path.rstrip("/") or "/") or not _PARAM.fullmatch(last):
                continue
            items = _item_operations(item_methods)
            if "read" in items:
                out.append(Resource(create, items, last[1:-1], (), "observed ids"))
    return out


def _item_operations(methods: dict[str, EntryPoint]) -> dict[str, EntryPoint]:
    items = {"read": methods.get("GET"), "update": methods.get("PUT") or methods.get("PATCH"),
             "delete": methods.get("DELETE")}
    return {k: v for k, v in items.items() if v is not None}


def linked_resources(docs: list[OpenAPIDocument], surface: Surface) -> list[Resource]:
    """Resources declared by OpenAPI links from a POST's response to operations taking its id."""
    eps = {(ep.method, _generic(ep.path)): ep for ep in surface.sorted()}
    out: dict[str, Resource] = {}
    for doc in docs:
        prefix = _server_prefix(doc)
        ops = dict(_operations(doc))
        for (method, path), op in ops.items():
            create = eps.get((method, _generic(prefix + path)))
            if method != "POST" or create is None:
                continue
            for target_id, param, expr in _links(doc, op):
                target = next(((m, p) for (m, p), o in ops.items() if o.get("operationId") == target_id), None)
                item = eps.get((target[0], _generic(prefix + target[1]))) if target else None
                if item is None or param not in _params(target[1] if target else ""):
                    continue
                # The surface may name the parameter differently: take the one at the same position.
                name = _params(item.path)[_params(target[1] if target else "").index(param)]
                res = out.setdefault(create.key, Resource(create, {}, name, (), "openapi links"))
                role = {"GET": "read", "PUT": "update", "PATCH": "update", "DELETE": "delete"}.get(item.method)
                if role and res.param == name:
                    res.items.setdefault(role, item)
                    res.expressions = tuple(dict.fromkeys((*res.expressions, expr)))
    return [r for r in out.values() if "read" in r.items]


def _operations(doc: OpenAPIDocument) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    for path, item in (doc.data.get("paths") or {}).items():
        try:
            item, _ = doc.deref(item, ("paths", path))
        except BastionError:
            continue
        if not isinstance(item, dict) or not isinstance(path, str):
            continue
        for method, op in item.items():
            if isinstance(op, dict) and method in ("get", "put", "patch", "delete", "post"):
                yield (method.upper(), path), op


def _links(doc: OpenAPIDocument, op: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(target operationId, parameter, runtime expression) for each link of a 2xx response."""
    responses = op.get("responses")
    if not isinstance(responses, dict):
        return
    for code, resp in sorted(responses.items(), key=lambda kv: str(kv[0])):
        if not str(code).startswith("2"):
            continue
        try:
            resp, _ = doc.deref(resp, ())
        except BastionError:
            continue
        links = resp.get("links") if isinstance(resp, dict) else None
        for link in (links or {}).values() if isinstance(links, dict) else ():
            try:
                link, _ = doc.deref(link, ())
            except BastionError:
                continue
            params = link.get("parameters") if isinstance(link, dict) else None
            if not isinstance(params, dict) or not isinstance(link.get("operationId"), str):
                continue
            for name, expr in params.items():
                if isinstance(expr, str) and expr.startswith("$response."):
                    yield link["operationId"], str(name).rpartition(".")[2], expr


def evaluate(expression: str, ex: Exchange) -> str | None:
    """An OpenAPI runtime expression (`$response.body#/pointer`, `$response.header.Name`) on a response."""
    if expression.startswith("$response.header."):
        value = ex.header(expression.removeprefix("$response.header."))
        return value.rstrip("/").rpartition("/")[2] or None if value else None
    if expression.startswith("$response.body#"):
        node: Any = _json(ex)
        for part in expression.removeprefix("$response.body#").split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return _scalar(node)
    return None


def _json(ex: Exchange) -> Any:
    try:
        return json.loads(ex.text)
    except ValueError:
        return None


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def observed_id(ex: Exchange, res: Resource) -> tuple[str, str] | None:
    """(id, the expression that found it) in a create response: links' expressions, Location, an id field."""
    for expr in res.expressions:
        value = evaluate(expr, ex)
        if value is not None:
            return value, expr
    location = ex.header("location")
    if location:
        parent = res.create.path.rstrip("/")
        path = location.split("?")[0].rstrip("/")
        head, _, last = path.rpartition("/")
        if head.endswith(parent) and last:
            return last, "$response.header.Location"
    body = _json(ex)
    for pointer, node in [("", body), *((f"/{k}", v) for k, v in sorted(body.items()) if isinstance(v, dict))] \
            if isinstance(body, dict) else []:
        keys = sorted(k for k in node if _ID_KEY.match(k))
        for key in [k for k in (res.param, "id") if k in node] + keys:
            value = _scalar(node[key])
            if value is not None:
                return value, f"$response.body#{pointer}/{key}"
    return None


# --- chains -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One request of a chain: what it does and as whom ("owner" = A, "other" = B, "anonymous")."""

    action: str  # create | read | update | delete
    actor: str  # owner | other | anonymous


FULL_CHAIN = (Step("create", "owner"), Step("read", "owner"), Step("update", "owner"), Step("read", "owner"),
              Step("read", "other"), Step("read", "anonymous"), Step("update", "other"), Step("read", "owner"),
              Step("delete", "owner"), Step("read", "owner"))


@dataclass
class StepResult:
    step: Step
    role: str
    ex: Exchange
    body: Example | None = None


@dataclass
class ChainFailure:
    kind: str  # crash | sink | access | delete | update
    detail: str
    steps: list[StepResult]
    id_expression: str
    ident: str
    marker: str  # text proving the failing response shows the created resource
    origin: str = "generated"


@dataclass
class Bodies:
    """The generated request bodies of one chain."""

    create: Example
    update: Example
    foreign: Example  # B's update


@dataclass
class ResourceReport:
    resource: Resource
    owner: str | None = None
    other: str | None = None
    requests: int = 0
    chains: int = 0
    failures: dict[str, ChainFailure] = field(default_factory=dict)
    skipped: str | None = None


class _OutOfBudget(Exception):
    """The chain's request allowance is spent: stop the chain, judge what was sent."""


def _shape(ep: EntryPoint, docs: list[OpenAPIDocument]) -> RequestShape:
    """The entry point's request shape (JSON body from its OpenAPI schema when documented), no credentials."""
    shape = shape_from_inputs(ep)
    op = find_operation(docs, ep)
    body = op.request_body() if op is not None else None
    if body is not None:
        shape = with_json_schema(shape, body)
    shape.fields = [f for f in shape.fields if f.location not in _SKIPPED_LOCATIONS]
    return shape


def body_strategy(shape: RequestShape, canary: str) -> st.SearchStrategy[Example]:
    """Valid values for every body and query field (path parameters are filled by the chain)."""
    fields = {f.key: valid_strategy(f.node, f.location, canary=canary) for f in shape.fields if f.location != "path"}
    return st.fixed_dictionaries(fields)


def _policy(ctx: CheckContext, method: str, template: str) -> list[str] | None:
    """The roles the threat model's `access:` policy allows for `method template`, if it covers it."""
    for key, allowed in ctx.access.items():
        m, _, p = key.partition(" ")
        if m.upper() == method and _generic(p.strip()) == _generic(template):
            return list(allowed)
    return None


def _forbidden(ctx: CheckContext, ep: EntryPoint, actor: str, role: str) -> bool:
    allowed = _policy(ctx, ep.method, ep.path)
    if allowed is None:
        return False
    if actor == "anonymous":
        return "anonymous" not in allowed
    return role not in allowed


class ChainRunner:
    """Runs chains on one resource within a request allowance and judges every step."""

    def __init__(self, ctx: CheckContext, res: Resource, report: ResourceReport, sigs: list[StackSignature],
                 canary: str, docs: list[OpenAPIDocument]) -> None:
        self.ctx, self.res, self.report, self.sigs, self.canary = ctx, res, report, sigs, canary
        self.shapes = {"create": _shape(res.create, docs), **{k: _shape(v, docs) for k, v in res.items.items()}}
        self.allowance = 0
        self.generation_left = 0  # the search's allowance left when a failure was pinned
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopped: BudgetExhausted | None = None

    def bodies(self) -> st.SearchStrategy[Bodies]:
        """Create, owner-update and other-update bodies; their strings start with distinct canary prefixes
        (so an update always changes what it sets, and every one still contains the resource's canary)."""
        update = self.shapes.get("update")

        def upd(tag: str) -> st.SearchStrategy[Example]:
            return body_strategy(update, self.canary + tag) if update is not None else st.just({})

        return st.builds(Bodies, body_strategy(self.shapes["create"], self.canary + "c"), upd("u"), upd("f"))

    def _role(self, actor: str) -> str:
        role = {"owner": self.report.owner, "other": self.report.other}.get(actor)
        return role or "anonymous"

    def _steps(self, chain: tuple[Step, ...] | list[Step]) -> list[Step]:
        """The chain without steps this resource, the roles or the write policy cannot take."""
        out = []
        for s in chain:
            ep = self.res.create if s.action == "create" else self.res.items.get(s.action)
            if ep is None or (s.actor == "other" and self.report.other is None):
                continue
            if s.action != "read" and not self.ctx.may_write(ep.method, ep.path):
                continue
            out.append(s)
        return out

    async def send(self, ep: EntryPoint, action: str, role: str, example: Example, ident: str | None) -> Exchange:
        if self.allowance <= 0:
            raise _OutOfBudget
        self.allowance -= 1
        self.report.requests += 1
        shape = self.shapes[action]
        full: Example = {f.key: default_value(f.node, self.canary) for f in shape.fields}
        full.update(example)
        if ident is not None:
            full[f"path:{self.res.param}"] = ident
        full[MODE] = "normal"
        spec = build_example_request(ep, shape, full)
        return await self.ctx.send(spec.method, spec.path, as_role=role, **spec.kwargs())

    async def run_chain(self, chain: list[Step], bodies: Bodies) -> ChainFailure | None:
        """Send the chain; the first failure of a kind (most severe first) it shows, or None."""
        results: list[StepResult] = []
        state: dict[str, Any] = {"ident": None, "expr": "", "deleted": None, "updated": None, "foreign": None,
                                 "last_read": None}
        failures: list[ChainFailure] = []
        try:
            for step in chain:
                if not await self._step(step, bodies, state, results, failures):
                    break
        except _OutOfBudget:
            pass
        self.report.chains += 1
        new = [f for f in failures if f.kind not in self.report.failures]  # kinds already reported are done
        return min(new, key=lambda f: KINDS.index(f.kind)) if new else None

    async def _step(self, step: Step, bodies: Bodies, state: dict[str, Any], results: list[StepResult],
                    failures: list[ChainFailure]) -> bool:
        """Send one step and judge it; False when the chain cannot go on."""
        role = self._role(step.actor)
        body = {"create": bodies.create, "update": bodies.update if step.actor == "owner" else bodies.foreign}.get(
            step.action, {})
        ep = self.res.create if step.action == "create" else self.res.items[step.action]
        before = len(self.ctx.sensor_events(self.canary))
        ex = await self.send(ep, step.action, role, body, state["ident"])
        results.append(StepResult(step, role, ex, body or None))

        def fail(kind: str, detail: str, marker: str = "") -> None:
            failures.append(ChainFailure(kind, detail, list(results), state["expr"], state["ident"] or "", marker))

        leaked = leaked_stack(ex, "", self.sigs) if ex.ok else None
        if ex.ok and (is_crash(ex) or leaked):
            fail("crash", f"{step.action} as {role}: HTTP {ex.status}" + (f" with a {leaked}" if leaked else ""))
        sinks = sink_events(self.ctx.sensor_events(self.canary)[before:])
        if sinks:
            fail("sink", f"{step.action} as {role}: {sinks[0].kind} sensor saw the generated value")
        ok = ex.ok and 200 <= ex.status < 300
        if step.action == "create":
            found = observed_id(ex, self.res) if ok else None
            if found is None:
                return False  # no resource to follow
            state["ident"], state["expr"] = found
        elif step.action == "update" and ok:
            state["updated" if step.actor == "owner" else "foreign"] = body
            if step.actor != "owner" and _forbidden(self.ctx, ep, step.actor, role):
                state["foreign_role"] = role
        elif step.action == "delete":
            state["deleted"] = ex.status if ex.ok and ex.status in _DELETED else None
        elif step.action == "read":
            self._judge_read(step, role, ex, ok, bodies, state, fail)
        return True

    def _judge_read(self, step: Step, role: str, ex: Exchange, ok: bool, bodies: Bodies, state: dict[str, Any],
                    fail: Any) -> None:
        shows = ok and (self.canary in ex.text if _carries(bodies.create, self.canary) else True)
        if step.actor != "owner":
            if shows and _forbidden(self.ctx, self.res.items["read"], step.actor, role):
                fail("access", f"{role} read a resource created by {self.report.owner} "
                               f"(the access policy does not allow it)", self.canary)
            return
        if not ok:
            return
        if state["deleted"] and (shows if _carries(bodies.create, self.canary) else ex.text == state["last_read"]):
            fail("delete", f"the owner's DELETE answered {state['deleted']} yet the resource is still readable",
                 self.canary if _carries(bodies.create, self.canary) else "")
            return
        doc = _json(ex)
        foreign = state.get("foreign")
        if foreign and state.get("foreign_role") and _shows_values(doc, foreign, bodies.create):
            fail("access", f"{state['foreign_role']} changed a resource created by {self.report.owner} "
                           f"(the access policy does not allow it)", "")
        elif state["updated"] is not None and not foreign:
            lost = _lost_fields(doc, bodies.create, state["updated"])
            if lost:
                fail("update", f"the update answered 2xx but a read-back shows the old value of {', '.join(lost)}",
                     "")
        state["last_read"] = ex.text

    # --- hypothesis bridge (runs in a worker thread) ---

    def search(self, budget: int, seed: int) -> ChainFailure | None:
        """Generate chains until one fails or the budget is spent; drop steps, then shrink the bodies."""
        chain = self._steps(FULL_CHAIN)
        pinned: list[ChainFailure] = []
        minimal: list[list[Step]] = [chain]
        self.allowance = budget

        seen: dict[str, bool] = {}  # hypothesis replays examples: a chain's verdict must not change

        def condition(bodies: Bodies) -> bool:
            key = repr((bodies, minimal[0]))
            if key in seen:
                return seen[key]
            seen[key] = verdict = judge(bodies)
            return verdict

        def judge(bodies: Bodies) -> bool:
            if self.stopped is not None or self.allowance <= 0:
                return False
            failure = self._sync(self.run_chain(minimal[0], bodies))
            if failure is None:
                return False
            if not pinned:
                self.generation_left, self.allowance = self.allowance, SHRINK_REQUESTS
                pinned.append(failure)
                minimal[0] = self._drop_steps(minimal[0], bodies, failure)
                return True
            if failure.kind == pinned[0].kind:
                pinned[0] = failure
                return True
            return False

        config = settings(database=None, deadline=None, max_examples=max(1, budget), derandomize=False,
                          phases=[Phase.generate, Phase.shrink], verbosity=Verbosity.quiet,
                          suppress_health_check=list(HealthCheck))
        try:
            find(self.bodies(), condition, settings=config, random=random.Random(seed))
        except NoSuchExample:
            return None
        except HypothesisException:
            if not pinned:  # a flaky target (state that changes under us): keep what was seen, if anything
                return None
        if pinned:
            pinned[0].origin = "shrunk"
        return pinned[0] if pinned else None

    def _drop_steps(self, chain: list[Step], bodies: Bodies, failure: ChainFailure) -> list[Step]:
        """The chain with every step removed whose absence keeps the failure (create and the failing step stay)."""
        kept = list(chain)
        last = len(failure.steps) - 1
        kept = kept[:last + 1]  # steps after the failing one never mattered
        i = 1
        while i < len(kept) - 1:
            trial = kept[:i] + kept[i + 1:]
            again = self._sync(self.run_chain(trial, bodies))
            if again is not None and again.kind == failure.kind:
                kept = trial
            else:
                i += 1
        return kept

    def _sync(self, coro: Any) -> Any:
        assert self.loop is not None
        try:
            return asyncio.run_coroutine_threadsafe(coro, self.loop).result()
        except BudgetExhausted as exc:
            self.stopped = exc
            return None


def _carries(example: Example, canary: str) -> bool:
    return any(isinstance(v, str) and canary in v for v in example.values())


def _flat(doc: Any) -> dict[str, Any]:
    """Top-level keys of a JSON object and of the objects nested one level down (`{"note": {...}}`)."""
    if not isinstance(doc, dict):
        return {}
    out = {k: v for k, v in doc.items() if not isinstance(v, dict)}
    for v in doc.values():
        if isinstance(v, dict):
            for k, inner in v.items():
                out.setdefault(k, inner)
    return out


def _name(key: str) -> str:
    return key.partition(":")[2].split(".")[0]


def _shows_values(doc: Any, written: Example, created: Example) -> bool:
    """Whether the read-back shows a string value that `written` set (and the create body did not)."""
    flat = _flat(doc)
    return any(isinstance(v, str) and v != created.get(k) and flat.get(_name(k)) == v for k, v in written.items())


def _lost_fields(doc: Any, created: Example, updated: Example) -> list[str]:
    """Fields the update changed whose read-back still shows the created value."""
    flat = _flat(doc)
    lost = []
    for key, new in updated.items():
        old = created.get(key)
        name = _name(key)
        if isinstance(new, str) and isinstance(old, str) and new != old and name in flat and flat[name] == old:
            lost.append(name)
    return sorted(lost)


async def choose_roles(ctx: CheckContext, runner: ChainRunner) -> bool:
    """Owner: the first role (then anonymous) whose create and read-back succeed; other: the next role."""
    names = [*ctx.roles, "anonymous"]
    create = runner.shapes["create"]
    example = {f.key: default_value(f.node, runner.canary) for f in create.fields if f.location != "path"}
    for i, role in enumerate(names):
        ex = await runner.send(runner.res.create, "create", role, example, None)
        found = observed_id(ex, runner.res) if ex.ok and 200 <= ex.status < 300 else None
        if found is None:
            continue
        back = await runner.send(runner.res.items["read"], "read", role, {}, found[0])
        if back.ok and 200 <= back.status < 300:
            runner.report.owner = None if role == "anonymous" else role
            others = [n for n in names[i + 1:] + names[:i] if n not in (role, "anonymous")]
            runner.report.other = others[0] if others else None
            return True
    return False


async def fuzz_resource(ctx: CheckContext, res: Resource, budget: int, sigs: list[StackSignature],
                        seed: int, docs: list[OpenAPIDocument]) -> ResourceReport:
    """Choose the roles, then search, shrink and report chains on one resource."""
    report = ResourceReport(res)
    runner = ChainRunner(ctx, res, report, sigs, ctx.canary(), docs)
    runner.allowance = budget
    try:
        if not ctx.may_write(res.create.method, res.create.path):
            report.skipped = "writes not allowed"
            return report
        if not await choose_roles(ctx, runner):
            report.skipped = "no role could create and read back the resource"
            return report
        runner.loop = asyncio.get_running_loop()
        left = runner.allowance
        # After a failure, the search goes on with what is left of the budget, for kinds not found yet.
        while left > 0:
            failure = await asyncio.to_thread(runner.search, left, seed + len(report.failures))
            if runner.stopped is not None:
                raise runner.stopped
            if failure is None:
                break
            report.failures[failure.kind] = failure
            left = runner.generation_left
    except _OutOfBudget:
        return report
    return report


def discover_resources(docs: list[OpenAPIDocument], surface: Surface) -> list[Resource]:
    """Linked resources first, then observed ones for collections the links do not cover (bounded)."""
    linked = linked_resources(docs, surface)
    seen = {r.key for r in linked}
    observed = [r for r in observed_resources(surface) if r.key not in seen]
    return (linked + observed)[:MAX_RESOURCES]


# --- reproduction -------------------------------------------------------------------------------


def failing_operation(failure: ChainFailure, res: Resource) -> EntryPoint:
    """The operation at fault: the DELETE that did not delete, the update that was lost, else the last step."""
    if failure.kind == "delete" and "delete" in res.items:
        return res.items["delete"]
    if failure.kind == "update" and "update" in res.items:
        return res.items["update"]
    last = failure.steps[-1].step
    if failure.kind == "access" and last.actor == "owner" and "update" in res.items:
        return res.items["update"]  # another role's write, seen by the owner's read-back
    return res.create if last.action == "create" else res.items[last.action]


def describe_chain(failure: ChainFailure) -> str:
    """`create as alice → delete as alice → read as alice` with each status."""
    return " → ".join(f"{r.step.action} as {r.role} ({r.ex.status or 'no answer'})" for r in failure.steps)


def _relative(url: str, base: str) -> str:
    return url[len(base):] or "/" if url.startswith(base) else url


def _templated(path: str, ident: str) -> tuple[str, bool]:
    """The path with the created id's segment as `{ident}` (for an f-string), and whether it had one."""
    quoted = path.replace("{", "{{").replace("}", "}}")
    head, sep, tail = quoted.partition("?")
    parts = head.split("/")
    hit = False
    for i, part in enumerate(parts):
        if ident and part == ident:
            parts[i], hit = "{ident}", True
    return "/".join(parts) + sep + tail, hit


def _jq(expr: str) -> str:
    pointer = expr.removeprefix("$response.body#")
    return "." + ".".join(json.dumps(p) for p in pointer.split("/")[1:]) if pointer else "."


def chain_curl(failure: ChainFailure, target: Any) -> str:
    """A shell script: each step as a curl command, the created id captured in $ID."""
    import shlex

    from bastion.findings.evidence import proof_from

    base = target.base_url if target.kind == "url" else "${TARGET:-http://127.0.0.1:8000}"
    lines = [f"# {describe_chain(failure)}"]
    for i, r in enumerate(failure.steps, 1):
        req = proof_from(r.ex).request
        path, has_id = _templated(_relative(req.url, target.base_url), failure.ident)
        path = path.replace("{ident}", "$ID").replace("{{", "{").replace("}}", "}")
        parts = ["curl", "-s", "-X", req.method]
        for k, v in req.headers.items():
            parts += ["-H", f"{k}: {v}"]
        if req.body:
            parts += ["--data-binary", req.body]
        cmd = " ".join(shlex.quote(p) for p in parts) + f' "{base}{path}"'
        lines.append(f"# {i}. {r.step.action} as {r.role}")
        if r.step.action == "create":
            if failure.id_expression.startswith("$response.header."):
                header = failure.id_expression.removeprefix("$response.header.")
                grab = f"-D - -o /dev/null | sed -n 's|^{header.lower()}: .*/||Ip' | tr -d '\\r'"
                cmd = cmd.replace("curl -s", "curl -s", 1) + " " + grab
            else:
                cmd += f" | jq -r {shlex.quote(_jq(failure.id_expression))}"
            lines.append(f"ID=$({cmd})")
        else:
            lines.append(cmd + " -i" if has_id or i == len(failure.steps) else cmd)
    return "\n".join(lines)


def chain_pytest(failure: ChainFailure, target: Any, name: str, signs: list[str]) -> str:
    """A standalone pytest test replaying the chain; it fails while the last step shows the flaw."""
    from bastion.findings.evidence import proof_from

    asgi = target.kind == "asgi"
    aw = "await " if asgi else ""
    body_lines = []
    for r in failure.steps:
        req = proof_from(r.ex).request
        path, _ = _templated(_relative(req.url, target.base_url), failure.ident)
        content = f", content={req.body.encode('utf-8')!r}" if req.body else ""
        body_lines.append(f"# {r.step.action} as {r.role}")
        body_lines.append(f"r = {aw}client.request({req.method!r}, f{path!r}, headers={dict(req.headers)!r}"
                          f"{content}, follow_redirects=False)")
        if r.step.action == "create":
            body_lines.append(f"ident = _created_id(r, {failure.id_expression!r})")
    if target.kind == "url":
        opener, loader = f"with httpx.Client(base_url={target.base_url!r}, timeout=30) as client:", ""
    else:
        module, _, expr = target.spec.partition(":")
        loader = (f"_app_module = importlib.import_module({module!r})\n\n\ndef _app():\n"
                  f"    return eval({expr!r}, vars(_app_module))  # the app factory Bastion scanned\n\n\n")
        transport = "ASGITransport" if asgi else "WSGITransport"
        client = "AsyncClient" if asgi else "Client"
        opener = (f"{'async ' if asgi else ''}with httpx.{client}(transport=httpx.{transport}(app=_app(), "
                  f"raise_app_exceptions=False), base_url={target.base_url!r}) as client:")
    inner = "\n".join("        " + line for line in body_lines)
    run = (f"    async def go():\n        {opener}\n{textwrap_indent(inner, 4)}\n        return r\n\n"
           f"    r = asyncio.run(go())\n") if asgi else f"    {opener}\n{inner}\n"
    conditions = ",\n        ".join(signs) or "True"
    return (
        f'"""Bastion reproduction: {failure.kind} in a stateful sequence.\n\n{describe_chain(failure)}\n'
        f'Fails while the flaw exists; passes once it is fixed.\n"""\n\n'
        "import asyncio  # noqa: F401\nimport importlib  # noqa: F401\nimport json  # noqa: F401\n\nimport httpx\n\n"
        f"{loader}"
        "def _created_id(r, expression):\n"
        "    if expression.startswith('$response.header.'):\n"
        "        return r.headers[expression.split('.', 2)[2]].rstrip('/').rpartition('/')[2]\n"
        "    node = r.json()\n"
        "    for part in expression.partition('#')[2].split('/')[1:]:\n"
        "        node = node[int(part)] if isinstance(node, list) else node[part]\n"
        "    return str(node)\n\n\n"
        "def _flat(doc):\n"
        "    out = dict(doc) if isinstance(doc, dict) else {}\n"
        "    for v in list(out.values()):\n"
        "        if isinstance(v, dict):\n"
        "            out = {**v, **out}\n"
        "    return out\n\n\n"
        f"def {name}():\n{run}"
        f"    flaw_signs = [\n        {conditions},\n    ]\n"
        f"    assert not all(flaw_signs), {('flaw still present: ' + failure.detail)!r}\n"
    )


def textwrap_indent(text: str, spaces: int) -> str:
    """Indent every line of `text` by `spaces` more spaces."""
    return "\n".join(" " * spaces + line for line in text.splitlines())


def flaw_signs(failure: ChainFailure, bodies_written: Example | None, created: Example | None) -> list[str]:
    """Python conditions on the last response `r` that hold while the flaw exists."""
    ex = failure.steps[-1].ex
    if failure.kind in ("crash", "sink"):
        return [f"r.status_code == {ex.status}"]
    signs = ["200 <= r.status_code < 300"]
    if failure.marker:
        signs.append(f"{failure.marker!r} in r.text")
    if failure.kind == "update" and bodies_written and created:
        for key, new in sorted(bodies_written.items()):
            old = created.get(key)
            if isinstance(new, str) and isinstance(old, str) and new != old:
                signs.append(f"_flat(r.json()).get({_name(key)!r}) == {old!r}")
                break
    if failure.kind == "access" and not failure.marker and bodies_written:
        key, value = next(((k, v) for k, v in sorted(bodies_written.items()) if isinstance(v, str)), ("", ""))
        if key:
            signs.append(f"_flat(r.json()).get({_name(key)!r}) == {value!r}")
    return signs
