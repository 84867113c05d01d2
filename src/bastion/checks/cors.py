"""CORS policy: does the service let arbitrary (or the null) origin read its responses?

Both checks send the sampled GET requests (`/` plus GET entry points) with an `Origin` header, and a
preflight (`OPTIONS` with Access-Control-Request-Method) to a couple of entry points, then read
Access-Control-Allow-Origin / -Credentials. A reflection is confirmed with a second random origin.
The policy is usually site-wide, so each check reports once, at the worst affected path.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, header_contains, header_matches, note, proof_from
from bastion.findings.model import Confidence, Finding, Location
from bastion.surface.model import EntryPoint
from bastion.surface.requests import RequestSpec, build_request
from bastion.surface.sampling import sample_get_requests
from bastion.target.exchange import Exchange

SAMPLE = 20
PREFLIGHTS = 2
ACAO = "access-control-allow-origin"
ACAC = "access-control-allow-credentials"


@dataclass
class Probe:
    """A request template (GET as sampled, or a preflight) and the path a finding should name."""

    path: str
    spec: RequestSpec
    preflight_method: str | None = None

    async def send(self, ctx: CheckContext, origin: str) -> Exchange:
        if self.preflight_method:
            headers = {**self.spec.headers, "origin": origin,
                       "access-control-request-method": self.preflight_method,
                       "access-control-request-headers": "content-type"}
            return await ctx.send("OPTIONS", self.spec.path, params=self.spec.params or None, headers=headers)
        # A browser sends its cookies on a credentialed cross-origin request, and some CORS layers
        # (Starlette with `*` and credentials) only reflect the origin when a cookie is present.
        cookies = {**self.spec.cookies} or {"bastion_probe": "1"}
        spec = RequestSpec(method=self.spec.method, path=self.spec.path, params=self.spec.params,
                           headers={**self.spec.headers, "origin": origin}, cookies=cookies)
        return await ctx.send_spec(spec)


def looks_like_api(ep: EntryPoint) -> bool:
    """API routes are where CORS matters: JSON answers or an `api` path segment."""
    return "api" in ep.path.lower().split("/") or any("json" in mt for mt in ep.produces)


def _probes(ctx: CheckContext) -> list[Probe]:
    """SAMPLE GETs, then PREFLIGHTS preflights (state-changing entry points first, else GETs)."""
    # API routes first (that is where CORS is configured), the root page last.
    sampled = sample_get_requests(ctx.surface, SAMPLE - 1, include_root=False, prefer=looks_like_api)
    probes = [Probe(ep.path if ep else spec.path, spec) for ep, spec in sampled]
    if not any(p.spec.path == "/" for p in probes):
        probes.append(Probe("/", RequestSpec(method="GET", path="/")))
    eps = ctx.surface.sorted()
    targets: list[EntryPoint] = [ep for ep in eps if ep.method in ("POST", "PUT", "PATCH", "DELETE")]
    targets += [ep for ep in eps if ep.method == "GET"]
    seen: set[str] = set()
    for ep in targets:
        if len(seen) >= PREFLIGHTS:
            break
        if ep.path in seen:
            continue
        seen.add(ep.path)
        spec = build_request(ep)
        probes.append(Probe(ep.path, RequestSpec(method="OPTIONS", path=spec.path, params=spec.params),
                            preflight_method=ep.method))
    return probes


def _credentials(ex: Exchange) -> bool:
    return (ex.header(ACAC) or "").strip().lower() == "true"


def _allowed(ex: Exchange, origin: str) -> str | None:
    """How the response lets `origin` read it: "reflected", "wildcard" or None."""
    values = [v.strip() for v in ex.header_values(ACAO)]
    if origin in values:
        return "reflected"
    if "*" in values:
        return "wildcard"
    return None


def _attacker_origin(ctx: CheckContext) -> str:
    return f"https://{ctx.canary()}.example"


@dataclass
class Hit:
    probe: Probe
    ex: Exchange
    kind: str
    credentials: bool

    @property
    def rank(self) -> int:
        return {("reflected", True): 3, ("reflected", False): 1, ("wildcard", True): 2}.get(
            (self.kind, self.credentials), 0)


def _location(hit: Hit) -> Location:
    method = "OPTIONS" if hit.probe.preflight_method else "GET"
    return Location(method=method, path=hit.probe.path, url=hit.ex.request.url)


@check(id="cors.origin-reflection", threat="cors.origin-reflection", scope="target")
async def origin_reflection(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Any Origin echoed in Access-Control-Allow-Origin (or `*` with credentials).

    Bound: SAMPLE + PREFLIGHTS requests, plus one confirmation with a second random origin; when
    nothing foreign is accepted, BYPASS_PROBES more to test a loosely matched allowlist.
    """
    origin = _attacker_origin(ctx)
    hits: list[Hit] = []
    probes = _probes(ctx)
    for probe in probes:
        ex = await probe.send(ctx, origin)
        kind = _allowed(ex, origin)
        # `*` alone is the normal answer of a public API: it never carries cookies.
        if kind and (kind == "reflected" or _credentials(ex)):
            hits.append(Hit(probe, ex, kind, _credentials(ex)))
    if not hits:
        if probes:
            async for finding in _allowlist_bypass(ctx, probes[0]):
                yield finding
        return
    best = max(hits, key=lambda h: h.rank)  # first of the worst kind, in sample order
    second = _attacker_origin(ctx)
    again = await best.probe.send(ctx, second)
    if _allowed(again, second) != best.kind:
        return  # not reproducible with another origin: not an origin-agnostic policy
    affected = sorted({f"{'OPTIONS' if h.probe.preflight_method else 'GET'} {h.probe.path}" for h in hits})
    shown = second if best.kind == "reflected" else "*"
    if best.kind == "reflected" and best.credentials:
        title, severity = "CORS reflects any origin and allows credentials", None
    elif best.kind == "reflected":
        title, severity = "CORS reflects any origin (without credentials)", "low"
    else:
        title, severity = "CORS allows `*` together with credentials", "low"
    conditions = [header_matches(ACAO, "^" + re.escape(shown) + "$")]
    if best.credentials:
        conditions.append(header_contains(ACAC, "true"))
    yield ctx.finding(
        title=title, severity=severity, confidence=Confidence.confirmed, location=_location(best),
        evidence=[*exchange_evidence(best.ex, f"Origin {origin} allowed", origin),
                  *exchange_evidence(again, f"second random Origin {second} allowed too", second),
                  note(f"{len(affected)} sampled requests allow a foreign origin", "\n".join(affected))],
        proof=proof_from(again, *conditions))


