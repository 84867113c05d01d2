"""Token/JWT checks: forged, tampered, expired and replayed tokens the target should refuse.

Tokens are found generically: JWT-shaped values in the logged-in roles' credentials (bearer header,
cookies) and in the responses of JSON logins replayed from the role configs. Acceptance is judged
on "token-protected probes": GET entry points where the genuine token gets a 2xx and no token gets
401/403 or a login redirect. A forged token is accepted when the probe answers it 2xx with the same
shape as for the genuine token. Before blaming a specific trick (alg none, key confusion, kid), the
probe must refuse a token with a broken signature: otherwise the finding is "signature not checked".
Probes with one path parameter are filled with ids the role saw in its own pages. A dictionary HMAC
secret is a finding on its own (the signature verifies offline). Claim escalation works the other way:
routes refused to the token, opened by the same token with privilege claims raised.

Token leakage into logs is not checked: Bastion has no logging sensor yet.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import exchange_evidence, note, proof_from, status_in
from bastion.findings.model import Confidence, Finding, Location
from bastion.identity.jwt import (
    JWT_IN_TEXT,
    NONE_SPELLINGS,
    DecodedJWT,
    MalformedJWT,
    crack_hs,
    decode_unverified,
    expired_copy,
    forge,
    kid_variants,
    looks_like_jwt,
    not_yet_valid_copy,
    pem_spellings,
    public_pems_from_jwks,
    resign_hs_with_public_key,
    tamper_signature,
    with_claims,
)
from bastion.identity.matrix import is_login_redirect
from bastion.identity.ownership import admin_roles, allowed_roles, candidate_ids, is_admin_path, path_param
from bastion.surface.model import EntryPoint, Input
from bastion.surface.requests import RequestSpec, build_request
from bastion.target.exchange import Exchange

# GET entry points tried (genuine token first) while looking for token-protected probes, and how
# many probes an attack is tried on: bounded, and enough to reach a single endpoint with its own verifier.
MAX_PROBE_CANDIDATES = 40
MAX_PROBES = 8
# Routes with a path parameter tried once the plain ones are exhausted, and ids tried per route (ids
# come from the role's own 2xx pages, at most this long each).
MAX_PATH_PROBE_CANDIDATES = 12
MAX_IDS_PER_PATH = 2
MAX_ID_PAGE_CHARS = 200_000
MAX_JWKS_FETCHES = 6
QUERY_TOKEN_PARAMS = ("access_token", "token", "jwt")
WELL_KNOWN_JWKS = ("/.well-known/jwks.json", "/.well-known/openid-configuration")
# A cracked secret shorter than this is a dictionary word: masking it everywhere would garble reports.
MIN_SECRET_TO_MASK = 12
# Reading these ends a session or changes state even on GET: never use them as probes.
_UNSAFE_GET = re.compile(r"log-?out|sign-?out|delete|remove|destroy|revoke", re.IGNORECASE)
# The signed-in user's own views first: they are protected on nearly every app.
_IDENTITY_PATH = re.compile(r"(^|/)(me|account|profile|session|whoami|userinfo)(/|$)", re.IGNORECASE)
_LIKELY_PROTECTED = re.compile(r"(^|/)(api|me|account|profile|user|users|session|dashboard)(/|$)", re.IGNORECASE)
_JWKS_PATH = re.compile(r"jwks|/certs$|/keys$", re.IGNORECASE)
_REFRESH_FIELD = re.compile(r"^refresh[_-]?token$|^refreshtoken$|^refresh$", re.IGNORECASE)
_TOKEN_IN_URL = re.compile(r"[?&]([\w.-]{1,40})=(eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*)")


@dataclass(frozen=True)
class Carrier:
    """Where a token travels: a header (with its scheme prefix) or a cookie."""

    kind: str  # header | cookie
    name: str
    prefix: str = ""

    def label(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class TokenSample:
    role: str
    token: str
    carrier: Carrier
    decoded: DecodedJWT


@dataclass
class Probe:
    """A GET entry point the genuine token opens and no token does not."""

    ep: EntryPoint
    spec: RequestSpec
    genuine: Exchange
    verifies: bool | None = None  # refuses a broken signature (None: not asked yet)


@dataclass
class LoginReplay:
    """A JSON login replayed for `role`, and the token-looking strings in its response."""

    role: str
    ex: Exchange
    tokens: dict[str, str] = field(default_factory=dict)  # JSON dot path -> value


# --- finding tokens ---------------------------------------------------------------------------------


def role_tokens(ctx: CheckContext) -> list[TokenSample]:
    """JWTs the logged-in roles present: bearer-style headers and JWT-valued cookies (one per carrier)."""
    out: list[TokenSample] = []
    for role, session in ctx.roles.items():
        for name, value in session.headers.items():
            scheme, sep, rest = value.partition(" ")
            token, prefix = (rest.strip(), scheme + " ") if sep and looks_like_jwt(rest.strip()) else (value, "")
            if looks_like_jwt(token):
                out.append(TokenSample(role, token, Carrier("header", name, prefix), decode_unverified(token)))
        for name, value in session.cookies.items():
            if looks_like_jwt(value):
                out.append(TokenSample(role, value, Carrier("cookie", name), decode_unverified(value)))
    return out


def _json_strings(node: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _json_strings(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, str) and prefix:
        yield prefix, node


def _json_body(ex: Exchange) -> Any:
    if "json" not in ex.content_type:
        return None
    try:
        return json.loads(ex.text)
    except ValueError:
        return None


def _token_fields(body: Any) -> dict[str, str]:
    """JSON string members that are JWTs or sit under a token-ish key (opaque refresh tokens)."""
    return {path: value for path, value in _json_strings(body)
            if looks_like_jwt(value) or (_REFRESH_FIELD.match(path.rsplit(".", 1)[-1]) and len(value) >= 16)}


def _keep_secret(ctx: CheckContext, role: str, *values: str) -> None:
    """Tokens obtained during the check are the role's secrets: the report masks them."""
    session = ctx.roles.get(role)
    if session is not None:
        session.secrets.update(v for v in values if v)


