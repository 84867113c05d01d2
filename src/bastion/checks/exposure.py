"""Excessive data exposure: JSON responses carrying secret fields or other users' personal data.

Field names are classified by the threat model's `data_classes` (a class named secret, secrets or
credentials is secret; every other class is personal data), or by a default list when none are
declared. A secret-class field with a value is reported wherever it appears. Personal data is
expected on the role's own profile, so it is reported only when it belongs to someone else: the
value is another role's own (its profile page shows it), or two non-admin roles both see it —
and visitors without an account do not (public contact addresses are not personal data).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.dedup import merge_roles
from bastion.findings.evidence import exchange_evidence
from bastion.findings.model import Confidence, Finding, Severity
from bastion.findings.redact import Redactor
from bastion.identity.ownership import ANONYMOUS, Page, admin_roles, role_pages, self_views

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
