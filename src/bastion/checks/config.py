"""Deployment configuration: exposed debuggers, stack traces, version banners and exposed files.

Signatures, paths and malformed values are data (payloads/data/config.yaml). Every finding rests on
a content signature that the app's answer to a random, non-existent request of the same shape (or
the entry point's benign baseline) does not show, so soft-404 and catch-all apps stay quiet.
"""

from __future__ import annotations

import ast
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.evidence import (
    body_contains,
    body_matches,
    exchange_evidence,
    header_matches,
    note,
    proof_from,
    status_in,
)
from bastion.findings.model import Confidence, Evidence, Finding, InputRef, Location
from bastion.payloads.corpus import render
from bastion.payloads.prefilter import search as prefiltered_search
from bastion.surface.model import EntryPoint, Input
from bastion.surface.requests import RequestSpec, build_request
from bastion.surface.sampling import sample_get_requests
from bastion.target.exchange import Exchange

# Per-response noise (dates, validators, the Werkzeug debugger's per-process secret) is masked in
# evidence so that equal runs give equal findings.
_VOLATILE = [(re.compile(r"(?im)^((?:date|last-modified|etag|expires|age):)[^\n]*$"), r"\1 …"),
             (re.compile(r'(SECRET = ")[^"]*(")'), r"\1…\2")]


def stable(evidence: list[Evidence]) -> list[Evidence]:
    """Evidence with volatile response details masked."""
    out = []
    for e in evidence:
        content = e.content
        for regex, repl in _VOLATILE:
            content = regex.sub(repl, content)
        out.append(e.model_copy(update={"content": content}) if content != e.content else e)
    return out


_RESEND_SKIP = {"host", "content-length", "user-agent", "accept-encoding", "connection"}


async def resend(ctx: CheckContext, ex: Exchange) -> Exchange:
    """Send the exact request of `ex` again (to show a response is stable, not a fluke)."""
    req = ex.request
    headers = {k: v for k, v in req.headers if k.lower() not in _RESEND_SKIP and k.lower() != "cookie"}
    cookie = req.header("cookie")
    if cookie:
        headers["cookie"] = cookie
    return await ctx.send(req.method, req.url, headers=headers, content=req.body or None)


# --- config.debug-exposed --------------------------------------------------------------------

ERROR_TRIGGERS = 4


@dataclass(frozen=True)
class DebugSignature:
    kind: str
    name: str
    patterns: tuple[str, ...]
    severity: str | None = None
    confirm_suffix: str | None = None
    confirm_regex: str | None = None

    def matches(self, text: str) -> bool:
        return all(re.search(p, text) for p in self.patterns)


def debug_signatures(ctx: CheckContext) -> list[DebugSignature]:
    out = []
    for item in ctx.payloads.get("config_debug_signatures"):
        confirm = item.get("confirm") or {}
        out.append(DebugSignature(item["kind"], item["name"], tuple(item["all"]), item.get("severity"),
                                  confirm.get("suffix"), confirm.get("regex")))
    return out


@dataclass
class DebugHit:
    sig: DebugSignature
    ex: Exchange
    location: Location


def _error_triggers(ctx: CheckContext, values: dict[str, str]) -> list[tuple[EntryPoint, Input | None, str]]:
    """A few requests likely to raise inside handlers: wrong types, broken JSON bodies."""
    out: list[tuple[EntryPoint, Input | None, str]] = []
    for ep in ctx.surface.sorted():
        if len(out) >= ERROR_TRIGGERS:
            break
        typed = [i for i in ep.inputs if i.kind in ("integer", "number") and i.location != "path"]
        if typed:
            out.append((ep, typed[0], render(values["wrong_type"], canary=ctx.canary())))
        elif "json" in ep.body_locations:
            out.append((ep, None, render(values["broken_json"], canary=ctx.canary())))
        elif any(i.location == "query" and i.kind == "string" for i in ep.inputs):
            inp = next(i for i in ep.inputs if i.location == "query" and i.kind == "string")
            out.append((ep, inp, render(values["quote"], canary=ctx.canary())))
    return out