async def login_replays(ctx: CheckContext) -> list[LoginReplay]:
    """Each role's JSON login sent again (anonymously): fresh token pairs, never the role's own."""
    if "logins" in ctx.memo:
        return list(ctx.memo["logins"])
    out: list[LoginReplay] = []
    for role, cfg in ctx.role_configs.items():
        login = getattr(cfg, "login", None)
        if login is None or login.json_body is None:
            continue  # form logins need the page's CSRF dance; their JWT cookies are in the session
        ex = await ctx.send(login.method, login.path, as_role="anonymous", json=login.json_body,
                            params=dict(login.params) or None, headers=dict(login.headers) or None)
        if not (ex.ok and 200 <= ex.status < 300):
            continue
        tokens = _token_fields(_json_body(ex))
        _keep_secret(ctx, role, *tokens.values())
        out.append(LoginReplay(role, ex, tokens))
    ctx.memo["logins"] = out
    return list(out)


# --- sending tokens and judging acceptance ----------------------------------------------------------------


def _with_token(spec: RequestSpec, carrier: Carrier | None, token: str | None) -> dict[str, Any]:
    kwargs = spec.kwargs()
    if carrier is not None and token is not None:
        if carrier.kind == "header":
            kwargs["headers"] = {**(kwargs.get("headers") or {}), carrier.name: carrier.prefix + token}
        else:
            kwargs["cookies"] = {**(kwargs.get("cookies") or {}), carrier.name: token}
    return kwargs


async def send_token(ctx: CheckContext, spec: RequestSpec, carrier: Carrier | None, token: str | None,
                     params: dict[str, str] | None = None) -> Exchange:
    """Send `spec` with only this token as credentials (no role cookies or headers)."""
    kwargs = _with_token(spec, carrier, token)
    if params:
        kwargs["params"] = {**(kwargs.get("params") or {}), **params}
    return await ctx.send(spec.method, spec.path, as_role="anonymous", **kwargs)


def _login_paths(ctx: CheckContext) -> tuple[str, ...]:
    return tuple(s.login_path for s in ctx.roles.values() if s.login_path)


def _is_2xx(ex: Exchange) -> bool:
    return ex.ok and 200 <= ex.status < 300


def _shape(ex: Exchange) -> Any:
    """What a response looks like, ignoring values: JSON key structure, or content type and size class."""
    body = _json_body(ex)
    if isinstance(body, dict):
        return ("json", tuple(sorted(body)))
    if isinstance(body, list):
        return ("json-list",)
    return (ex.content_type, len(ex.body).bit_length())


def same_shape(a: Exchange, b: Exchange) -> bool:
    return _is_2xx(a) and _is_2xx(b) and _shape(a) == _shape(b)


def _probe_candidates(ctx: CheckContext) -> list[EntryPoint]:
    eps = [ep for ep in ctx.surface.sorted()
           if ep.method == "GET" and not _UNSAFE_GET.search(ep.path)
           and not any(i.location == "path" for i in ep.inputs)]
    # Cheap GETs that usually need a login first: API, "me", account pages.
    eps.sort(key=lambda ep: (0 if _IDENTITY_PATH.search(ep.path) else 1 if _LIKELY_PROTECTED.search(ep.path) else 2,
                             ep.path))
    return eps[:MAX_PROBE_CANDIDATES]


def _path_candidates(ctx: CheckContext) -> list[tuple[EntryPoint, Input]]:
    """GET entry points with one path parameter (an object of the role's, filled from its own pages)."""
    out = [(ep, inp) for ep in ctx.surface.sorted()
           if ep.method == "GET" and not _UNSAFE_GET.search(ep.path) and (inp := path_param(ep)) is not None]
    out.sort(key=lambda c: (0 if _LIKELY_PROTECTED.search(c[0].path) else 1, c[0].path))
    return out[:MAX_PATH_PROBE_CANDIDATES]


@dataclass
class _ProbeSearch:
    """How far the probe search got for one role and carrier (callers asking for more continue it)."""

    probes: list[Probe] = field(default_factory=list)
    plain_done: int = 0
    path_done: int = 0
    texts: list[str] = field(default_factory=list)  # the role's own 2xx pages: where path ids come from


async def _try_probe(ctx: CheckContext, sample: TokenSample, ep: EntryPoint, spec: RequestSpec,
                     search: _ProbeSearch) -> Exchange:
    """Send `spec` with the genuine token; a 2xx refused to anonymity becomes a probe."""
    genuine = await send_token(ctx, spec, sample.carrier, sample.token)
    if not _is_2xx(genuine):
        return genuine
    if len(search.texts) < MAX_PROBE_CANDIDATES and len(genuine.text) <= MAX_ID_PAGE_CHARS:
        search.texts.append(genuine.text)
    anonymous = await send_token(ctx, spec, None, None)
    if anonymous.status in (401, 403) or is_login_redirect(anonymous, _login_paths(ctx)):
        search.probes.append(Probe(ep, spec, genuine))
    return genuine


def _search(ctx: CheckContext, sample: TokenSample) -> _ProbeSearch:
    found: _ProbeSearch = ctx.memo.setdefault(f"probes:{sample.role}:{sample.carrier.label()}", _ProbeSearch())
    return found


async def protected_probes(ctx: CheckContext, sample: TokenSample, limit: int = MAX_PROBES) -> list[Probe]:
    """Up to `limit` GET entry points that the sample's token opens and anonymity does not.

    Entry points without path parameters first; then routes with one path parameter, filled with ids
    the role saw in its own responses (bounded). The search is kept per role and carrier; a caller
    asking for more probes continues it.
    """
    search = _search(ctx, sample)
    plain = _probe_candidates(ctx)
    while len(search.probes) < limit and search.plain_done < len(plain):
        ep = plain[search.plain_done]
        search.plain_done += 1
        await _try_probe(ctx, sample, ep, build_request(ep), search)
    with_ids = _path_candidates(ctx) if len(search.probes) < limit else []
    while len(search.probes) < limit and search.path_done < len(with_ids):
        ep, inp = with_ids[search.path_done]
        search.path_done += 1
        for object_id in candidate_ids(ep, inp, search.texts)[:MAX_IDS_PER_PATH]:
            if _is_2xx(await _try_probe(ctx, sample, ep, build_request(ep, inp, object_id), search)):
                break  # one probe per route
    return list(search.probes[:limit])


