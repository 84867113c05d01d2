"""Crawl a target's HTML pages (GET only) for links and forms, within scope and small budgets.

The crawler never submits a form and never follows logout- or delete-like links: crawling must not
change the target's state or end a session. Pages come through ProbeClient, so the scope guard, the
size cap and the budgets apply as for any probe.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urldefrag, urlencode, urljoin, urlsplit

from bastion.errors import BudgetExhausted, ScopeError
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.budget import Limits
from bastion.target.client import ProbeClient
from bastion.target.exchange import Exchange
from bastion.target.html import parse_html as _parse_html
from bastion.target.scope import Scope
from bastion.target.target import Target

MAX_REQUESTS = 300
# Where services commonly serve their OpenAPI document (FastAPI, Spring, Swagger UI setups).
WELL_KNOWN_OPENAPI = ("/openapi.json", "/api/openapi.json", "/v3/api-docs", "/swagger.json")
# Pages where API docs (Swagger UI, ReDoc) usually sit when the document is elsewhere: their HTML or
# inline script names it (`url: "/ui/swagger.json"`, `spec-url=`, `<a href=...json>`). Bounded fetches.
DOCS_PAGES = ("/docs", "/ui/", "/swagger-ui/", "/swagger/", "/apidocs/", "/api/docs", "/redoc")
MAX_SPEC_CANDIDATES = 6
MAX_DOCS_PAGE_CHARS = 200_000  # a docs page names its document near the top; bounds the regex work
_SPEC_URL = re.compile(r"""(?:\burl|href|src|spec-url)\s*[:=]\s*["']([^"'\s<>]{1,300}?\.(?:json|ya?ml))["']""",
                       re.IGNORECASE)
MAX_DEPTH = 5
# Path words that mark links the crawler must not follow: they end sessions or destroy data.
LOGOUT_WORDS = ("logout", "log-out", "log_out", "logoff", "signout", "sign-out", "sign_out")
UNSAFE_WORDS = (*LOGOUT_WORDS, "delete", "remove", "destroy")
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_MULTIPART = "multipart/form-data"
_URLENCODED = "application/x-www-form-urlencoded"
# A crawled page's identity: (path template, sorted query parameter names).
_Key = tuple[str, tuple[str, ...]]
_GONE = {404, 405, 410, 501}
_LINK_TAGS = {"a": "href", "area": "href", "link": "href", "iframe": "src", "frame": "src"}
_UNSENT_INPUT_TYPES = {"reset", "image"}


@dataclass
class _Page:
    """A GET URL seen during the crawl (fetched or not)."""

    path: str
    query: list[tuple[str, str]]
    status: int | None = None
    content_type: str = ""


@dataclass
class _Form:
    method: str
    path: str
    multipart: bool
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (name, example, input type)
    query: list[tuple[str, str]] = field(default_factory=list)


class _Templates:
    """Matches concrete paths against introspected templates (`/invoices/7` → `/invoices/{id}`)."""

    def __init__(self, known: Surface | None) -> None:
        templates = sorted({ep.path for ep in (known.entry_points if known else []) if "{" in ep.path})
        compiled: list[tuple[int, int, str, re.Pattern[str], list[str]]] = []
        for tpl in templates:
            names = _PARAM.findall(tpl)
            literals = _PARAM.split(tpl)[::2]  # split() interleaves literal text and captured names
            pattern = "".join(re.escape(lit) + (f"(?P<p{i}>[^/]+)" if i < len(names) else "")
                              for i, lit in enumerate(literals))
            compiled.append((len(names), -len("".join(literals)), tpl, re.compile(f"^{pattern}$"), names))
        # Fewest parameters and longest literal text first: `/users/me` beats `/users/{id}`.
        self._compiled = sorted(compiled, key=lambda c: (c[0], c[1], c[2]))
        self._exact = {ep.path for ep in (known.entry_points if known else [])}

    def match(self, path: str) -> tuple[str, dict[str, str]]:
        if path in self._exact:
            return path, {}
        for _n, _lit, tpl, regex, names in self._compiled:
            m = regex.match(path)
            if m:
                return tpl, {name: unquote(m.group(f"p{i}")) for i, name in enumerate(names)}
        return path, {}


def _surface_from_openapi_bytes(body: bytes, url: str) -> Surface | None:
    """Parse a served OpenAPI document with the OpenAPI loader (its limits apply); None if unusable."""
    from bastion.errors import BastionError
    from bastion.surface.openapi import load_openapi_bytes

    try:
        surface = load_openapi_bytes(body, name=url)
    except BastionError:  # a broken or hostile document is simply not used
        return None
    for ep in surface.entry_points:
        ep.source = "openapi"
    return surface


def _looks_like_spec(body: bytes) -> bool:
    """An OpenAPI 3 or Swagger 2.0 document in JSON or YAML (checked on its first bytes only)."""
    head = body[:4096]
    return (b'"openapi"' in head or b'"swagger"' in head
            or head.lstrip().startswith((b"openapi:", b"swagger:")) or b"\nopenapi:" in head
            or b"\nswagger:" in head)


def is_unsafe_link(path: str) -> bool:
    """Whether following a link might end the session or destroy data (logout, delete, ...)."""
    lowered = path.lower()
    return any(word in lowered for word in UNSAFE_WORDS)


# Control characters lxml refuses in a string document; they carry no links anyway.
def _elements(root: Any) -> Iterator[Any]:
    for el in root.iter():
        if isinstance(el.tag, str):  # comments and processing instructions have callable tags
            yield el


def _text(el: Any) -> str:
    return "".join(el.itertext())


def _select_example(select: Any) -> str:
    options = [o for o in select.iter() if o.tag == "option"]
    chosen = next((o for o in options if o.get("selected") is not None), options[0] if options else None)
    if chosen is None:
        return ""
    value = chosen.get("value")
    return value if value is not None else _text(chosen).strip()


def _form_fields(form: Any) -> list[tuple[str, str, str]]:
    fields: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for el in form.iter():
        if not isinstance(el.tag, str) or el.tag not in ("input", "select", "textarea", "button"):
            continue
        name = (el.get("name") or "").strip()
        if not name or name in seen:
            continue
        input_type = (el.get("type") or ("submit" if el.tag == "button" else "text")).lower()
        if el.tag == "input" and input_type in _UNSENT_INPUT_TYPES:
            continue
        if el.tag == "select":
            example = _select_example(el)
        elif el.tag == "textarea":
            example = _text(el)
        elif input_type in ("checkbox", "radio"):
            example = el.get("value") or "on"
        else:
            example = el.get("value") or ""
        seen.add(name)
        fields.append((name, example, input_type if el.tag == "input" else el.tag))
    return fields


class _Crawler:
    def __init__(self, client: ProbeClient, target: Target, templates: _Templates, max_pages: int,
                 max_depth: int) -> None:
        self.client = client
        self.scope = client.scope
        self.templates = templates
        self.max_pages = max_pages
        self.max_depth = max_depth
        # Surface paths are relative to the target's base URL, which may have a path of its own.
        self.base_path = urlsplit(target.base_url).path.rstrip("/")
        self.pages: dict[_Key, _Page] = {}
        self.forms: list[_Form] = []
        self.scripts: set[str] = set()
        # Cookie name -> paths of the pages that set it. A crawler never sees which cookies a page
        # reads, but cookies the app sets are the ones it reads back: they become cookie inputs.
        self.cookies: dict[str, set[str]] = {}
        self.fetched = 0

    # -- URLs ------------------------------------------------------------------------------------
    def _local(self, url: str, *, unsafe_ok: bool = False) -> tuple[str, list[tuple[str, str]]] | None:
        """(surface path, query pairs) of an in-scope, safe URL; None when it must not be touched."""
        url = urldefrag(url)[0]
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or not self.scope.allows(url):
            return None
        if self.scope.path_excluded(url):
            return None
        path = parts.path or "/"
        if self.base_path and not (path == self.base_path or path.startswith(self.base_path + "/")):
            return None
        path = path[len(self.base_path):] or "/"
        if not unsafe_ok and (is_unsafe_link(path) or is_unsafe_link(parts.query)):
            return None
        return path, parse_qsl(parts.query, keep_blank_values=True)

    def _key(self, path: str, query: list[tuple[str, str]]) -> _Key:
        template, _ = self.templates.match(path)
        return template, tuple(sorted({k for k, _ in query}))

    def _url(self, path: str, query: list[tuple[str, str]]) -> str:
        return self.client.url(path) + (f"?{urlencode(query)}" if query else "")

    # -- crawl -----------------------------------------------------------------------------------
    async def run(self, seeds: list[str]) -> None:
        level: list[_Key] = []
        for seed in seeds:
            local = self._local(self.client.url(seed))
            if local is not None:
                level.extend(self._note(*local))
        for _depth in range(self.max_depth + 1):
            room = self.max_pages - self.fetched
            if not level or room <= 0:
                return
            batch = level[:room]
            results = await asyncio.gather(*(self._fetch(key) for key in batch))
            next_level: list[_Key] = []
            stop = False
            for key, result in zip(batch, results, strict=True):
                if isinstance(result, BudgetExhausted):
                    stop = True
                    continue
                if result is not None:
                    next_level.extend(self._absorb(key, result))
            if stop:
                return
            level = next_level

    def _note(self, path: str, query: list[tuple[str, str]]) -> list[_Key]:
        """Remember a GET URL; returns its key when it is new (to be fetched)."""
        key = self._key(path, query)
        if key in self.pages:
            return []
        self.pages[key] = _Page(path, query)
        return [key]

    def _note_logout(self, url: str) -> None:
        """A sign-out link is an entry point (its `next=` is a classic open redirect), but is never fetched."""
        local = self._local(url, unsafe_ok=True)
        if local is None or not any(word in local[0].lower() for word in LOGOUT_WORDS):
            return  # out of scope, or a delete-like link: not even listed, checks would call it
        self.pages.setdefault(self._key(*local), _Page(*local))

    async def _fetch(self, key: _Key) -> Exchange | BudgetExhausted | None:
        page = self.pages[key]
        self.fetched += 1
        try:
            url = self._url(page.path, page.query)
            exchange = await self.client.request("GET", url, follow_redirects=True)
        except BudgetExhausted as exc:
            return exc
        except ScopeError:
            return None
        page.status = exchange.status if exchange.ok else None
        page.content_type = exchange.content_type
        return exchange

    def _absorb(self, key: _Key, exchange: Exchange) -> list[_Key]:
        """Links and forms of a fetched page; returns the keys of new pages to fetch next."""
        new: list[_Key] = []
        page_url = exchange.request.url
        for hop in [*exchange.history, exchange]:
            for header in hop.header_values("set-cookie"):
                name = header.split(";", 1)[0].split("=", 1)[0].strip()
                local = self._local(hop.request.url)
                if name and local is not None:
                    self.cookies.setdefault(name, set()).add(local[0])
        if exchange.history:  # the redirect target is a page of its own
            local = self._local(page_url)
            if local is not None:
                redirected = self._key(*local)
                if redirected not in self.pages:
                    self.pages[redirected] = _Page(*local, status=exchange.status,
                                                   content_type=exchange.content_type)
        if not exchange.ok or not exchange.is_html or not exchange.body:
            return new
        try:
            root = _parse_html(exchange.text)
        except Exception:  # both parsers recover from any markup; this guards against their own bugs
            return new
        base = page_url
        for el in _elements(root):
            if el.tag == "base" and el.get("href"):
                base = urljoin(page_url, el.get("href").strip())
                break
        for el in _elements(root):
            tag = el.tag
            if tag in _LINK_TAGS and el.get(_LINK_TAGS[tag]):
                url = urljoin(base, el.get(_LINK_TAGS[tag]).strip())
                local = self._local(url)
                if local is not None:
                    new.extend(self._note(*local))
                else:
                    self._note_logout(url)
            elif tag == "script" and el.get("src"):
                local = self._local(urljoin(base, el.get("src").strip()))
                if local is not None:
                    self.scripts.add(local[0])  # noted as an entry point, never fetched
            elif tag == "form":
                self._form(el, base)
        return new

    def _form(self, form: Any, base: str) -> None:
        action = (form.get("action") or "").strip()
        local = self._local(urljoin(base, action) if action else base)
        if local is None:
            return
        method = (form.get("method") or "GET").strip().upper()
        method = method if method in ("GET", "POST") else "GET"
        multipart = (form.get("enctype") or "").strip().lower() == "multipart/form-data"
        self.forms.append(_Form(method, local[0], multipart and method == "POST", _form_fields(form),
                                local[1]))

    async def fetch_openapi(self) -> Surface:
        """The service's own OpenAPI (or Swagger 2.0) document: at a well-known path, else named by a docs page."""
        try:
            for path in WELL_KNOWN_OPENAPI:
                found = await self._try_spec(self.client.url(path))
                if found is not None:
                    return found
            for url in await self._spec_links():
                found = await self._try_spec(url)
                if found is not None:
                    return found
        except (BudgetExhausted, ScopeError):
            pass
        return Surface()

    async def _try_spec(self, url: str) -> Surface | None:
        if self._local(url) is None:
            return None
        exchange = await self.client.request("GET", url)
        if exchange.ok and exchange.status == 200 and _looks_like_spec(exchange.body):
            return _surface_from_openapi_bytes(exchange.body, url)
        return None

    async def _spec_links(self) -> list[str]:
        """Document URLs named by the usual docs pages (Swagger UI config, links), at most a few."""
        found: list[str] = []
        for path in DOCS_PAGES:
            page = self.client.url(path)
            if self._local(page) is None:
                continue
            exchange = await self.client.request("GET", page)
            if not (exchange.ok and exchange.status == 200 and exchange.is_html):
                continue
            for match in _SPEC_URL.finditer(exchange.text[:MAX_DOCS_PAGE_CHARS]):
                url = urljoin(exchange.request.url, match.group(1))
                if url not in found and self._local(url) is not None:
                    found.append(url)
            if len(found) >= MAX_SPEC_CANDIDATES:
                break
        return found[:MAX_SPEC_CANDIDATES]

    # -- result ----------------------------------------------------------------------------------
    def surface(self) -> Surface:
        surface = Surface()
        structural = _structural_templates(
            [page.path for page in self.pages.values()
             if page.status not in _GONE and not self.templates.match(page.path)[1]])
        for page in self.pages.values():
            if page.status in _GONE:
                continue
            if page.path in structural:
                template, value = structural[page.path]
                ep = EntryPoint("GET", template, source="crawl")
                ep.add_input(Input("path", "segment", required=True, example=value, source="crawl"))
                for name, qvalue in page.query:
                    ep.add_input(Input("query", name, example=qvalue or None, source="crawl"))
                surface.add(ep)
                continue
            ep = self._entry_point("GET", page.path, page.query)
            if page.content_type:
                ep.produces = [page.content_type]
            surface.add(ep)
        for script in sorted(self.scripts):
            surface.add(self._entry_point("GET", script, []))
        # Each cookie is attacked where it was set and at the site root, where app-wide cookie
        # handling (sessions, preferences) runs; not on every page, which would multiply probes.
        for name, paths in sorted(self.cookies.items()):
            for path in sorted({*paths, "/"} if "/" in self._crawled_paths() else paths):
                ep = self._entry_point("GET", path, [])
                ep.add_input(Input("cookie", name, source="crawl"))
                surface.add(ep)
        for form in self.forms:
            ep = self._entry_point(form.method, form.path, form.query)
            location = "query" if form.method == "GET" else "multipart" if form.multipart else "form"
            for name, example, input_type in form.fields:
                kind = "file" if input_type == "file" and location == "multipart" else "string"
                ep.add_input(Input(location, name, kind=kind, example=example or None,  # type: ignore[arg-type]
                                   source="crawl"))
            if form.method == "POST":
                ep.consumes = [_MULTIPART if form.multipart else _URLENCODED]
            surface.add(ep)
        return surface

    def _crawled_paths(self) -> set[str]:
        return {page.path for page in self.pages.values() if page.status not in _GONE}

    def _entry_point(self, method: str, path: str, query: list[tuple[str, str]]) -> EntryPoint:
        template, values = self.templates.match(path)
        ep = EntryPoint(method, template, source="crawl")
        for name, value in sorted(values.items()):
            ep.add_input(Input("path", name, required=True, example=value, source="crawl"))
        for name, value in query:
            ep.add_input(Input("query", name, example=value or None, source="crawl"))
        return ep


