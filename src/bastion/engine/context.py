"""What a check sees: the target, the surface, its unit (entry point / input), payloads, a seeded RNG."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bastion.checks.registry import CheckSpec
from bastion.engine.units import UnitRecord
from bastion.engine.writes import READ_ONLY_METHODS, WritePolicy
from bastion.findings.evidence import proof_from
from bastion.findings.model import Confidence, Evidence, Finding, InputRef, Location, Proof, Severity
from bastion.identity.matrix import AuthzCell
from bastion.identity.session import RoleSession
from bastion.payloads import CanaryFactory, Payloads
from bastion.sensors import SensorEvent, SensorSession, probe_scope, request_key
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.surface.requests import RequestSpec, build_request
from bastion.target.client import ProbeClient
from bastion.target.exchange import Exchange
from bastion.target.target import Target


@dataclass
class CheckStats:
    check_id: str
    requests: int = 0
    duration_s: float = 0.0
    units: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # One record per unit (same order as `units`): what ran where, for the coverage report.
    unit_records: list[UnitRecord] = field(default_factory=list)


@dataclass
class CheckContext:
    spec: CheckSpec
    client: ProbeClient
    surface: Surface
    payloads: Payloads
    rng: random.Random
    stats: CheckStats
    ep: EntryPoint | None = None
    inp: Input | None = None
    # Shared, per-run scratch space for a check across its units (e.g. a baseline computed once).
    memo: dict[str, Any] = field(default_factory=dict)
    role: str | None = None
    # Logged-in roles of the run (name -> session) and the run's role × entry-point matrix.
    roles: dict[str, RoleSession] = field(default_factory=dict)
    authz_matrix: list[AuthzCell] = field(default_factory=list)
    access: dict[str, list[str]] = field(default_factory=dict)
    # The run's grey-box sensor session (in-process targets with sensors on), else None.
    sensors: SensorSession | None = None
    # Where state-changing probes may go (the `writes:` setting, resolved for this target).
    writes: WritePolicy = field(default_factory=WritePolicy)
    # The configured roles (name -> bastion.model.schema.RoleConfig), e.g. to find the login endpoint.
    role_configs: dict[str, Any] = field(default_factory=dict)
    # The threat model's `data_classes` (class -> field names, e.g. {"pii": ["email"]}); empty = defaults.
    data_classes: dict[str, list[str]] = field(default_factory=dict)
    # Examples per entry point for the fuzz checks (`--fuzz-budget`; 0 disables fuzzing).
    fuzz_budget: int = 24
    # The parsed threat model (bastion.model.BastionConfig) when there is one: checks read their own
    # sections from it (`tls:`, `data_stores:`); None for scans without a model file.
    config: Any = None
    # The engine's record of this unit (requests sent, skip reason), for the coverage report.
    unit: UnitRecord | None = None

    def __post_init__(self) -> None:
        self.canaries = CanaryFactory(self.rng)

    @property
    def target(self) -> Target:
        return self.client.target

    def canary(self, length: int = 10) -> str:
        return self.canaries.new(length)

    def may_write(self, method: str | None = None, path: str | None = None) -> bool:
        """Whether a state-changing `method path` (default: the unit's entry point) may be sent."""
        method = (method or (self.ep.method if self.ep else "POST")).upper()
        path = path or (self.ep.path if self.ep else "/")
        return method in READ_ONLY_METHODS or self.writes.allows(method, path)

    async def reset(self, relogin: bool | Iterable[str] = False) -> None:
        """Restore the target's data after state-changing probes; log in again the roles named in `relogin`.

        A reset hook keeps sessions (the demo's restores everything but the sessions table), so roles are
        logged in again only when the check ended their session (logout, revocation): `relogin=["alice"]`,
        or `True` for every role. Logging in needlessly costs requests and, with TOTP roles, a code each.
        Call it once the check's own writes are done: units of the same check run concurrently.
        """
        await self.target.reset()
        names = list(self.roles) if relogin is True else [] if relogin is False else list(relogin)
        for name in names:
            if name in self.roles:
                await self.roles[name].refresh(self.client)

    def skip(self, reason: str) -> None:
        """Record why this unit was not (fully) tested, e.g. "no payloads" or "writes not allowed"."""
        if self.unit is not None:
            self.unit.skipped = reason

    def sensor_events(self, marker: str) -> list[SensorEvent]:
        """Sensor events (SQL, open, argv, ...) whose detail contains `marker`, e.g. a probe's canary."""
        return self.sensors.matching(marker) if self.sensors is not None else []

    async def send(self, method: str, path_or_url: str, *, as_role: str | None = None,
                   **kwargs: Any) -> Exchange:
        """Send a request as `as_role` (default: the unit's role; None/"anonymous" = no credentials)."""
        role = as_role if as_role is not None else self.role
        if role is not None and role != "anonymous":
            if role not in self.roles:
                raise ValueError(f"unknown role {role!r} (logged in: {', '.join(sorted(self.roles)) or 'none'})")
            # Expired credentials are renewed before sending, never after a 401 (denied roles get 401s).
            await self.roles[role].ensure_fresh(self.client)
            kwargs = self.roles[role].apply(kwargs)
        if self.sensors is None:
            ex = await self.client.request(method, path_or_url, **kwargs)
        else:
            with probe_scope() as probe:  # tags the sensor events this request causes
                ex = await self.client.request(method, path_or_url, **kwargs)
            probe.key = request_key(proof_from(ex).request)
        # The request plus its redirect hops; not a budget difference, which concurrent units inflate.
        self.stats.requests += 1 + len(ex.history)
        if self.unit is not None:
            self.unit.requests += 1 + len(ex.history)
        return ex

    async def send_spec(self, spec: RequestSpec, *, follow_redirects: bool = False,
                        as_role: str | None = None) -> Exchange:
        return await self.send(spec.method, spec.path, follow_redirects=follow_redirects, as_role=as_role,
                               **spec.kwargs())

    async def inject(self, value: str, *, ep: EntryPoint | None = None, inp: Input | None = None,
                     follow_redirects: bool = False) -> Exchange:
        """Send the unit's entry point with the unit's input (or the given one) set to `value`."""
        ep = ep or self.ep
        inp = inp or self.inp
        assert ep is not None, "inject() needs an entry point"
        return await self.send_spec(build_request(ep, inp, value), follow_redirects=follow_redirects)

    async def baseline(self, *, ep: EntryPoint | None = None) -> Exchange:
        """The entry point with every input at its benign default."""
        ep = ep or self.ep
        assert ep is not None
        return await self.send_spec(build_request(ep))

    def location(self, *, ep: EntryPoint | None = None, inp: Input | None = None, url: str | None = None,
                 path: str | None = None, method: str | None = None) -> Location:
        ep = ep or self.ep
        inp = inp or self.inp
        file = (inp.file if inp and inp.file else None) or (ep.file if ep else None)
        line = (inp.line if inp and inp.file else None) or (ep.line if ep else None)
        return Location(method=method or (ep.method if ep else None), path=path or (ep.path if ep else None),
                        url=url, input=InputRef.model_validate({"in": inp.location, "name": inp.name}) if inp else None,
                        file=file, line=line)

    def finding(self, *, title: str | None = None, confidence: Confidence | str = Confidence.firm,
                evidence: list[Evidence] | None = None, proof: Proof | None = None,
                location: Location | None = None, severity: Severity | str | None = None,
                url: str | None = None) -> Finding:
        """A finding carrying this check's metadata, located at the unit unless told otherwise."""
        s = self.spec
        return Finding(
            check_id=s.id, threat_id=s.threat, title=title or s.title,
            severity=Severity(severity) if severity else s.severity,
            confidence=Confidence(confidence), cwe=s.cwe, owasp=list(s.owasp),
            location=location or self.location(url=url), role=self.role, evidence=evidence or [],
            remediation=s.mitigation, proof=proof,
        )