async def accepted(ctx: CheckContext, probe: Probe, sample: TokenSample, token: str) -> Exchange | None:
    """The probe's answer to `token` when it is accepted like the genuine token, else None."""
    ex = await send_token(ctx, probe.spec, sample.carrier, token)
    return ex if same_shape(ex, probe.genuine) else None


async def verifies_signature(ctx: CheckContext, probe: Probe, sample: TokenSample) -> bool:
    """Whether the probe refuses the genuine token with a broken signature (the control for every trick)."""
    if probe.verifies is None:
        probe.verifies = await accepted(ctx, probe, sample, tamper_signature(sample.token)) is None
    return probe.verifies


_TIME_CLAIMS = ("iat", "exp", "nbf", "auth_time")


def stable_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """Claims with clock values shown relative to `iat` and random token ids masked: equal runs, equal evidence."""
    issued = claims.get("iat")
    out = dict(claims)
    if isinstance(out.get("jti"), str):
        out["jti"] = "<token id>"
    for name in _TIME_CLAIMS:
        value = out.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if name == "iat":
            out[name] = "<issued at>"
        elif isinstance(issued, int | float):
            out[name] = f"iat{int(value - issued):+d}s"
        else:
            out[name] = "<timestamp>"
    return out


def _claims_note(summary: str, token: str) -> Any:
    decoded = decode_unverified(token)
    return note(summary, json.dumps({"header": decoded.header, "claims": stable_claims(decoded.claims)},
                                    indent=1, sort_keys=True, default=str))


def accepted_finding(ctx: CheckContext, sample: TokenSample, probe: Probe, ex: Exchange, token: str, *,
                     title: str, summary: str, confidence: Confidence = Confidence.confirmed) -> Finding:
    """A finding proven by the probe answering a forged token like the genuine one."""
    evidence = [*exchange_evidence(ex, summary), _claims_note("forged token (decoded; signature not shown)", token)]
    finding = ctx.finding(title=title, confidence=confidence, evidence=evidence,
                          proof=proof_from(ex, status_in(ex.status)), location=ctx.location(ep=probe.ep),
                          url=ex.request.url)
    return finding.model_copy(update={"role": sample.role})


async def first_accepted(ctx: CheckContext, sample: TokenSample,
                         forged: list[tuple[str, str]]) -> tuple[Probe, Exchange, str, str] | None:
    """(probe, exchange, label, token) of the first forged token a verifying probe accepts."""
    for probe in await protected_probes(ctx, sample):
        if not await verifies_signature(ctx, probe, sample):
            continue  # that probe accepts anything: jwt.signature-unchecked reports it
        for label, token in forged:
            ex = await accepted(ctx, probe, sample, token)
            if ex is not None:
                return probe, ex, label, token
    return None


def _by_carrier(samples: list[TokenSample]) -> list[TokenSample]:
    """One sample per carrier (the first role's): a verifier flaw is one finding, not one per role."""
    seen: dict[Carrier, TokenSample] = {}
    for s in samples:
        seen.setdefault(s.carrier, s)
    return list(seen.values())


# --- alg none / signature / key confusion / kid -------------------------------------------------------


@check(id="jwt.alg-none", threat="jwt.alg-none", scope="target")
async def alg_none(ctx: CheckContext) -> AsyncIterator[Finding]:
    """The token's claims with `alg: none` and no signature, on probes that do verify signatures."""
    for sample in _by_carrier(role_tokens(ctx)):
        forged = [(spelling, forge(sample.decoded.claims, {**sample.decoded.header, "alg": spelling},
                                   alg=spelling)) for spelling in NONE_SPELLINGS]
        hit = await first_accepted(ctx, sample, forged)
        if hit is not None:
            probe, ex, spelling, token = hit
            yield accepted_finding(ctx, sample, probe, ex, token,
                                   title=f"Unsigned JWT (alg {spelling!r}) accepted on {probe.ep.key}",
                                   summary=f"{sample.carrier.label()}: the {sample.role} token re-encoded with "
                                           f"alg {spelling!r} and no signature; answered like the genuine token")


@check(id="jwt.signature-unchecked", threat="jwt.signature-unchecked", scope="target")
async def signature_unchecked(ctx: CheckContext) -> AsyncIterator[Finding]:
    """The token with a changed claim and its old signature: accepted means nobody checks signatures."""
    for sample in _by_carrier(role_tokens(ctx)):
        iat = sample.decoded.claims.get("iat")
        change = {"iat": iat - 1} if isinstance(iat, int) else {"jti": ctx.canary()}
        tampered = with_claims(sample.token, change)
        # One request per probe: worth trying every candidate (one handler may decode without verifying).
        for probe in await protected_probes(ctx, sample, limit=MAX_PROBE_CANDIDATES):
            ex = await accepted(ctx, probe, sample, tampered)
            if ex is not None:
                probe.verifies = False
                yield accepted_finding(ctx, sample, probe, ex, tampered,
                                       title=f"JWT signature not verified on {probe.ep.key}",
                                       summary=f"{sample.carrier.label()}: the {sample.role} token with claim "
                                               f"{next(iter(change))} changed and the old signature")
                break


