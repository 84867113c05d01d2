"""The check registry: a check is a plain async-generator function plus metadata.

    @check(id="injection.sql", threat="injection.sql", scope="input")
    async def sql_injection(ctx: CheckContext, unit: InputUnit) -> AsyncIterator[Finding]:
        ...
        yield ctx.finding(...)

CWE, OWASP refs, severity and mitigation default to the catalog threat's; a check may override them.
The engine only ever iterates over REGISTRY: it never names a check.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from bastion.catalog import get_threat
from bastion.findings.model import Severity

if TYPE_CHECKING:
    pass

Scope = Literal["target", "entry", "input"]
# What a check may need started (`@check(needs=...)`): a dependency kind (bastion.model.schema.DependencyKind),
# "alerts" (the alert webhook listener) or "dependencies" (every declared dependency, e.g. outage probes).
NEEDS = frozenset({"oidc", "queue", "vault", "sqlite", "postgresql", "cache", "smtp", "http", "alerts",
                   "dependencies"})
ShardGroup = Literal["entry", "check", "family"]
CheckFunc = Callable[..., AsyncIterator[Any]]


@dataclass(frozen=True)
class CheckSpec:
    id: str
    threat: str
    title: str
    severity: Severity
    cwe: int
    owasp: tuple[str, ...]
    mitigation: str
    scope: Scope
    func: CheckFunc
    # For scope="input": which input locations the check attacks (empty = all).
    locations: tuple[str, ...] = ()
    # For scope="entry": which HTTP methods the check wants (empty = all).
    methods: tuple[str, ...] = ()
    # Checks in the same family share a prefix: "injection.sql" -> "injection".
    tags: tuple[str, ...] = field(default=())
    # True: run each unit once per logged-in role (ctx.role set); False: once, as anonymous.
    roles: bool = False
    # What `--shard` must keep in one process: "entry" (units of one entry point share memos), "check"
    # (units share a per-check cache) or "family" (the family's checks share one run, e.g. fuzzing).
    shard: ShardGroup = "entry"
    # Estimated requests per unit, for balancing shards (None: a default by scope).
    cost: float | None = None
    # What the scan must start for this check (see NEEDS): dependency kinds whose doubles it drives, "alerts"
    # for the alert webhook listener, "dependencies" for every declared dependency. Planning starts only what
    # the selected checks need (bastion/session.py), so a check reading `doubles_for`/`sinks_for` must say so.
    needs: tuple[str, ...] = ()

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0]


REGISTRY: dict[str, CheckSpec] = {}


def check(*, id: str, threat: str, scope: Scope, title: str | None = None, severity: str | None = None,
          cwe: int | None = None, owasp: tuple[str, ...] | None = None, mitigation: str | None = None,
          locations: tuple[str, ...] = (), methods: tuple[str, ...] = (),
          tags: tuple[str, ...] = (), roles: bool = False, shard: ShardGroup = "entry",
          cost: float | None = None, needs: tuple[str, ...] = ()) -> Callable[[CheckFunc], CheckFunc]:
    """Register a check. Metadata not given is taken from the catalog threat."""
    unknown = sorted(set(needs) - NEEDS)
    if unknown:
        raise ValueError(f"check {id!r}: unknown needs {unknown}; choose from {sorted(NEEDS)}")

    def register(func: CheckFunc) -> CheckFunc:
        if id in REGISTRY:
            raise ValueError(f"check id {id!r} registered twice")
        t = get_threat(threat)
        REGISTRY[id] = CheckSpec(
            id=id, threat=threat, title=title or t.title,
            severity=Severity.parse(severity) if severity else t.severity,
            cwe=cwe if cwe is not None else t.cwe,
            owasp=tuple(owasp) if owasp is not None else tuple(t.owasp_refs),
            mitigation=mitigation or t.mitigation, scope=scope, func=func,
            locations=locations, methods=methods, tags=tags, roles=roles, shard=shard, cost=cost,
            needs=tuple(needs),
        )
        return func

    return register


_loaded = False


def load_checks() -> dict[str, CheckSpec]:
    """Import every module under bastion.checks so their decorators run."""
    global _loaded
    if not _loaded:
        import bastion.checks as pkg

        for mod in pkgutil.walk_packages(pkg.__path__, prefix="bastion.checks."):
            if mod.name != "bastion.checks.registry":
                importlib.import_module(mod.name)
        _loaded = True
    return REGISTRY


def select_checks(patterns: list[str] | None) -> list[CheckSpec]:
    """Checks matching ids or family prefixes (`injection`, `headers.csp-missing`), sorted by id."""
    checks = load_checks()
    if not patterns:
        return [checks[k] for k in sorted(checks)]
    chosen = []
    for cid in sorted(checks):
        if any(cid == p or cid.startswith(p.rstrip(".") + ".") for p in patterns):
            chosen.append(checks[cid])
    return chosen
