"""Personal data in exports (masking rules) and retention: data past its retention really gone after the purge.

privacy.pii-in-export: export/download entry points found in the surface (GET, no path parameters,
a path word like export/download or an answer that is an attachment or CSV) are read as every role
(with `format=csv` too when the entry point takes a format). Full card numbers are always reported
(PCI DSS 3.4); the model's `masking.exports` adds data classes or detector kinds (email, phone, iban,
national ids). Values are validated (Luhn, mod-97, check keys) and only ever shown masked.

privacy.retention: for each `retention:` rule with a `seed` hook, records older than the retention are
stored through the hook, the purge runs (hook or endpoint), then every store the rule lists and every
export entry point is read as every role; a seeded marker still there names where the data survived.
Personal data in logs is privacy.secrets-in-logs (the log sensor); other users' personal data in
responses is authz.data-exposure.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import body_matches, note, proof_from, request_evidence
from bastion.findings.model import Confidence, Finding, Location
from bastion.findings.redact import Redactor
from bastion.privacy.detectors import PiiMatch, find_pii, resolve_kinds
from bastion.privacy.hooks import as_text, call_entry, call_hook, entry
from bastion.surface.model import EntryPoint
from bastion.surface.requests import build_request
from bastion.target.exchange import Exchange

_EXPORT_WORD = re.compile(r"(?i)(?:^|[/_.-])(?:export|exports|download|downloads|dump|csv|xlsx?)(?:$|[/_.-])")
_FORMAT_INPUT = re.compile(r"(?i)^(?:format|fmt|output|export_format|type)$")
_UNSAFE_PATH = re.compile(r"(?i)logout|signout|sign-out|delete|purge|reset|revoke")
# Kinds always reported in exports, whatever the model says: a full card number is never needed there.
ALWAYS_MASKED = frozenset({"card_number"})
MAX_EXPORT_ENDPOINTS = 20
# Shapes for the reproduction's proof: it matches the kind, not the value (which must not be written down).
_PROOF_SHAPE = {"card_number": r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)", "email": r"[\w.+-]+@[\w-]+\.[\w.-]+",
                "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}"}


@dataclass(frozen=True)
class ExportRead:
    """One export read as one role: the entry point, the role, the exchange."""

    ep: EntryPoint
    role: str | None
    ex: Exchange


def _is_export_candidate(ep: EntryPoint) -> bool:
    if ep.method != "GET" or "{" in ep.path or _UNSAFE_PATH.search(ep.path):
        return False
    return bool(_EXPORT_WORD.search(ep.path)) or any("csv" in p or "spreadsheet" in p for p in ep.produces)


def _is_export(ep: EntryPoint, ex: Exchange) -> bool:
    disposition = (ex.header("content-disposition") or "").lower()
    ctype = (ex.header("content-type") or "").lower()
    return 200 <= ex.status < 300 and bool(ex.body) and (
        "attachment" in disposition or "csv" in ctype or bool(_EXPORT_WORD.search(ep.path)))


def _export_endpoints(ctx: CheckContext) -> list[EntryPoint]:
    return [ep for ep in ctx.surface.sorted() if _is_export_candidate(ep)][:MAX_EXPORT_ENDPOINTS]


async def _read_exports(ctx: CheckContext) -> list[ExportRead]:
    """Every export candidate read as every role (and anonymous), with a CSV variant where it has a format."""
    reads: list[ExportRead] = []
    roles: list[str | None] = [None, *ctx.roles]
    for ep in _export_endpoints(ctx):
        fmt = next((i for i in ep.inputs if i.location == "query" and _FORMAT_INPUT.match(i.name)), None)
        specs = [build_request(ep)] + ([build_request(ep, fmt, "csv")] if fmt is not None else [])
        for role in roles:
            for spec in specs:
                ex = await ctx.send_spec(spec, as_role=role)
                if _is_export(ep, ex):
                    reads.append(ExportRead(ep, role, ex))
    return reads


def _masked_kinds(ctx: CheckContext) -> set[str]:
    masking = getattr(ctx.config, "masking", None)
    names: list[str] = list(masking.exports) if masking is not None else []
    expanded = [field for name in names for field in ctx.data_classes.get(name, [name])]
    return set(ALWAYS_MASKED) | resolve_kinds(expanded)


@check(id="privacy.pii-in-export", threat="privacy.pii-in-export", scope="target")
async def pii_in_export(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Exports found in the surface, read as every role: unmasked card numbers and model-masked data."""
    kinds = _masked_kinds(ctx)
    seen: set[str] = set()
    for read in await _read_exports(ctx):
        if read.ep.key in seen:
            continue
        matches = find_pii(read.ex.text, kinds)
        if matches:
            seen.add(read.ep.key)
            yield _export_finding(ctx, read, matches)