async def jwks_public_keys(ctx: CheckContext) -> list[tuple[str | None, bytes, str]]:
    """(kid, PEM, where) of the public keys the target publishes (well-known JWKS/OIDC, JWKS-like paths)."""
    if "jwks" in ctx.memo:
        return list(ctx.memo["jwks"])
    urls = list(WELL_KNOWN_JWKS) + [ep.path for ep in ctx.surface.sorted()
                                    if ep.method == "GET" and _JWKS_PATH.search(ep.path) and "{" not in ep.path]
    keys: list[tuple[str | None, bytes, str]] = []
    fetched: set[str] = set()
    while urls and len(fetched) < MAX_JWKS_FETCHES:
        url = urls.pop(0)
        if url in fetched:
            continue
        fetched.add(url)
        ex = await ctx.send("GET", url, as_role="anonymous")
        doc = _json_body(ex) if _is_2xx(ex) else None
        if isinstance(doc, dict) and isinstance(doc.get("jwks_uri"), str):
            urls.insert(0, urljoin(ex.request.url, doc["jwks_uri"]))
        for kid, pem in public_pems_from_jwks(doc):
            if all(pem != known for _, known, _ in keys):
                keys.append((kid, pem, ex.request.url))
    ctx.memo["jwks"] = keys
    return list(keys)


@check(id="jwt.key-confusion", threat="jwt.key-confusion", scope="target")
async def key_confusion(ctx: CheckContext) -> AsyncIterator[Finding]:
    """RS/ES/PS tokens re-signed with HS256 keyed by the published public key PEM."""
    samples = [s for s in _by_carrier(role_tokens(ctx)) if s.decoded.alg[:2] in ("RS", "ES", "PS")]
    keys = await jwks_public_keys(ctx) if samples else []
    for sample in samples:
        kid = sample.decoded.header.get("kid")
        ordered = sorted(keys, key=lambda k: k[0] != kid)  # the token's own key first
        control = forge(sample.decoded.claims, {**sample.decoded.header, "alg": "HS256"}, alg="HS256",
                        key=ctx.canary(32).encode())
        forged = [(f"{where}#{key_kid or '?'}", resign_hs_with_public_key(sample.token, spelling))
                  for key_kid, pem, where in ordered for spelling in pem_spellings(pem)]
        for probe in await protected_probes(ctx, sample):
            if not await verifies_signature(ctx, probe, sample) or await accepted(ctx, probe, sample, control):
                continue  # the probe takes any HMAC: not a key-confusion proof
            for where, token in forged:
                ex = await accepted(ctx, probe, sample, token)
                if ex is not None:
                    yield accepted_finding(ctx, sample, probe, ex, token,
                                           title="JWT algorithm confusion: HS256 keyed with the public key "
                                                 f"accepted on {probe.ep.key}",
                                           summary=f"{sample.carrier.label()}: the {sample.role} token re-signed "
                                                   f"with HMAC-SHA256 keyed by the public key from {where}")
                    break
            break


@check(id="jwt.kid-injection", threat="jwt.kid-injection", scope="target")
async def kid_injection(ctx: CheckContext) -> AsyncIterator[Finding]:
    """`kid` values that steer a naive key lookup (file path, SQL) to a key Bastion knows."""
    variants = ctx.payloads.get("jwt_kid_injection")
    for sample in _by_carrier(role_tokens(ctx)):
        control = forge(sample.decoded.claims, {**sample.decoded.header, "alg": "HS256",
                                                "kid": f"bastion-{ctx.canary()}"}, alg="HS256",
                        key=ctx.canary(32).encode())
        forged = [(v.name, token) for v, token in kid_variants(sample.token, variants)]
        for probe in await protected_probes(ctx, sample):
            if not await verifies_signature(ctx, probe, sample) or await accepted(ctx, probe, sample, control):
                continue
            for name, token in forged:
                ex = await accepted(ctx, probe, sample, token)
                if ex is not None:
                    kid = decode_unverified(token).header["kid"]
                    yield accepted_finding(ctx, sample, probe, ex, token,
                                           title=f"JWT kid injection ({name}) accepted on {probe.ep.key}",
                                           summary=f"{sample.carrier.label()}: the {sample.role} token signed "
                                                   f"with a known key and kid {kid!r}")
                    return
            break


# --- claim tampering: privilege claims raised --------------------------------------------------------------

# Claims an app may read privileges from, and the raised value used when neither the token nor a more
# privileged role's token suggests one.
PRIVILEGE_CLAIMS: dict[str, Any] = {"role": "admin", "roles": ["admin"], "is_admin": True, "admin": True,
                                    "scope": "admin", "groups": ["admin"], "permissions": ["admin"]}
# Denied GET routes tried (the role's token sent once each), targets attacked, roles asked whether
# they may open a route, and public-key spellings used for key confusion: bounded.
MAX_ESCALATION_CANDIDATES = 40
MAX_ESCALATION_TARGETS = 10
MAX_OTHER_ROLES = 2
MAX_CONFUSION_KEYS = 2


@dataclass(frozen=True)
class Denial:
    """A GET route the role's genuine token is refused on (401/403)."""

    ep: EntryPoint
    spec: RequestSpec
    ex: Exchange


def _raise_value(name: str, current: Any, privileged: dict[str, Any]) -> Any:
    """The privileged value of claim `name`: a privileged role's value, else the current one raised."""
    if name in privileged and privileged[name] != current:
        return privileged[name]
    default = PRIVILEGE_CLAIMS[name]
    if isinstance(current, bool):
        return True
    if isinstance(current, list):
        return [*current, *(v for v in default if v not in current)]
    if isinstance(current, str) and name == "scope":
        return f"{current} {default}".strip()  # space-separated scopes: add one
    return default