_VALUE_SEGMENT = re.compile(r"\d|\.[A-Za-z0-9]{1,5}$|^[0-9a-fA-F-]{8,}$")


def _structural_templates(paths: list[str]) -> dict[str, tuple[str, str]]:
    """Concrete paths whose last segment is a value (`/files/a.pdf`, `/files/b.txt`) → a template.

    A crawler never sees `/files/{name}`, only its links. Two or more value-like siblings under one
    parent directory (not the root, where `/about` and `/login` are separate pages) are taken as one
    route with a path parameter, the way structural parameters are found by other DAST tools.
    """
    groups: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(set(paths)):
        parent, _, last = path.rpartition("/")
        if parent and last and _VALUE_SEGMENT.search(last):
            groups.setdefault(parent, []).append((path, unquote(last)))
    out: dict[str, tuple[str, str]] = {}
    for parent, members in groups.items():
        if len(members) >= 2:
            example = members[0][1]
            for path, _value in members:
                out[path] = (parent + "/{segment}", example)
    return out


async def crawl_site(target: Target, *, known: Surface | None = None, limits: Limits | None = None,
                     max_pages: int = 200, max_requests: int = MAX_REQUESTS,
                     max_depth: int = MAX_DEPTH, exclude_paths: list[str] | None = None,
                     find_openapi: bool = False, headers: Mapping[str, str] | None = None) -> Surface:
    """Crawl from `/` and the known parameterless GET routes; returns the pages and forms found.

    With `find_openapi`, a document served at a well-known path (`/openapi.json`, ...) is merged too.
    `headers` go with every request (a signed-in role's Cookie / Authorization: the pages members see).
    """
    limits = limits or Limits()
    crawl_limits = replace(limits, max_requests=min(limits.max_requests, max_requests))
    scope = Scope.for_base_url(target.base_url, target.scope_hosts, exclude_paths)
    client = ProbeClient(target, scope=scope, limits=crawl_limits, default_headers=headers)
    known = copy.deepcopy(known) if known is not None else Surface()  # merged into below
    crawler = _Crawler(client, target, _Templates(known), max_pages, max_depth)
    served_spec = Surface()
    try:
        async with target.running():
            if find_openapi:
                served_spec = await crawler.fetch_openapi()
                known.merge(served_spec)
                crawler.templates = _Templates(known)
            await crawler.run(_seeds(known))
    finally:
        await client.aclose()
    from bastion.surface.discover import merge_surfaces  # discover imports this module lazily

    merge_surfaces(served_spec, crawler.surface())  # the document's entry points come first
    return served_spec


def _seeds(known: Surface) -> list[str]:
    """Where the crawl starts: `/` and every known GET route that needs no path parameter."""
    return ["/"] + sorted({ep.path for ep in known.entry_points
                           if ep.method == "GET" and "{" not in ep.path and ep.path != "/"})
