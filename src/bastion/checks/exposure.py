"""Excessive data exposure: JSON responses carrying secret fields or other users' personal data.

Field names are classified by the threat model's `data_classes` (a class named secret, secrets or
credentials is secret; every other class is personal data), or by a default list when none are
declared. A secret-class field with a value is reported wherever it appears. Personal data is
expected on the role's own profile, so it is reported only when it belongs to someone else: the
value is another role's own (its profile page shows it), or two non-admin roles both see it —
and visitors without an account do not (public contact addresses are not personal data).

`authz.undeclared-field` compares JSON responses with the OpenAPI response schema declared for their
status: a field the schema does not declare is reported when the schema closes the object
(`additionalProperties: false`), or when the field's name looks sensitive or its value is personal data.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.dedup import merge_roles
from bastion.findings.evidence import exchange_evidence, note
from bastion.findings.model import Confidence, Finding, Severity
from bastion.findings.redact import Redactor
from bastion.identity.ownership import (
    ANONYMOUS,
    UNSAFE_PATH,
    Page,
    admin_roles,
    candidate_ids,
    json_body,
    page_texts,
    path_param,
    role_pages,
    self_views,
)
from bastion.surface.model import EntryPoint
from bastion.surface.requests import RequestSpec, build_request
from bastion.target.exchange import Exchange

SECRET_CLASSES = frozenset({"secret", "secrets", "credential", "credentials"})
# A value like "****" or "" shows the field exists, not its content.
_MASKED = re.compile(r"^[*•xX#.\-\s]*$")
MIN_PERSONAL_LEN = 3


@dataclass(frozen=True)
class Leaf:
    """One JSON field of a response: its dotted key, its leaf name and its value."""

    key: str
    name: str
    value: str


def _norm(name: str) -> str:
    return re.sub(r"[_\-\s]", "", name).lower()


def _leaves(node: Any, prefix: str = "") -> Iterator[Leaf]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list):
        for item in node:
            yield from _leaves(item, prefix + "[]")
    elif isinstance(node, (str, int)) and not isinstance(node, bool) and prefix:
        name = re.sub(r"\[\]$", "", prefix.rsplit(".", 1)[-1])
        yield Leaf(prefix, name, str(node))


def _classes(ctx: CheckContext) -> dict[str, str]:
    """Normalised field name -> data class (declared classes, else the defaults)."""
    declared: list[tuple[str, list[str]]] = list(ctx.data_classes.items()) if ctx.data_classes else \
        [(e["class"], e["fields"]) for e in ctx.payloads.get("exposure_default_classes")]
    return {_norm(name): cls for cls, names in declared for name in names}


@check(id="authz.data-exposure", threat="authz.data-exposure", scope="target", cost=140.0)
async def data_exposure(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Read every JSON page as every role; report secret fields and other users' personal data."""
    classes = _classes(ctx)
    if not classes:
        return
    pages = await role_pages(ctx)
    foreign = _foreign_judge(ctx, pages, classes)
    findings: list[Finding] = []
    for role, items in pages.items():
        own = ctx.roles[role].secret_values() if role in ctx.roles else set()
        for page in items:
            leaves = list(_classified(page, classes))
            # The role's own session token echoed back is not a leak.
            secrets = [leaf for leaf, cls in leaves if cls in SECRET_CLASSES and leaf.value not in own]
            personal = [leaf for leaf, cls in leaves if cls not in SECRET_CLASSES and foreign(leaf.value, role)]
            if secrets or personal:
                findings.append(_finding(ctx, page, role, secrets, personal))
    for finding in merge_roles(findings):
        yield finding


def _classified(page: Page, classes: dict[str, str]) -> Iterator[tuple[Leaf, str]]:
    for leaf in _leaves(page.json):
        cls = classes.get(_norm(leaf.name))
        if cls is not None and not _MASKED.match(leaf.value):
            yield leaf, cls


def _foreign_judge(ctx: CheckContext, pages: dict[str, list[Page]],
                   classes: dict[str, str]) -> Callable[[str, str], bool]:
    """A predicate: does this personal value, seen by this role, belong to someone else?"""
    admins = admin_roles(ctx)
    users = [r for r in ctx.roles if r not in admins]
    public = {leaf.value for page in pages.get(ANONYMOUS, []) for leaf, _ in _classified(page, classes)}
    seen_by: dict[str, set[str]] = {}
    for role in users:
        for page in pages.get(role, []):
            for leaf, _ in _classified(page, classes):
                seen_by.setdefault(leaf.value, set()).add(role)
    owner_of = {leaf.value: role for role, view in self_views(pages, list(ctx.roles)).items()
                for leaf in _leaves(view.data) if _norm(leaf.name) in classes}
    owner_of.update(_own_values(ctx, pages, classes))

    def foreign(value: str, role: str) -> bool:
        # Administrators see users' data by design; public values (a support address) are not personal.
        if role not in users or value in public or len(value) < MIN_PERSONAL_LEN:
            return False
        owner = owner_of.get(value)
        if owner is not None:
            return owner != role
        return len(seen_by.get(value, ())) > 1

    return foreign