def claim_raises(claims: dict[str, Any], privileged: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, claim changes): every privilege claim raised at once, then each one the token has alone."""
    present = [n for n in PRIVILEGE_CLAIMS if n in claims]
    everything = {n: _raise_value(n, claims.get(n), privileged) for n in PRIVILEGE_CLAIMS}
    return [("+".join(PRIVILEGE_CLAIMS), everything), *((n, {n: everything[n]}) for n in present)]


Forger = Callable[[dict[str, Any]], str]  # claim changes -> forged token


async def forging_routes(ctx: CheckContext, sample: TokenSample) -> list[tuple[str, Forger]]:
    """(label, changes -> token) for every way Bastion can put changed claims into a token."""
    token, decoded = sample.token, sample.decoded

    def unsigned(changes: dict[str, Any]) -> str:
        return forge({**decoded.claims, **changes}, {**decoded.header, "alg": "none"}, alg="none")

    routes: list[tuple[str, Forger]] = [
        ("old signature kept", lambda c: with_claims(token, c)),
        ("alg none", unsigned)]
    secret = _crack(ctx, sample.role, token)
    if secret is not None:
        routes.append(("re-signed with the cracked secret", lambda c: with_claims(token, c, key=secret)))
    if decoded.alg[:2] in ("RS", "ES", "PS"):
        kid = decoded.header.get("kid")
        keys = sorted(await jwks_public_keys(ctx), key=lambda k: k[0] != kid)
        for spelling in (pem_spellings(keys[0][1]) if keys else [])[:MAX_CONFUSION_KEYS]:
            routes.append(("HS256 keyed with the public key", _confused(token, spelling)))
    return routes


def _confused(token: str, pem: bytes) -> Forger:
    return lambda changes: with_claims(token, changes, key=pem, alg="HS256")


async def _allowed_to_another(ctx: CheckContext, sample: TokenSample, denial: Denial) -> bool:
    """Whether a role other than the sample's may open the route (policy, else a logged-in role's 2xx)."""
    if is_admin_path(denial.ep.path):
        return True
    allowed = allowed_roles(ctx, denial.ep)
    if allowed is not None:
        return any(r not in (sample.role, "owner", "anonymous") for r in allowed)
    others = [r for r in ctx.roles if r != sample.role][:MAX_OTHER_ROLES]
    for role in others:
        if _is_2xx(await ctx.send_spec(denial.spec, as_role=role)):
            return True
    return False


async def escalation_targets(ctx: CheckContext, sample: TokenSample) -> list[Denial]:
    """Routes refused to the sample's token that a more privileged caller may open (admin-looking first)."""
    plain = [(ep, build_request(ep)) for ep in ctx.surface.sorted()
             if ep.method == "GET" and not _UNSAFE_GET.search(ep.path)
             and not any(i.location == "path" for i in ep.inputs)]
    await protected_probes(ctx, sample)
    texts = _search(ctx, sample).texts  # the role's own pages seen while looking for probes
    for ep, inp in _path_candidates(ctx):
        ids = candidate_ids(ep, inp, texts)
        if ids:
            plain.append((ep, build_request(ep, inp, ids[0])))
    # Admin-looking routes first; among the refused, "forbidden" (the token was read, the role judged) first.
    plain.sort(key=lambda c: (not is_admin_path(c[0].path), c[0].path))
    denials: list[Denial] = []
    for ep, spec in plain[:MAX_ESCALATION_CANDIDATES]:
        ex = await send_token(ctx, spec, sample.carrier, sample.token)
        if ex.status in (401, 403):
            denials.append(Denial(ep, spec, ex))
    # A bearer/cookie token is read by API routes: JSON refusals (the token parsed, the role judged) first.
    denials.sort(key=lambda d: (not is_admin_path(d.ep.path), d.ex.status != 403,
                                "json" not in d.ex.content_type, d.ep.path))
    out: list[Denial] = []
    for denial in denials:
        if len(out) >= MAX_ESCALATION_TARGETS:
            break
        if await _allowed_to_another(ctx, sample, denial):
            out.append(denial)
    return out


def _opened(ex: Exchange, denial: Denial) -> bool:
    return _is_2xx(ex) and ex.text != denial.ex.text


async def _escalate(ctx: CheckContext, sample: TokenSample, denial: Denial, routes: list[tuple[str, Forger]],
                    raises: list[tuple[str, dict[str, Any]]]) -> tuple[str, str, Exchange, str] | None:
    """(claims label, token, exchange, forging route) of the first raised token opening the route."""
    for route, make in routes:
        for label, changes in raises:
            token = make(changes)
            ex = await send_token(ctx, denial.spec, sample.carrier, token)
            if not _opened(ex, denial):
                if ex.status == denial.ex.status:
                    break  # refused like the genuine token: the single claims will not do better
                continue  # the combination upset the app (4xx/5xx): each claim alone may still work
            # Control: the same forging route with the role's own claims must still be refused.
            if _opened(await send_token(ctx, denial.spec, sample.carrier, make({})), denial):
                return None  # the route takes any token of this kind: not a claim decision
            return (*await _narrowed(ctx, sample, denial, make, changes, label), route)
    return None


async def _narrowed(ctx: CheckContext, sample: TokenSample, denial: Denial, make: Forger, changes: dict[str, Any],
                    label: str) -> tuple[str, str, Exchange]:
    """The single claim that opens the route when one alone does (else the combination): (label, token, ex)."""
    token = make(changes)
    if len(changes) > 1:
        for name in PRIVILEGE_CLAIMS:
            single = make({name: changes[name]})
            alone = await send_token(ctx, denial.spec, sample.carrier, single)
            if _opened(alone, denial):
                return name, single, alone
    return label, token, await send_token(ctx, denial.spec, sample.carrier, token)


@check(id="jwt.claim-escalation", threat="jwt.claim-escalation", scope="target")
async def claim_escalation(ctx: CheckContext) -> AsyncIterator[Finding]:
    """A role's token with privilege claims raised (every forging route) opening routes it is refused."""
    admins = admin_roles(ctx)
    tokens = role_tokens(ctx)
    privileged: dict[str, Any] = {}
    for s in tokens:
        if s.role in admins:
            privileged.update({k: v for k, v in s.decoded.claims.items() if k in PRIVILEGE_CLAIMS})
    for sample in _by_carrier([s for s in tokens if s.role not in admins]):
        targets = await escalation_targets(ctx, sample)
        routes = await forging_routes(ctx, sample) if targets else []
        raises = claim_raises(sample.decoded.claims, privileged)
        for denial in targets:
            hit = await _escalate(ctx, sample, denial, routes, raises)
            if hit is None:
                continue
            claim, token, ex, route = hit
            changed = decode_unverified(token).claims
            shown = ", ".join(f"{n}={json.dumps(changed.get(n))}" for n in claim.split("+"))
            evidence = [*exchange_evidence(denial.ex, f"{sample.carrier.label()}: the genuine {sample.role} "
                                                      "token is refused"),
                        *exchange_evidence(ex, f"the same token with {shown} ({route}) is let in"),
                        _claims_note("forged token (decoded; signature not shown)", token)]
            finding = ctx.finding(title=f"JWT claim {claim!r} raised opens {denial.ep.key} (forged: {route})",
                                  confidence=Confidence.confirmed, evidence=evidence,
                                  proof=proof_from(ex, status_in(ex.status)), location=ctx.location(ep=denial.ep),
                                  url=ex.request.url)
            yield finding.model_copy(update={"role": sample.role})


