"""Cross-site scripting: reflected (per input) and stored (submit everywhere, look everywhere else).

Success is decided by html5lib, which parses like a browser: a payload counts only when it turns
into an element named after the probe's canary, an `on<canary>` event-handler attribute, a
`javascript:` URL carrying the canary, or a statement outside any string inside an executable
`<script>`. An escaped reflection, a reflection in a JSON or text/plain response, or inside a
`<textarea>` is never a finding.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import html5lib

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import body_contains, body_matches, exchange_evidence, note, proof_from
from bastion.findings.model import Confidence, Finding, ProofCondition
from bastion.payloads.corpus import render
from bastion.surface.model import EntryPoint, Input
from bastion.surface.requests import build_request
from bastion.target.exchange import Exchange

# html5lib is pure Python: parsing a huge page costs seconds, and reflections beyond this are rare.
MAX_PARSE_CHARS = 1_000_000
MAX_REFLECTED_PAYLOADS = 10
MAX_STORED_INPUTS = 60
MAX_STORED_PAGES = 100

URL_ATTRS = frozenset({"href", "src", "action", "formaction", "data", "xlink:href", "poster", "background"})
RAW_TEXT_TAGS = {"script": "script", "style": "style", "textarea": "rcdata", "title": "rcdata",
                 "xmp": "rcdata", "noembed": "rcdata", "noframes": "rcdata", "iframe": "rcdata",
                 "plaintext": "rcdata"}
JS_TYPES = frozenset({"", "text/javascript", "application/javascript", "module", "text/ecmascript",
                      "application/ecmascript",
                      "text/jscript", "text/livescript", "application/x-javascript"})
CONTEXT_LABELS = {"html": "HTML text", "attribute": "HTML attribute", "url": "URL attribute",
                  "script": "script", "style": "style", "rcdata": "raw-text element",
                  "comment": "HTML comment"}
# Words in a GET path that suggest the request changes state: never fetched as a "page".
UNSAFE_PAGE_WORDS = ("logout", "signout", "sign-out", "log-out", "delete", "remove", "destroy")

# MIME sniffing (WHATWG): a body with no Content-Type that starts with one of these (followed by a
# space or `>`) is rendered as HTML by browsers.
_SNIFF_HTML = ("<!doctype html", "<html", "<head", "<script", "<iframe", "<h1", "<div", "<font", "<table",
               "<a", "<style", "<title", "<b", "<body", "<br", "<p", "<!--")
_NO_CONTENT = {204, 205, 304}
_REDIRECTS = {301, 302, 303, 307, 308}


def renders_as_html(ex: Exchange) -> bool:
    """True when a browser would render the response as HTML (declared or sniffed)."""
    if not ex.ok or ex.status in _NO_CONTENT or (ex.status in _REDIRECTS and ex.header("location")):
        return False
    if (ex.header("content-disposition") or "").strip().lower().startswith("attachment"):
        return False  # downloaded, not rendered
    if ex.header("content-type"):
        return ex.is_html
    head = ex.body[:1024].lstrip(b" \t\r\n\x0c").decode("latin-1").lower()
    return any(head.startswith(p) and head[len(p):len(p) + 1] in (" ", ">") for p in _SNIFF_HTML)


def parse_html(text: str) -> Any:
    """Parse like a browser (html5lib, no XHTML namespaces) into an ElementTree root."""
    return html5lib.parse(text[:MAX_PARSE_CHARS], treebuilder="etree", namespaceHTMLElements=False)


def _walk(el: Any, parent_tag: str = "") -> Iterator[tuple[Any, str]]:
    """Yield (element, parent tag) depth-first; comments have a non-str tag."""
    yield el, parent_tag
    tag = el.tag if isinstance(el.tag, str) else "#comment"
    for child in el:
        yield from _walk(child, tag)


def _text_context(tag: str) -> str:
    if tag == "#comment":
        return "comment"
    return RAW_TEXT_TAGS.get(tag, "html")


def reflection_contexts(root: Any, canary: str) -> list[str]:
    """Where the canary landed in the parsed page: html, attribute, url, script, style, rcdata, comment."""
    found: list[str] = []

    def add(ctx: str) -> None:
        if ctx not in found:
            found.append(ctx)

    for el, parent in _walk(root):
        tag = el.tag if isinstance(el.tag, str) else "#comment"
        if canary in (el.text or ""):
            add(_text_context(tag))
        if canary in (el.tail or ""):
            add(_text_context(parent))
        for name, value in el.attrib.items():
            if canary in value:
                add("url" if name.lower() in URL_ATTRS else "attribute")
            if canary in name:
                add("attribute")
    return found


def _js_code_positions(source: str) -> list[bool]:
    """For each character of a script, whether it is JavaScript code (not in a string or comment).

    A small lexer (strings, template literals, comments); regex literals are rare around
    reflections and are treated as code, which can only make us miss a finding, not invent one.
    """
    code = [False] * len(source)
    state, i = "code", 0
    while i < len(source):
        ch, nxt = source[i], source[i + 1:i + 2]
        if state == "code":
            if ch in "'\"`":
                state = ch
            elif ch == "/" and nxt == "/":
                state = "line"
            elif ch == "/" and nxt == "*":
                state, i = "block", i + 1
            else:
                code[i] = True
        elif state in "'\"`":
            if ch == "\\":
                i += 1
            elif ch == state or (ch == "\n" and state != "`"):
                state = "code"
        elif state == "line" and ch == "\n":
            state = "code"
        elif state == "block" and ch == "*" and nxt == "/":
            state, i = "code", i + 1
        i += 1
    return code


def _canary_in_code(source: str, canary: str) -> bool:
    """True when some occurrence of the canary sits in JavaScript code, outside strings and comments."""
    if canary not in source:
        return False
    code = _js_code_positions(source)
    start = source.find(canary)
    while start >= 0:
        if all(code[start:start + len(canary)]):
            return True
        start = source.find(canary, start + 1)
    return False


def _is_executable_script(el: Any) -> bool:
    kind = (el.attrib.get("type") or "").split(";")[0].strip().lower()
    return kind in JS_TYPES


def _javascript_url(value: str) -> bool:
    # Browsers strip leading controls/spaces and drop tabs and newlines anywhere in a URL.
    cleaned = re.sub(r"[\t\n\r]", "", value).lstrip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f"
                                                    "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b"
                                                    "\x1c\x1d\x1e\x1f ")
    return cleaned.lower().startswith("javascript:")


@dataclass(frozen=True)
class Execution:
    """How a canary executes in a parsed page."""

    kind: str  # element | event-handler | javascript-url | script
    detail: str


def find_execution(root: Any, canary: str) -> Execution | None:
    """The first way the canary executes (or could) in the page, per a browser's parse."""
    for el, _parent in _walk(root):
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.lower()
        if tag == canary:
            return Execution("element", f"a <{canary}> element was created")
        for name, value in el.attrib.items():
            lname = name.lower()
            if lname == "on" + canary:
                return Execution("event-handler", f"<{tag}> got an event-handler attribute {lname}")
            if lname in URL_ATTRS and canary in value and _javascript_url(value):
                return Execution("javascript-url", f"<{tag} {lname}> is a javascript: URL with the canary")
        if tag == "script" and _is_executable_script(el) and _canary_in_code(el.text or "", canary):
            return Execution("script", "the canary is a JavaScript statement in <script>, outside any string")
    return None