def _finding(ctx: CheckContext, page: Page, role: str, secrets: list[Leaf], personal: list[Leaf]) -> Finding:
    ep = page.ep
    parts = []
    if secrets:
        parts.append(f"secret field(s) {', '.join(sorted({leaf.name for leaf in secrets}))}")
    if personal:
        parts.append(f"{len(personal)} personal value(s) of other users "
                     f"({', '.join(sorted({leaf.name for leaf in personal}))})")
    summary = f"{ep.method} {ep.path} as {role}: " + " and ".join(parts)
    what = "Secret fields" if secrets else "Other users' personal data"
    marker = f'"{secrets[0].name}"' if secrets else personal[0].value
    finding = ctx.finding(
        title=f"{what} returned by {ep.method} {ep.path}",
        confidence=Confidence.confirmed if secrets else Confidence.firm,
        severity=Severity.high if secrets else Severity.medium,
        evidence=exchange_evidence(page.exchange, summary, marker=marker),
        location=ctx.location(ep=ep)).model_copy(update={"role": role})
    # The leaked secrets are the target's: the evidence names the fields, never their content.
    return Redactor(leaf.value for leaf in secrets if len(leaf.value) >= MIN_PERSONAL_LEN).finding(finding)


def _own_values(ctx: CheckContext, pages: dict[str, list[Page]], classes: dict[str, str]) -> dict[str, str]:
    """Personal values a page shows each role as its own: one value per role, a different one for each."""
    per_page: dict[tuple[str, str], dict[str, set[str]]] = {}
    for role in ctx.roles:
        for page in pages.get(role, []):
            for leaf, _ in _classified(page, classes):
                per_page.setdefault((page.ep.key, leaf.key), {}).setdefault(role, set()).add(leaf.value)
    owners: dict[str, str] = {}
    for by_role in per_page.values():
        singles = {role: next(iter(values)) for role, values in by_role.items() if len(values) == 1}
        if len(singles) == len(by_role) >= 2 and len(set(singles.values())) == len(singles):
            owners.update({value: role for role, value in singles.items()})
    return owners


# --- fields the OpenAPI response schema does not declare ------------------------------------------------

# Undeclared fields under a schema that does not close its objects (no `additionalProperties: false`) are
# reported only when their name or value looks sensitive: APIs often return harmless extras.
SENSITIVE_NAME_TOKENS = frozenset({
    "password", "passwd", "pwd", "passphrase", "hash", "hashed", "secret", "token", "key", "apikey", "ssn",
    "salt", "internal", "role", "roles", "admin", "superuser", "staff", "permission", "permissions", "otp",
    "totp", "mfa", "credential", "credentials", "private", "pin", "cvv", "seed"})
# Words that make a name harmless even with a sensitive token in it (a public key, a token's type).
HARMLESS_NAME_TOKENS = frozenset({"public", "type", "count", "expires", "expiry", "url"})
MAX_UNDECLARED_DEPTH = 12
MAX_ARRAY_ITEMS = 20  # items of one array compared with its item schema
MAX_UNDECLARED_FIELDS = 20  # fields listed per response
MAX_IDS_PER_ROLE = 2  # objects of a path-parameter entry point read per role
_TOKEN_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_PATH_TEMPLATE_PARAM = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True)
class Undeclared:
    """A field of a response body that the response schema does not declare."""

    path: str  # items[].password_hash
    name: str
    value: Any
    closed: bool  # the enclosing object schema says additionalProperties: false


@dataclass
class _ObjectView:
    """What an object schema declares: its properties, whether it is closed, and the schema of extra keys."""

    properties: dict[str, dict[str, Any]]
    closed: bool
    extra: dict[str, Any] | None  # additionalProperties as a schema
    open: bool  # declares nothing about its keys (no properties), or allows any extra key