# --- weak secret and expiry -------------------------------------------------------------------------------


def _crack(ctx: CheckContext, role: str, token: str) -> str | None:
    """The HMAC secret of an HS* token from the bounded dictionary (offline), remembered for masking."""
    try:
        if not decode_unverified(token).alg.upper().startswith("HS"):
            return None
    except MalformedJWT:
        return None
    secret = crack_hs(token, (str(s) for s in ctx.payloads.get("jwt_secrets")))
    if secret is not None and len(secret) >= MIN_SECRET_TO_MASK:
        _keep_secret(ctx, role, secret)
    return secret


def refresh_endpoints(ctx: CheckContext) -> list[tuple[EntryPoint, str, str]]:
    """(entry point, input location, field name) of refresh endpoints: POSTs reading a refresh-token field."""
    out: list[tuple[EntryPoint, str, str]] = []
    for ep in ctx.surface.sorted():
        if ep.method != "POST":
            continue
        for inp in ep.inputs:
            if inp.location in ("json", "form") and _REFRESH_FIELD.match(inp.name):
                out.append((ep, inp.location, inp.name))
                break
    return out


async def send_refresh(ctx: CheckContext, ep: EntryPoint, location: str, field_name: str, token: str) -> Exchange:
    body: dict[str, str] = {field_name: token}
    if ep.input(location, "grant_type") is not None:
        body["grant_type"] = "refresh_token"
    kwargs: dict[str, Any] = {"json": body} if location == "json" else {"data": body}
    return await ctx.send(ep.method, ep.path, as_role="anonymous", **kwargs)


def _issued_tokens(ex: Exchange) -> dict[str, str]:
    return _token_fields(_json_body(ex)) if _is_2xx(ex) else {}


def masked_secret(secret: str) -> str:
    """The secret as reports show it: its first and last character at most, and its length."""
    if len(secret) < 4:
        return f"{len(secret)} characters, withheld"
    return f"{secret[0]}{'*' * (len(secret) - 2)}{secret[-1]}, {len(secret)} characters"


def offline_secret_finding(ctx: CheckContext, sample: TokenSample, secret: str, title: str) -> Finding:
    """A confirmed finding without a probe: the role's token verifies with a dictionary secret."""
    cfg = ctx.role_configs.get(sample.role)
    login = getattr(cfg, "login", None)
    location = Location(method=login.method, path=login.path) if login is not None else ctx.location()
    evidence = [_claims_note(f"{sample.carrier.label()}: the {sample.role} token (decoded; signature not shown)",
                             sample.token),
                note("secret recovered offline",
                     f"the {sample.decoded.alg} signature of the {sample.role} token verifies with a secret from "
                     f"Bastion's weak-secret dictionary ({masked_secret(secret)}); anyone holding one token can "
                     "mint valid tokens for any user")]
    finding = ctx.finding(title=title, confidence=Confidence.confirmed, evidence=evidence, location=location)
    return finding.model_copy(update={"role": sample.role})


@check(id="jwt.weak-secret", threat="jwt.weak-secret", scope="target")
async def weak_secret(ctx: CheckContext) -> AsyncIterator[Finding]:
    """HS* tokens whose secret is in the bounded dictionary (the HMAC verifies); a forged token accepted adds proof."""
    reported: set[str] = set()  # secrets already shown to be weak: one finding per secret
    for sample in _by_carrier(role_tokens(ctx)):
        secret = _crack(ctx, sample.role, sample.token)
        if secret is None or secret in reported:
            continue
        reported.add(secret)
        forged = with_claims(sample.token, {"jti": ctx.canary()}, key=secret)
        title = f"JWT signed with a guessable secret ({sample.carrier.label()})"
        finding: Finding | None = None
        for probe in await protected_probes(ctx, sample):
            ex = await accepted(ctx, probe, sample, forged)
            if ex is not None:
                finding = accepted_finding(ctx, sample, probe, ex, forged, title=title,
                                           summary="a token with a new jti, signed with the secret recovered "
                                                   f"offline ({masked_secret(secret)}) from Bastion's "
                                                   "weak-secret dictionary")
                break
        # The HMAC verifying with a dictionary word is the proof: anyone can mint tokens, probe or not.
        yield finding or offline_secret_finding(ctx, sample, secret, title)
    wrote = False
    for replay in await login_replays(ctx):
        for path, token in replay.tokens.items():
            secret = _crack(ctx, replay.role, token) if looks_like_jwt(token) else None
            if secret is None or secret in reported:
                continue
            reported.add(secret)
            finding, did_write = await _prove_refresh_secret(ctx, replay, path, token, secret)
            wrote = wrote or did_write
            yield finding
            break
    if wrote:
        await ctx.reset()