BYPASS_PROBES = 3


def bypass_origins(own: httpx.URL, canary: str) -> list[tuple[str, str]]:
    """Origins that only a substring/prefix/suffix match would accept as the service's own."""
    host = own.host
    return [(f"{own.scheme}://{host}.{canary}.example", "the trusted host as a prefix of an attacker domain"),
            (f"{own.scheme}://{canary}{host}", "an attacker domain ending with the trusted host")]


async def _allowlist_bypass(ctx: CheckContext, probe: Probe) -> AsyncIterator[Finding]:
    """If the service trusts its own origin, try look-alike origins that a loose match would accept."""
    own = httpx.URL(ctx.target.base_url)
    own_origin = f"{own.scheme}://{own.host}" + (f":{own.port}" if own.port else "")
    trusted = await probe.send(ctx, own_origin)
    if _allowed(trusted, own_origin) != "reflected":
        return  # no allowlist we can see: nothing to bypass
    for evil, how in bypass_origins(own, ctx.canary()):
        ex = await probe.send(ctx, evil)
        if _allowed(ex, evil) != "reflected":
            continue
        conditions = [header_matches(ACAO, "^" + re.escape(evil) + "$")]
        if _credentials(ex):
            conditions.append(header_contains(ACAC, "true"))
        yield ctx.finding(
            title=f"CORS allowlist accepts look-alike origins ({how})",
            severity=None if _credentials(ex) else "low", confidence=Confidence.confirmed,
            location=_location(Hit(probe, ex, "reflected", _credentials(ex))),
            evidence=[*exchange_evidence(trusted, f"the service's own origin {own_origin} is allowlisted"),
                      *exchange_evidence(ex, f"look-alike Origin {evil} allowed", evil)],
            proof=proof_from(ex, *conditions))
        return


@check(id="cors.null-origin", threat="cors.null-origin", scope="target")
async def null_origin(ctx: CheckContext) -> AsyncIterator[Finding]:
    """`Origin: null` accepted (with credentials: medium; without: low), reproduced once.

    An app that reflects every origin accepts null too; that is reported here as well (sandboxed
    frames make null reachable even where a future fix only blocks `https://` origins), and the
    evidence says whether a random origin is accepted alike. Bound: SAMPLE + PREFLIGHTS requests,
    plus two requests for the worst accepting path.
    """
    hits: list[Hit] = []
    for probe in _probes(ctx):
        ex = await probe.send(ctx, "null")
        if _allowed(ex, "null") == "reflected":
            hits.append(Hit(probe, ex, "reflected", _credentials(ex)))
    if not hits:
        return
    hit = max(hits, key=lambda h: h.rank)
    again = await hit.probe.send(ctx, "null")
    if _allowed(again, "null") != "reflected":
        return
    foreign = _attacker_origin(ctx)
    control = await hit.probe.send(ctx, foreign)
    trusts_all = _allowed(control, foreign) == "reflected"
    conditions = [header_matches(ACAO, "^null$")]
    if hit.credentials:
        conditions.append(header_contains(ACAC, "true"))
    title = "CORS trusts the null origin" + (" with credentials" if hit.credentials else "")
    control_summary = (f"a random Origin {foreign} is accepted too (see cors.origin-reflection)" if trusts_all
                       else f"a random Origin {foreign} is refused: null is allowlisted")
    affected = sorted({f"{'OPTIONS' if h.probe.preflight_method else 'GET'} {h.probe.path}" for h in hits})
    yield ctx.finding(
        title=title, severity=None if hit.credentials else "low", confidence=Confidence.confirmed,
        location=_location(hit),
        evidence=[*exchange_evidence(hit.ex, "Origin null allowed", "null"),
                  *exchange_evidence(control, control_summary, foreign),
                  note(f"{len(affected)} sampled requests allow the null origin", "\n".join(affected))],
        proof=proof_from(again, *conditions))