def _object_view(schema: dict[str, Any], depth: int = 0) -> _ObjectView:
    """Properties of an object schema with allOf/oneOf/anyOf members merged in (the union, leniently)."""
    view = _ObjectView(properties={}, closed=schema.get("additionalProperties") is False, extra=None, open=False)
    extra = schema.get("additionalProperties")
    if extra is True:
        view.open = True
    elif isinstance(extra, dict):
        view.extra = extra
    view.properties.update({k: v for k, v in (schema.get("properties") or {}).items() if isinstance(v, dict)})
    members = [m for kw in ("allOf", "oneOf", "anyOf") for m in schema.get(kw) or [] if isinstance(m, dict)]
    for member in members if depth < MAX_UNDECLARED_DEPTH else []:
        part = _object_view(member, depth + 1)
        for name, child in part.properties.items():
            view.properties.setdefault(name, child)
        view.open = view.open or part.open
        view.extra = view.extra or part.extra
    if not view.properties and not view.closed and view.extra is None:
        view.open = True  # `{type: object}` or a schema cut at a cycle: a free-form object
    return view


def _items_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(schema.get("items"), dict):
        return dict(schema["items"])
    for keyword in ("allOf", "oneOf", "anyOf"):
        for member in schema.get(keyword) or []:
            if isinstance(member, dict) and isinstance(member.get("items"), dict):
                return dict(member["items"])
    return None


def undeclared_fields(body: Any, schema: dict[str, Any]) -> list[Undeclared]:
    """Fields of `body` (nested objects and array items included, within bounds) that `schema` does not declare."""
    out: list[Undeclared] = []
    _walk(body, schema, "", 0, out)
    return out


def _walk(value: Any, schema: dict[str, Any], path: str, depth: int, out: list[Undeclared]) -> None:
    if depth > MAX_UNDECLARED_DEPTH or len(out) >= MAX_UNDECLARED_FIELDS:
        return
    if isinstance(value, list):
        items = _items_schema(schema)
        if items is not None:
            for item in value[:MAX_ARRAY_ITEMS]:
                _walk(item, items, path + "[]", depth + 1, out)
        return
    if not isinstance(value, dict):
        return
    view = _object_view(schema)
    for key, child in value.items():
        child_path = f"{path}.{key}" if path else str(key)
        declared = view.properties.get(str(key))
        if declared is not None:
            _walk(child, declared, child_path, depth + 1, out)
        elif view.extra is not None:
            _walk(child, view.extra, child_path, depth + 1, out)
        elif not view.open and len(out) < MAX_UNDECLARED_FIELDS:
            out.append(Undeclared(child_path, str(key), child, view.closed))


def sensitive_name(name: str, classes: dict[str, str]) -> bool:
    """A field name that says it holds a secret, a credential, a privilege or a declared data class."""
    if _norm(name) in classes:
        return True
    tokens = {t.lower() for t in _TOKEN_SPLIT.split(name) if t}
    tokens |= {"admin" for t in tokens if t.startswith("is") and t.endswith("admin")}
    return bool(tokens & SENSITIVE_NAME_TOKENS) and not tokens & HARMLESS_NAME_TOKENS


def _pii_kind(value: Any) -> str | None:
    from bastion.privacy.detectors import find_pii  # imported here: only JSON pages with extras need it

    if not isinstance(value, str):
        return None
    matches = find_pii(value[:2000])
    return matches[0].kind if matches else None


def _shown(value: Any) -> str:
    """A value as evidence: its type and length, never its content."""
    if isinstance(value, str):
        return f"string of {len(value)} characters"
    if isinstance(value, dict | list):
        return f"{type(value).__name__} of {len(value)} entries"
    return type(value).__name__


def _exposed(field_: Undeclared, classes: dict[str, str], own: set[str]) -> str | None:
    """Why an undeclared field is a finding (or None): schema closed, sensitive name, personal-data value."""
    if field_.value is None or (isinstance(field_.value, str) and _MASKED.match(field_.value)):
        return None  # the key is there without content
    if isinstance(field_.value, str) and field_.value in own:
        return None  # the role's own session token echoed back
    if field_.closed:
        return "the schema closes the object (additionalProperties: false)"
    if sensitive_name(field_.name, classes):
        return "its name marks it as sensitive"
    kind = _pii_kind(field_.value)
    return f"its value is personal data ({kind})" if kind else None


def _template_key(method: str, path: str) -> tuple[str, str]:
    return method.upper(), _PATH_TEMPLATE_PARAM.sub("{}", path)