async def _prove_refresh_secret(ctx: CheckContext, replay: LoginReplay, path: str, token: str,
                                secret: str) -> tuple[Finding, bool]:
    """Forge a refresh token with the cracked secret and redeem it; unproven = firm finding at the login."""
    login = ctx.role_configs[replay.role].login
    title = f"JWT `{path}` signed with a guessable secret (from {login.method} {login.path})"
    field_name = path.rsplit(".", 1)[-1]
    if _REFRESH_FIELD.match(field_name):
        for ep, location, name in refresh_endpoints(ctx):
            if not ctx.may_write(ep.method, ep.path):
                continue
            forged = with_claims(token, {"jti": ctx.canary(24)}, key=secret)
            ex = await send_refresh(ctx, ep, location, name, forged)
            issued = _issued_tokens(ex)
            _keep_secret(ctx, replay.role, *issued.values())
            if issued:
                evidence = [*exchange_evidence(ex, f"a {path} forged with the secret recovered offline (new jti) "
                                                   "was redeemed for new tokens"),
                            _claims_note("forged token (decoded; signature not shown)", forged)]
                finding = ctx.finding(title=title, confidence=Confidence.confirmed, evidence=evidence,
                                      proof=proof_from(ex, status_in(ex.status)), location=ctx.location(ep=ep))
                return finding.model_copy(update={"role": replay.role}), True
    evidence = [*exchange_evidence(replay.ex, f"{path} in the login response"),
                _claims_note(f"{path} (decoded)", token),
                note("secret recovered offline", "the HMAC secret is in Bastion's weak-secret dictionary "
                                                 "(value withheld); anyone can mint valid tokens")]
    finding = ctx.finding(title=title, confidence=Confidence.firm, evidence=evidence,
                          location=Location(method=login.method, path=login.path))
    return finding.model_copy(update={"role": replay.role}), False