def _proof_condition(execution: Execution, payload: str, canary: str, text: str) -> ProofCondition:
    """A body condition that holds while the payload is rendered raw, and not once it is escaped."""
    if execution.kind == "element":
        return body_contains(f"<{canary}")
    if execution.kind == "javascript-url":
        return body_matches(rf"(?i)=\s*[\"']?\s*javascript:{re.escape(canary)}")
    if execution.kind == "event-handler":
        if payload[:1] in "\"'":
            return body_contains(payload.split("=1", 1)[0] + "=1")
        # Unquoted attribute: `=value on<canary>=1` with no quote right after the `=`.
        return body_matches(rf"=\s*[^\s\"'>]*\s+on{re.escape(canary)}=1")
    # Script: the payload together with the code right before it (`var s='` + payload); escaping the
    # quote or switching string delimiters changes those bytes, so the condition stops holding.
    pos = text.find(payload)
    return body_contains(text[max(0, pos - 16):pos] + payload if pos >= 0 else payload)


def _payloads_for(ctx: CheckContext, contexts: list[str]) -> list[tuple[str, str]]:
    """(context, template) pairs for the contexts found, in corpus order, bounded."""
    wanted = contexts or ["html", "attribute"]
    out: list[tuple[str, str]] = []
    for entry in ctx.payloads.get("xss-reflected"):
        if entry["context"] in wanted and (entry["context"], entry["payload"]) not in out:
            out.append((entry["context"], entry["payload"]))
    out.sort(key=lambda pair: wanted.index(pair[0]))
    return out[:MAX_REFLECTED_PAYLOADS]