async def _schemas_for(ctx: CheckContext, ep: EntryPoint) -> dict[str, dict[str, Any]]:
    """The entry point's declared response schemas: from the surface, else from a document the target serves."""
    if ep.response_schemas:
        return ep.response_schemas
    lock = ctx.memo.setdefault("served-schemas-lock", asyncio.Lock())
    async with lock:
        if "served-schemas" not in ctx.memo:
            ctx.memo["served-schemas"] = await _served_schemas(ctx)
    served: dict[tuple[str, str], dict[str, dict[str, Any]]] = ctx.memo["served-schemas"]
    return served.get(_template_key(ep.method, ep.path), {})


async def _served_schemas(ctx: CheckContext) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    from bastion.errors import BastionError
    from bastion.fuzz.contract import document_candidates, load_local, parse_served
    from bastion.surface.openapi import surface_from_document

    files, served = document_candidates(ctx.surface)
    docs = [d for d in (load_local(f) for f in files) if d is not None]
    for path in served:
        doc = parse_served(await ctx.send("GET", path, as_role=ANONYMOUS))
        if doc is not None:
            docs.append(doc)
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for doc in docs:
        try:
            eps = surface_from_document(doc).entry_points
        except BastionError:
            continue
        for doc_ep in eps:
            if doc_ep.response_schemas:
                out.setdefault(_template_key(doc_ep.method, doc_ep.path), doc_ep.response_schemas)
    return out


def _schema_for_status(schemas: dict[str, dict[str, Any]], status: int) -> dict[str, Any] | None:
    code = str(status)
    for candidate in (code, f"{code[0]}XX", f"{code[0]}xx", "default"):
        if candidate in schemas:
            return schemas[candidate]
    return None


async def _requests_for(ctx: CheckContext, ep: EntryPoint, role: str) -> list[RequestSpec]:
    """Requests reading `ep` as `role`: a path parameter takes ids the role saw in its own pages."""
    param = path_param(ep)
    if param is None:
        return [build_request(ep)]
    texts = page_texts(await role_pages(ctx)).get(role, [])
    ids = candidate_ids(ep, param, texts)[:MAX_IDS_PER_ROLE]
    return [build_request(ep, param, i) for i in ids] or [build_request(ep)]


@check(id="authz.undeclared-field", threat="authz.undeclared-field", scope="entry", methods=("GET",),
       cost=2.0)
async def undeclared_field(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Read each documented GET entry point as every role; report sensitive fields its response schema lacks."""
    ep = ctx.ep
    assert ep is not None
    if UNSAFE_PATH.search(ep.path):
        return
    schemas = await _schemas_for(ctx, ep)
    if not any(code.startswith("2") or code == "default" for code in schemas):
        ctx.skip("no declared JSON response schema")
        return
    classes = _classes(ctx)
    findings: list[Finding] = []
    for role in [ANONYMOUS, *ctx.roles]:
        own = ctx.roles[role].secret_values() if role in ctx.roles else set()
        for spec in await _requests_for(ctx, ep, role):
            ex = await ctx.send_spec(spec, as_role=role)
            body, schema = json_body(ex), _schema_for_status(schemas, ex.status)
            if body is None or schema is None:
                continue
            exposed = [(f, why) for f in undeclared_fields(body, schema)
                       if (why := _exposed(f, classes, own)) is not None]
            if exposed:
                findings.append(_undeclared_finding(ctx, ep, ex, role, exposed))
                break  # one object per role is proof enough
    for finding in merge_roles(findings):
        yield finding


def _undeclared_finding(ctx: CheckContext, ep: EntryPoint, ex: Exchange, role: str,
                        exposed: list[tuple[Undeclared, str]]) -> Finding:
    lines = [f"{f.path} ({_shown(f.value)}): {why}" for f, why in exposed]
    names = ", ".join(sorted({f.name for f, _ in exposed}))
    summary = (f"{ep.method} {ep.path} as {role} answered {ex.status} with field(s) its OpenAPI response "
               f"schema does not declare: {names}")
    evidence = [*exchange_evidence(ex, summary, marker=f'"{exposed[0][0].name}"'),
                note("undeclared fields", "\n".join(lines))]
    finding = ctx.finding(title=f"Undeclared field(s) {names} returned by {ep.method} {ep.path}",
                          evidence=evidence, location=ctx.location(ep=ep)).model_copy(update={"role": role})
    # The values are the target's data: evidence names the fields, never their content. A value that is a
    # role's name (`"role": "admin"`) stays: the report names the roles anyway.
    values = [f.value for f, _ in exposed if isinstance(f.value, str) and len(f.value) >= MIN_PERSONAL_LEN
              and f.value not in ctx.roles]
    return Redactor(values).finding(finding)