@check(id="jwt.expiry", threat="jwt.expiry", scope="target")
async def expiry(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Accepted tokens without `exp`; with a cracked key, expired and not-yet-valid copies too."""
    for sample in _by_carrier(role_tokens(ctx)):
        probes = await protected_probes(ctx, sample)
        if not probes:
            continue
        if "exp" not in sample.decoded.claims:
            probe = probes[0]
            evidence = [*exchange_evidence(probe.genuine, f"{sample.carrier.label()}: the {sample.role} token has "
                                                          "no exp claim and is accepted"),
                        _claims_note("the token (decoded; signature not shown)", sample.token)]
            finding = ctx.finding(title=f"JWT without expiry accepted ({sample.carrier.label()})",
                                  confidence=Confidence.confirmed, evidence=evidence,
                                  proof=proof_from(probe.genuine, status_in(probe.genuine.status)),
                                  location=ctx.location(ep=probe.ep))
            yield finding.model_copy(update={"role": sample.role})
            continue
        secret = _crack(ctx, sample.role, sample.token)
        if secret is None:
            continue  # without the key an expired copy cannot be signed: nothing to prove
        copies = [("expired", expired_copy(sample.token, secret)),
                  ("not yet valid", not_yet_valid_copy(sample.token, secret))]
        hit = await first_accepted(ctx, sample, copies)
        if hit is not None:
            probe, ex, label, token = hit
            yield accepted_finding(ctx, sample, probe, ex, token,
                                   title=f"{label.capitalize()} JWT accepted on {probe.ep.key}",
                                   summary=f"{sample.carrier.label()}: a validly signed {label} copy of the "
                                           f"{sample.role} token")


# --- token in URL and refresh-token reuse -------------------------------------------------------------------


def _tokens_in_urls(ex: Exchange) -> list[tuple[str, str]]:
    """(where, parameter) for JWTs the response puts into URL query strings (redirects and links)."""
    found = []
    for hop in [*ex.history, ex]:
        for m in _TOKEN_IN_URL.finditer(hop.header("location") or ""):
            found.append((f"Location header of {hop.request.method} {hop.request.url}", m.group(1)))
        if hop.content_type in ("text/html", "application/json"):
            for m in _TOKEN_IN_URL.finditer(hop.text[:200_000]):
                if JWT_IN_TEXT.fullmatch(m.group(2)):
                    found.append((f"body of {hop.request.method} {hop.request.url}", m.group(1)))
    return found


@check(id="jwt.token-in-url", threat="jwt.token-in-url", scope="target")
async def token_in_url(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Tokens accepted in a query parameter, or put into URLs by the app's own redirects and links."""
    for sample in _by_carrier(role_tokens(ctx)):
        for probe in (await protected_probes(ctx, sample))[:2]:
            for param in QUERY_TOKEN_PARAMS:
                ex = await send_token(ctx, probe.spec, None, None, params={param: sample.token})
                if same_shape(ex, probe.genuine):
                    evidence = [*exchange_evidence(ex, f"the {sample.role} token sent only in the query "
                                                       f"parameter {param!r} was accepted"),
                                note("why it matters", "URLs end up in access logs, browser history, "
                                                       "proxies and Referer headers")]
                    finding = ctx.finding(title=f"Access token accepted in the query parameter {param!r}",
                                          confidence=Confidence.confirmed, evidence=evidence,
                                          proof=proof_from(ex, status_in(ex.status)),
                                          location=ctx.location(ep=probe.ep), url=ex.request.url)
                    yield finding.model_copy(update={"role": sample.role})
                    return
    exchanges = [r.ex for r in await login_replays(ctx)]
    for sample in _by_carrier(role_tokens(ctx)):
        exchanges += [p.genuine for p in await protected_probes(ctx, sample)]
    for ex in exchanges:
        for where, param in _tokens_in_urls(ex):
            yield ctx.finding(title=f"Token placed in a URL query parameter {param!r}",
                              confidence=Confidence.confirmed,
                              evidence=[*exchange_evidence(ex, f"a JWT in the {param} parameter of a URL in the "
                                                               f"{where}")],
                              location=Location(method=ex.request.method, path=_path_of(ex.request.url)))
            return


def _path_of(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path or "/"


@check(id="jwt.refresh-reuse", threat="jwt.refresh-reuse", scope="target")
async def refresh_reuse(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Refresh once (rotation), then redeem the spent refresh token again: accepted = replayable."""
    endpoints = [e for e in refresh_endpoints(ctx) if ctx.may_write(e[0].method, e[0].path)]
    replays = [r for r in await login_replays(ctx) if _refresh_value(r.tokens)] if endpoints else []
    if not replays:
        return
    finding = await _replay_spent_refresh(ctx, endpoints, replays)
    await ctx.reset()
    if finding is not None:
        yield finding


def _refresh_value(tokens: dict[str, str]) -> str | None:
    return next((v for p, v in tokens.items() if _REFRESH_FIELD.match(p.rsplit(".", 1)[-1])), None)


async def _replay_spent_refresh(ctx: CheckContext, endpoints: list[tuple[EntryPoint, str, str]],
                                replays: list[LoginReplay]) -> Finding | None:
    for replay in replays:
        old = _refresh_value(replay.tokens)
        if old is None:
            continue
        for ep, location, name in endpoints:
            first = await send_refresh(ctx, ep, location, name, old)
            issued = _issued_tokens(first)
            _keep_secret(ctx, replay.role, *issued.values())
            rotated = _refresh_value(issued)
            if rotated is None or rotated == old:
                continue  # not this token's refresh endpoint, or no rotation to get around
            second = await send_refresh(ctx, ep, location, name, old)
            again = _issued_tokens(second)
            _keep_secret(ctx, replay.role, *again.values())
            if not again:
                return None
            evidence = [*exchange_evidence(first, "first refresh: a new refresh token was issued"),
                        *exchange_evidence(second, "the spent refresh token redeemed again")]
            finding = ctx.finding(title=f"Spent refresh token accepted again on {ep.key}",
                                  confidence=Confidence.confirmed, evidence=evidence,
                                  proof=proof_from(second, status_in(second.status)), location=ctx.location(ep=ep))
            return finding.model_copy(update={"role": replay.role})
    return None


# --- expired / not-yet-valid tokens of Bastion's IdP double ------------------------------------------------

# How far past `exp` (and ahead of `nbf`) the minted tokens are: beyond any sane clock-skew leeway.
IDP_TOKEN_SKEW_S = 3600
IDP_PROBE_SUBJECT = "bastion-probe"


def _idp_samples(ctx: CheckContext) -> list[tuple[Any, TokenSample]]:
    """(IdP double, token) pairs: roles' tokens the double issued, else a token it issues for Bastion."""
    from bastion.resilience.wiring import doubles_for  # engine-side plumbing, imported only when used

    wired = doubles_for(ctx.target)
    out: list[tuple[Any, TokenSample]] = []
    for name, item in sorted(wired.deps.items()) if wired is not None else []:
        if item.kind != "oidc":
            continue
        idp = item.double
        own = [s for s in role_tokens(ctx) if s.decoded.claims.get("iss") == idp.issuer]
        if own:
            out += [(idp, s) for s in _by_carrier(own)]
            continue
        dep = ctx.config.dependencies.get(name) if ctx.config is not None else None
        token = idp.issue(IDP_PROBE_SUBJECT, audience=getattr(dep, "audience", None) or None)
        out.append((idp, TokenSample("anonymous", token, Carrier("header", "Authorization", "Bearer "),
                                     decode_unverified(token))))
    return out


def _idp_copies(idp: Any, sample: TokenSample) -> list[tuple[str, str]]:
    """The sample's claims re-issued by the IdP's current key: once expired, once not yet valid."""
    claims = {k: v for k, v in sample.decoded.claims.items() if k not in ("sub", "jti")}
    sub = str(sample.decoded.claims.get("sub", IDP_PROBE_SUBJECT))
    now = int(idp.now())
    exp, iat = claims.get("exp"), claims.get("iat")
    lifetime = int(exp - iat) if isinstance(exp, int | float) and isinstance(iat, int | float) else 300
    expired = idp.issue(sub, **{**claims, "iat": now - lifetime - IDP_TOKEN_SKEW_S,
                                "nbf": now - lifetime - IDP_TOKEN_SKEW_S, "exp": now - IDP_TOKEN_SKEW_S})
    early = idp.issue(sub, **{**claims, "iat": now, "nbf": now + IDP_TOKEN_SKEW_S,
                              "exp": now + IDP_TOKEN_SKEW_S + lifetime})
    return [("expired", expired), ("not yet valid", early)]


def _without_key_ids(finding: Finding, idp: Any) -> Finding:
    """The IdP double's key ids (hashes of fresh random keys) named instead: equal runs, equal evidence."""
    kids = [str(k["kid"]) for k in idp.jwks()["keys"] if k.get("kid")]

    def clean(text: str) -> str:
        for kid in kids:
            text = text.replace(kid, "<idp key id>")
        return text

    return finding.model_copy(update={"evidence": [e.model_copy(update={"content": clean(e.content)})
                                                   for e in finding.evidence]})


@check(id="jwt.expired-accepted-idp", threat="jwt.expired-accepted-idp", scope="target", shard="check",
       needs=("oidc",))
async def expired_idp_token(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Tokens signed by Bastion's IdP double with `exp` passed (or `nbf` ahead), on IdP-protected entry points."""
    from bastion.resilience.probing import stable  # the doubles' ephemeral addresses named instead
    from bastion.resilience.wiring import doubles_for

    samples = _idp_samples(ctx)
    if not samples:
        ctx.skip("no identity provider wired to Bastion's OIDC double (dependencies: kind oidc, double: true)")
        return
    for idp, sample in samples:
        for probe in await protected_probes(ctx, sample):
            if not await verifies_signature(ctx, probe, sample):
                continue  # accepts anything: jwt.signature-unchecked reports it
            for label, token in _idp_copies(idp, sample):
                ex = await accepted(ctx, probe, sample, token)
                if ex is None:
                    continue
                who = "a token it issued for Bastion" if sample.role == "anonymous" else f"the {sample.role} token"
                finding = accepted_finding(
                    ctx, sample, probe, ex, token,
                    title=f"{label.capitalize()} identity-provider token accepted on {probe.ep.key}",
                    summary=f"{who}, re-issued by the IdP with "
                            + (f"exp {IDP_TOKEN_SKEW_S} s in the past" if label == "expired"
                               else f"nbf {IDP_TOKEN_SKEW_S} s in the future") + " and correctly signed")
                finding = _without_key_ids(stable(finding, doubles_for(ctx.target)), idp)
                yield finding.model_copy(update={"role": None}) if sample.role == "anonymous" else finding
                break