def _broken_body_request(ep: EntryPoint, body: str) -> RequestSpec:
    spec = build_request(ep)
    spec.json, spec.form, spec.files = None, None, None
    spec.content = body.encode("utf-8")
    spec.headers["content-type"] = "application/json"
    return spec


async def _send_broken_body(ctx: CheckContext, ep: EntryPoint, body: str) -> Exchange:
    return await ctx.send_spec(_broken_body_request(ep, body))


# Debug error pages are often HTML only for browsers (Starlette serves plain text otherwise).
_BROWSER_ACCEPT = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@check(id="config.debug-exposed", threat="config.debug-exposed", scope="target")
async def debug_exposed(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Debuggers and debug pages: well-known debug paths, a random 404, a few error-raising requests.

    Bound: 2 + len(config_debug_paths) + ERROR_TRIGGERS requests, plus one confirmation per
    debugger kind found.
    """
    sigs = debug_signatures(ctx)
    by_kind = {s.kind: s for s in sigs}
    hits: dict[str, DebugHit] = {}

    def look(ex: Exchange, location: Location, only: str | None = None) -> None:
        for sig in sigs:
            if sig.kind not in hits and (only is None or sig.kind == only) and sig.matches(ex.text):
                hits[sig.kind] = DebugHit(sig, ex, location)

    # Paths first: the console page is the strongest proof of an exposed debugger.
    for item in ctx.payloads.get("config_debug_paths"):
        if item["kind"] in hits:
            continue
        ex = await ctx.send("GET", item["path"], headers=_BROWSER_ACCEPT)
        if ex.status == 200:
            look(ex, Location(method="GET", path=item["path"], url=ex.request.url), only=item["kind"])
    root = await ctx.send("GET", "/", follow_redirects=True, headers=_BROWSER_ACCEPT)
    look(root, Location(method="GET", path=httpx.URL(root.request.url).path, url=root.request.url))
    # Django's DEBUG page also answers unknown paths.
    missing = f"/{ctx.canary()}"
    ex = await ctx.send("GET", missing, headers=_BROWSER_ACCEPT)
    look(ex, Location(method="GET", path=missing, url=ex.request.url))
    values = _malformed_values(ctx)
    for ep, inp, value in _error_triggers(ctx, values):
        spec = build_request(ep, inp, value) if inp else _broken_body_request(ep, value)
        spec.headers.update(_BROWSER_ACCEPT)
        ex = await ctx.send_spec(spec)
        look(ex, ctx.location(ep=ep, inp=inp, url=ex.request.url))
    for kind, hit in sorted(hits.items()):
        yield await _debug_finding(ctx, hit, by_kind[kind])


async def _debug_finding(ctx: CheckContext, hit: DebugHit, sig: DebugSignature) -> Finding:
    """Confirm with the debugger's own resource (or a repeat of the request) and build the finding."""
    confidence = Confidence.firm
    evidence = exchange_evidence(hit.ex, f"{sig.name} served", sig.patterns[0])
    if sig.confirm_suffix and sig.confirm_regex:
        url = hit.ex.request.url.split("?", 1)[0] + sig.confirm_suffix
        extra = await ctx.send("GET", url)
        if extra.status == 200 and re.search(sig.confirm_regex, extra.text):
            confidence = Confidence.confirmed
            evidence.append(note("the debugger serves its own resources", f"GET {url} -> {extra.status}"))
    else:
        again = await resend(ctx, hit.ex)
        if sig.matches(again.text):
            confidence = Confidence.confirmed
            evidence.append(note("the debug page is served again on a repeated request"))
    return ctx.finding(
        title=f"{sig.name} exposed", confidence=confidence, severity=sig.severity, location=hit.location,
        evidence=stable(evidence), proof=proof_from(hit.ex, *(body_matches(p) for p in sig.patterns)))


# --- config.stack-trace ----------------------------------------------------------------------

MAX_PROBES = 8


def _malformed_values(ctx: CheckContext) -> dict[str, str]:
    """Malformation kind -> value template."""
    return {e["kind"]: e["value"] for e in ctx.payloads.get("config_malformed_values")}


@dataclass(frozen=True)
class Malformation:
    kind: str  # wrong_type | quote | huge_number | broken_json | bad_utf8
    inp: Input | None = None


def plan_malformations(ep: EntryPoint) -> list[Malformation]:
    """Malformed requests for an entry point, most likely to raise first, at most MAX_PROBES."""
    inputs = sorted((i for i in ep.inputs if i.kind != "file"), key=lambda i: (i.location, i.name))
    typed = [i for i in inputs if i.kind in ("integer", "number", "boolean")]
    strings = [i for i in inputs if i.kind == "string"]
    plan = [Malformation("wrong_type", i) for i in typed]
    wants_body = ep.method in ("POST", "PUT", "PATCH") and not (ep.body_locations - {"json"})
    if "json" in ep.body_locations or wants_body or any("json" in c for c in ep.consumes):
        plan.append(Malformation("broken_json"))
    plan += [Malformation("quote", i) for i in strings]
    plan += [Malformation("huge_number", i) for i in typed if i.kind == "integer"]
    plan += [Malformation("bad_utf8", i) for i in inputs if i.location == "query"][:1]
    return plan[:MAX_PROBES]


def _render_value(ctx: CheckContext, template: str) -> str:
    digits = "".join(str(ctx.rng.randint(0, 9)) for _ in range(6))
    return render(template, canary=ctx.canary(), digits=digits)


async def _send_malformed(ctx: CheckContext, ep: EntryPoint, m: Malformation, value: str) -> Exchange:
    if m.kind == "broken_json":
        return await _send_broken_body(ctx, ep, value)
    if m.kind == "bad_utf8" and m.inp is not None:
        # Invalid UTF-8 must reach the app percent-encoded as is, so the query string is built by hand.
        spec = build_request(ep)
        others = {k: v for k, v in spec.params.items() if k != m.inp.name}
        query = "&".join(q for q in (urlencode(others), f"{quote(m.inp.name, safe='')}={value}") if q)
        raw = RequestSpec(method=spec.method, path=f"{spec.path}?{query}", headers=spec.headers,
                          cookies=spec.cookies, form=spec.form, json=spec.json, files=spec.files,
                          content=spec.content)
        return await ctx.send_spec(raw)
    return await ctx.inject(value, inp=m.inp)


@dataclass(frozen=True)
class StackSignature:
    name: str
    regex: str


def new_signature(text: str, baseline: str, sigs: list[StackSignature]) -> tuple[StackSignature, str] | None:
    """The first signature in `text` that the baseline does not show, with the matched text."""
    for sig in sigs:
        m = prefiltered_search(sig.regex, text)
        if m and not prefiltered_search(sig.regex, baseline):
            return sig, m.group(0)
    return None


@check(id="config.stack-trace", threat="config.stack-trace", scope="entry")
async def stack_trace(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Malformed input answered with a stack trace or raw database error absent from the baseline.

    Bound per entry point: 1 baseline + MAX_PROBES malformed requests + 1 confirmation with a
    fresh random value; stops at the first confirmed leak.
    """
    assert ctx.ep is not None
    ep = ctx.ep
    plan = plan_malformations(ep)
    if not plan:
        return
    sigs = [StackSignature(s["name"], s["regex"]) for s in ctx.payloads.get("config_stack_signatures")]
    values = _malformed_values(ctx)
    base = await ctx.baseline()
    for m in plan:
        ex = await _send_malformed(ctx, ep, m, _render_value(ctx, values[m.kind]))
        found = new_signature(ex.text, base.text, sigs)
        if found is None:
            continue
        sig, marker = found
        again = await _send_malformed(ctx, ep, m, _render_value(ctx, values[m.kind]))
        if not re.search(sig.regex, again.text):
            continue  # not reproducible: a flaky page, not a reliable leak
        what = {"broken_json": "a broken JSON body", "bad_utf8": "invalid UTF-8",
                "wrong_type": "a value of the wrong type", "quote": "a stray quote",
                "huge_number": "a huge number"}[m.kind]
        yield ctx.finding(
            title=f"{sig.name} leaked on {what}", confidence=Confidence.confirmed,
            location=ctx.location(inp=m.inp, url=ex.request.url),
            evidence=stable([*exchange_evidence(ex, f"{sig.name} in the response to {what}", marker),
                             *exchange_evidence(again, "reproduced with another value", marker),
                             note("baseline response does not show it", f"HTTP {base.status}")]),
            proof=proof_from(again, body_matches(sig.regex)))
        return


# --- config.version-banner -------------------------------------------------------------------

BANNER_SAMPLE = 10
# `Product/1.2` (the RFC 9110 product token), or `Product 1.2.3` with at least three version parts.
_PRODUCT_VERSION = re.compile(r"[A-Za-z][\w.+-]*/\(?v?\d+(?:\.\d+)+[\w.+-]*"
                              r"|[A-Za-z][\w.+-]* v?\d+\.\d+(?:\.\d+)+")
_BARE_VERSION = re.compile(r"^\s*v?\d+(?:\.\d+)+\S*\s*$")


def version_disclosed(value: str, version_only: bool = False) -> str | None:
    """The product/version text a header value reveals, None for a bare product name."""
    if version_only:
        return value.strip() if _BARE_VERSION.match(value) else None
    found = _PRODUCT_VERSION.findall(value)
    return " ".join(found) if found else None


@check(id="config.version-banner", threat="config.version-banner", scope="target")
async def version_banner(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Headers naming product and version (`Server: Werkzeug/3.1.3 Python/3.11.7`), once per header.

    Bound: BANNER_SAMPLE GET requests plus one for a random missing path (error pages often differ).
    """
    headers = ctx.payloads.get("config_banner_headers")
    sampled = sample_get_requests(ctx.surface, BANNER_SAMPLE)
    requests = [(ep.path if ep else spec.path, spec) for ep, spec in sampled]
    missing = f"/{ctx.canary()}"
    requests.append((missing, RequestSpec(method="GET", path=missing)))
    reported: set[str] = set()
    for path, spec in requests:
        ex = await ctx.send_spec(spec)
        for item in headers:
            name = item["header"]
            if name.lower() in reported:
                continue
            for value in ex.header_values(name):
                shown = version_disclosed(value, bool(item.get("version_only")))
                if shown is None:
                    continue
                reported.add(name.lower())
                yield ctx.finding(
                    title=f"{name} header discloses {shown}", confidence=Confidence.confirmed,
                    location=Location(method="GET", path=path, url=ex.request.url,
                                      input=InputRef(**{"in": "header", "name": name})),
                    evidence=stable(exchange_evidence(ex, f"{name}: {value}")),
                    proof=proof_from(ex, header_matches(name, re.escape(shown.split()[0]))))
                break


# --- config.file-exposure --------------------------------------------------------------------

MAX_CANDIDATES = 60
EXTRA_PREFIXES = 2
_HTML = re.compile(r"<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE)
_ENV_KEY = re.compile(r"(?m)^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=[ \t]*\S")


def _not_html(text: str) -> bool:
    return not _HTML.search(text[:4096])


def _regex_marker(regex: str, flags: int = 0) -> Callable[[Exchange], str | None]:
    def test(ex: Exchange) -> str | None:
        m = re.search(regex, ex.text[:262144], flags)
        return m.group(0) if m and _not_html(ex.text) else None
    return test


def _env_marker(ex: Exchange) -> str | None:
    """At least two KEY=VALUE lines; the marker is the first key (never its secret value)."""
    keys = _ENV_KEY.findall(ex.text[:262144])
    return f"{keys[0]}=" if len(keys) >= 2 and _not_html(ex.text) else None


def _prefix_marker(prefix: bytes) -> Callable[[Exchange], str | None]:
    def test(ex: Exchange) -> str | None:
        return prefix.decode("latin-1").strip("\x00") if ex.body.startswith(prefix) else None
    return test


_SOURCE_NODES = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _python_marker(ex: Exchange) -> str | None:
    """Python source: parses, and defines or imports something at module level."""
    text = ex.text
    if len(ex.body) > 1_000_000 or not _not_html(text):
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in tree.body:
        if isinstance(node, _SOURCE_NODES):
            line = text.splitlines()[node.lineno - 1].strip()
            return line or None
    return None


def _listing_marker(ctx: CheckContext) -> Callable[[Exchange], str | None]:
    patterns = ctx.payloads.get("config_listing_signatures")

    def test(ex: Exchange) -> str | None:
        for p in patterns:
            m = re.search(p, ex.text[:262144], re.IGNORECASE)
            if m:
                return m.group(0)
        return None
    return test


def signature_tests(ctx: CheckContext) -> dict[str, Callable[[Exchange], str | None]]:
    """Content tests by name: each returns the text that proves the file, or None."""
    return {
        "env": _env_marker,
        "git-config": _regex_marker(r"(?m)^[ \t]*\[core\][ \t]*\r?$"),
        "git-head": _regex_marker(r"^\s*(?:ref: refs/heads/\S+|[0-9a-f]{40})\s*$"),
        "svn-db": _prefix_marker(b"SQLite format 3\x00"),
        "ds-store": _prefix_marker(b"\x00\x00\x00\x01Bud1"),
        "private-key": _regex_marker(r"-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
        "sql-dump": _regex_marker(r"(?im)^[ \t]*(?:CREATE TABLE|INSERT INTO)[ \t]+\S+"),
        "web-config": _regex_marker(r"<configuration>[\s\S]{0,2000}<system\.web(?:Server)?>"),
        "htpasswd": _regex_marker(r"(?m)^[\w.-]+:(?:\$apr1\$|\$2[aby]\$|\{SHA\}|\$[156]\$)"),
        "python-source": _python_marker,
        "listing": _listing_marker(ctx),
    }


@dataclass(frozen=True)
class Candidate:
    path: str
    signature: str
    severity: str | None = None
    what: str = ""


@dataclass
class _Plan:
    seen: set[str] = field(default_factory=set)
    items: list[Candidate] = field(default_factory=list)

    def add(self, cand: Candidate) -> None:
        if cand.path not in self.seen and len(self.items) < MAX_CANDIDATES:
            self.seen.add(cand.path)
            self.items.append(cand)


_TRAILING_PARAM = re.compile(r"^(/(?:[^{}]*/)?)\{[^}]+\}$")


def served_directories(eps: list[EntryPoint]) -> list[str]:
    """Directories whose last segment is a file-name parameter (`/static/{filename}`): file servers."""
    out: list[str] = []
    for ep in eps:
        m = _TRAILING_PARAM.match(ep.path)
        if ep.method == "GET" and m and m.group(1) != "/" and m.group(1) not in out:
            out.append(m.group(1))
    return out


def plan_candidates(ctx: CheckContext) -> list[Candidate]:
    """Sensitive files, backups, listings; root first, then directories seen in the surface."""
    data = ctx.payloads
    plan = _Plan()
    for item in data.get("config_sensitive_files"):
        plan.add(Candidate(item["path"], item["signature"], item.get("severity"), item["path"].lstrip("/")))
    served = served_directories(ctx.surface.sorted())
    by_path = {i["path"]: i for i in data.get("config_sensitive_files")}
    for prefix in served[:EXTRA_PREFIXES]:
        for path in data.get("config_sensitive_files_nested"):
            item = by_path[path]
            plan.add(Candidate(prefix.rstrip("/") + path, item["signature"], item.get("severity"),
                               path.lstrip("/")))
    names = list(data.get("config_backup_names"))
    for ep in ctx.surface.sorted():
        base = (ep.file or "").replace("\\", "/").rsplit("/", 1)[-1]
        if base.endswith(".py") and base not in names and len(names) < 8:
            names.append(base)
    for name in names:
        for suffix in data.get("config_backup_suffixes"):
            plan.add(Candidate(f"/{name}{suffix}", "python-source", "high", f"backup copy of {name}"))
    for directory in [*data.get("config_listing_dirs"), *served]:
        plan.add(Candidate(directory, "listing", "medium", "directory listing"))
    return plan.items


def control_path(path: str, canary: str) -> str:
    """A random path of the same shape: same directory, same dot-prefix and extension."""
    if path.endswith("/"):
        return path.rstrip("/").rsplit("/", 1)[0] + f"/{canary}/"
    directory, _, name = path.rpartition("/")
    if name.startswith("."):
        _, dot, rest = name[1:].partition(".")
        return f"{directory}/.{canary}{dot}{rest}"
    _, dot, ext = name.partition(".")
    if not dot and name.endswith("~"):
        return f"{directory}/{canary}~"
    return f"{directory}/{canary}{dot}{ext}"


def _mask_secrets(evidence: list[Evidence], signature: str) -> list[Evidence]:
    """Keep the shape of a leaked secret file in the report, not the secrets themselves."""
    patterns = {
        "env": (re.compile(r"(?m)^([ \t]*(?:export[ \t]+)?\w+[ \t]*=[ \t]*)(\S.*)$"), r"\1****"),
        "htpasswd": (re.compile(r"(?m)^([\w.-]+:)(\S+)$"), r"\1****"),
        "private-key": (re.compile(r"(?m)^[A-Za-z0-9+/=]{16,}$"), "****"),
    }
    if signature not in patterns:
        return evidence
    regex, repl = patterns[signature]
    return [e.model_copy(update={"content": regex.sub(repl, e.content)}) if e.kind == "response" else e
            for e in evidence]


@check(id="config.file-exposure", threat="config.file-exposure", scope="target")
async def file_exposure(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Sensitive files and directory listings, each proven by content and by two random controls.

    Bound: at most MAX_CANDIDATES requests, plus two control requests per candidate whose content
    matches its signature.
    """
    tests = signature_tests(ctx)
    for cand in plan_candidates(ctx):
        ex = await ctx.send("GET", cand.path)
        marker = tests[cand.signature](ex) if ex.status == 200 else None
        if marker is None:
            continue
        controls = [await ctx.send("GET", control_path(cand.path, ctx.canary())) for _ in range(2)]
        # A catch-all that answers everything alike (or with the same signature) proves nothing.
        if any(c.status == 200 and (tests[cand.signature](c) is not None or c.body == ex.body)
               for c in controls):
            continue
        listing = cand.signature == "listing"
        title = (f"Directory listing served at {cand.path}" if listing
                 else f"Sensitive file served: {cand.path} ({cand.what})")
        evidence = _mask_secrets(exchange_evidence(ex, title, marker), cand.signature)
        answers = "\n".join(f"GET {httpx.URL(c.request.url).path} -> {c.status}" for c in controls)
        evidence.append(note("random paths of the same shape are not served alike", answers))
        conditions: list[Any] = [status_in(200), body_contains(marker)]
        yield ctx.finding(
            title=title, confidence=Confidence.confirmed, severity=cand.severity,
            location=Location(method="GET", path=cand.path, url=ex.request.url),
            evidence=stable(evidence), proof=proof_from(ex, *conditions))