def _export_finding(ctx: CheckContext, read: ExportRead, matches: list[PiiMatch]) -> Finding:
    found = sorted({m.kind for m in matches})
    masked_text = Redactor([m.value for m in matches]).text(read.ex.text[:600])
    listing = "\n".join(f"{m.kind}: {m.masked}" for m in matches[:10])
    shape = next((_PROOF_SHAPE[k] for k in found if k in _PROOF_SHAPE), None)
    proof = proof_from(read.ex, body_matches(shape)) if shape else None
    f = ctx.finding(title=f"Unmasked {', '.join(k.replace('_', ' ') for k in found)} in export {read.ep.key}",
                    confidence=Confidence.confirmed, location=ctx.location(ep=read.ep), proof=proof,
                    evidence=[request_evidence(read.ex, "export request"),
                              note(f"{len(matches)} unmasked value(s), shown masked", listing),
                              note("export excerpt (values masked)", masked_text)])
    return f.model_copy(update={"role": read.role})


# --- retention -----------------------------------------------------------------------------------------


async def _store_texts(ctx: CheckContext, stores: Iterable[str]) -> list[tuple[str, str | None, str]]:
    """(where, role, text) for every listed store and every export, read as every role."""
    out: list[tuple[str, str | None, str]] = []
    for spec in stores:
        where = entry(spec)
        if where is None:
            out.append((spec, None, as_text(await call_hook(ctx, spec))))
            continue
        for role in [None, *ctx.roles]:
            ex = await ctx.send(where[0], where[1], as_role=role)
            if 200 <= ex.status < 300:
                out.append((spec, role, ex.text))
    out += [(read.ep.key, read.role, read.ex.text) for read in await _read_exports(ctx)]
    return out


@check(id="privacy.retention", threat="privacy.retention", scope="target")
async def retention(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Seed expired records, run the purge, look for them in every store and export."""
    rules = getattr(ctx.config, "retention", None) or {}
    if not rules:
        ctx.skip("the model declares no retention rules (retention:)")
        return
    if not ctx.target.in_process:
        ctx.skip("seeding expired records needs an in-process target and a `seed` hook")
        return
    findings: list[Finding] = []
    try:
        for name, rule in sorted(rules.items()):
            findings += await _check_rule(ctx, name, rule)
    finally:
        await ctx.reset()
    for f in findings:
        yield f


async def _check_rule(ctx: CheckContext, name: str, rule: object) -> list[Finding]:
    seed, purge = getattr(rule, "seed", None), getattr(rule, "purge", "")
    if seed is None or entry(seed) is not None:
        ctx.skip(f"retention.{name}: no `seed` hook ('module:function') to store expired records")
        return []
    purge_entry = entry(purge)
    if purge_entry is not None and not ctx.may_write(*purge_entry):
        ctx.skip(f"retention.{name}: writes not allowed ({purge})")
        return []
    markers = [m for m in (str(v) for v in (await call_hook(ctx, seed, rule.days) or [])) if len(m) >= 6]  # type: ignore[attr-defined]
    if not markers:
        return []
    if purge_entry is None:
        await call_hook(ctx, purge)
    elif await call_entry(ctx, purge, getattr(rule, "role", None)) is None:
        ctx.skip(f"retention.{name}: the purge {purge} answered no role with 2xx")
        return []
    survivors: dict[str, set[str | None]] = {}
    for where, role, text in await _store_texts(ctx, getattr(rule, "stores", [])):
        if any(m in text for m in markers):
            survivors.setdefault(where, set()).add(role)
    return [ctx.finding(
        title=f"Data past its retention ({name}, {rule.days} days) survives the purge in {where}",  # type: ignore[attr-defined]
        confidence=Confidence.confirmed,
        location=_store_location(where),
        evidence=[note("expired records stored through the seed hook", f"{seed}: {len(markers)} record(s)"),
                  note("purge run", purge),
                  note("still returned by", f"{where} as {', '.join(sorted(r or 'anonymous' for r in roles))}")])
        for where, roles in sorted(survivors.items())]


def _store_location(where: str) -> Location:
    """An entry point (`GET /path`) or a hook/file name, as a finding location."""
    parsed = entry(where)
    return Location(method=parsed[0], path=parsed[1]) if parsed else Location(file=where)