async def _try_payload(ctx: CheckContext, template: str) -> tuple[Exchange, Execution, str, str] | None:
    canary = ctx.canary()
    payload = render(template, canary=canary)
    ex = await ctx.inject(payload)
    if not renders_as_html(ex) or canary not in ex.text.lower():
        return None
    execution = find_execution(parse_html(ex.text), canary)
    return (ex, execution, payload, canary) if execution else None


@check(id="injection.xss-reflected", threat="injection.xss-reflected", scope="input")
async def xss_reflected(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Reflected XSS: canary probe, context-specific payloads, parser-confirmed twice.

    Bound per input: 1 probe + at most 10 payloads (1 when the probe's response is not HTML)
    + 1 confirmation = 12 requests.
    """
    assert ctx.inp is not None
    probe_canary = ctx.canary()
    probe = await ctx.inject(probe_canary)
    if not probe.ok or probe_canary not in probe.text.lower():
        return
    if renders_as_html(probe):
        candidates = _payloads_for(ctx, reflection_contexts(parse_html(probe.text), probe_canary))
    else:
        # A JSON/text echo is not XSS; one tag payload checks the app does not switch to HTML for it.
        candidates = _payloads_for(ctx, ["html"])[:1]
    for context, template in candidates:
        hit = await _try_payload(ctx, template)
        if hit is None:
            continue
        _, execution, _, first_canary = hit
        again = await _try_payload(ctx, template)
        if again is None:
            return  # not reproducible with a second canary: unstable, do not report
        ex, execution2, payload, canary = again
        label = CONTEXT_LABELS.get(context, context)
        inp = ctx.inp
        yield ctx.finding(
            title=f"Reflected XSS in {label} context via {inp.location} input '{inp.name}'",
            confidence=Confidence.confirmed,
            evidence=[
                *exchange_evidence(ex, f"payload {payload!r} executes: {execution2.detail}", canary),
                note("confirmed twice with different canaries",
                     f"first canary {first_canary}: {execution.detail}; second canary {canary}: "
                     f"{execution2.detail} (parsed with html5lib)"),
            ],
            proof=proof_from(ex, _proof_condition(execution2, payload, canary, ex.text)),
            url=ex.request.url,
        )
        return


# --- stored XSS ---------------------------------------------------------------------------------

_STORABLE_LOCATIONS = ("form", "json", "multipart")
_STATE_CHANGING = ("POST", "PUT", "PATCH")


def _submission_units(ctx: CheckContext) -> list[tuple[EntryPoint, Input]]:
    units: list[tuple[EntryPoint, Input]] = []
    for ep in ctx.surface.sorted():
        if ep.method not in _STATE_CHANGING:
            continue
        for inp in sorted(ep.inputs, key=lambda i: (i.location, i.name)):
            if inp.location in _STORABLE_LOCATIONS and inp.kind in ("string", "file"):
                units.append((ep, inp))
    return units[:MAX_STORED_INPUTS]


def _pages(ctx: CheckContext) -> list[EntryPoint]:
    """GET entry points a browser can open without inventing path values (crawled pages included)."""
    pages = [ep for ep in ctx.surface.sorted()
             if ep.method == "GET" and "{" not in ep.path and "<" not in ep.path
             and not any(word in ep.path.lower() for word in UNSAFE_PAGE_WORDS)]
    return pages[:MAX_STORED_PAGES]


async def _fetch_pages(ctx: CheckContext, pages: list[EntryPoint],
                       canaries: set[str]) -> list[tuple[EntryPoint, Exchange, Any]]:
    """Fetch each page once; parse only HTML pages that mention one of our canaries."""
    out = []
    for page in pages:
        ex = await ctx.send_spec(build_request(page))
        text = ex.text.lower()
        if renders_as_html(ex) and any(c in text for c in canaries):
            out.append((page, ex, parse_html(ex.text)))
    return out


def _rendered_elements(root: Any, canaries: set[str]) -> set[str]:
    return {el.tag.lower() for el, _ in _walk(root) if isinstance(el.tag, str) and el.tag.lower() in canaries}


async def _submit(ctx: CheckContext, ep: EntryPoint, inp: Input, template: str) -> tuple[str, Exchange]:
    canary = ctx.canary()
    ex = await ctx.inject(render(template, canary=canary), ep=ep, inp=inp)
    return canary, ex


@check(id="injection.xss-stored", threat="injection.xss-stored", scope="target")
async def xss_stored(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Stored XSS: one canary payload per state-changing input, then look for it on every page.

    Bound: 1 submission per form/JSON/multipart input of POST/PUT/PATCH entry points (≤ 60) + 1 fetch
    per parameterless GET page (≤ 100), then per stored input 1 re-submission + 1 page fetch.
    """
    units = _submission_units(ctx)
    pages = _pages(ctx)
    if not units or not pages:
        return
    template = ctx.payloads.get("xss-stored")[0]
    # Start from the target's restored data (when it has a reset hook): what earlier checks stored shows
    # on the same pages and would otherwise decide what the evidence excerpts contain.
    await ctx.target.reset()
    submitted: dict[str, tuple[EntryPoint, Input, Exchange]] = {}
    for ep, inp in units:
        canary, ex = await _submit(ctx, ep, inp, template)
        submitted[canary] = (ep, inp, ex)
    reported: set[tuple[str, str, str, str]] = set()
    for page, _ex, root in await _fetch_pages(ctx, pages, set(submitted)):
        for canary in sorted(_rendered_elements(root, set(submitted))):
            ep, inp, _store_ex = submitted[canary]
            key = (ep.method, ep.path, inp.location, inp.name)
            if key in reported:
                continue
            finding = await _confirm_stored(ctx, ep, inp, page, template)
            if finding is not None:
                reported.add(key)
                yield finding


async def _confirm_stored(ctx: CheckContext, ep: EntryPoint, inp: Input, page: EntryPoint,
                          template: str) -> Finding | None:
    """Store a second canary through the same input and see it rendered as an element on the page."""
    canary, store_ex = await _submit(ctx, ep, inp, template)
    page_ex = await ctx.send_spec(build_request(page))
    if not renders_as_html(page_ex) or canary not in _rendered_elements(parse_html(page_ex.text), {canary}):
        return None
    page_url = page_ex.request.url
    return ctx.finding(
        title=f"Stored XSS: {inp.location} input '{inp.name}' of {ep.method} {ep.path} renders unescaped "
              f"on {page.path}",
        confidence=Confidence.confirmed,
        evidence=[
            *exchange_evidence(store_ex, f"stores payload with canary {canary}", canary),
            *exchange_evidence(page_ex, f"page {page_url} renders it as a <{canary}> element", canary),
            note("confirmed twice with different canaries",
                 f"the value submitted to {ep.method} {ep.path} executes on {page_url} (html5lib parse)"),
        ],
        # The page request shows it; it reproduces on a live target whose storage still holds the canary.
        proof=proof_from(page_ex, body_contains(f"<{canary}")),
        location=ctx.location(ep=ep, inp=inp, url=store_ex.request.url),
    )
