"""Discover a target's surface: framework introspection, handler reading, OpenAPI and crawling."""

from __future__ import annotations

import asyncio
import importlib
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from bastion.surface.model import INPUT_LOCATIONS, EntryPoint, Input, Surface
from bastion.target.budget import Limits
from bastion.target.target import Target


def introspect_app(app: Any) -> Surface:
    """Entry points of an in-process app (Flask, Starlette/FastAPI, Django; middleware unwrapped)."""
    from bastion.surface.flask import find_flask_apps, flask_surface
    from bastion.surface.starlette import find_starlette_apps, starlette_surface
    from bastion.target.django_app import find_django_handler

    surface = Surface()
    for prefix, flask_app in find_flask_apps(app):
        merge_surfaces(surface, flask_surface(flask_app, prefix))
    for prefix, star_app in find_starlette_apps(app):
        merge_surfaces(surface, starlette_surface(star_app, prefix))
    django_handler = find_django_handler(app)
    if django_handler is not None:
        from bastion.surface.django import django_surface

        merge_surfaces(surface, django_surface(django_handler))
    return surface


def _load_openapi(path: str | Path) -> Surface:
    """Load an OpenAPI document through `bastion.surface.openapi` (owned by another module)."""
    try:
        module = importlib.import_module("bastion.surface.openapi")
    except ModuleNotFoundError as exc:
        if exc.name != "bastion.surface.openapi":
            raise
        from bastion.errors import BastionError

        raise BastionError(f"{path}: OpenAPI support is not available in this build") from None
    return module.load_openapi(path)


def merge_surfaces(into: Surface, other: Surface) -> None:
    """Merge entry points; a later source fills examples the first one lacked (crawled path values)."""
    for ep in other.entry_points:
        existing = into.get(ep.method, ep.path)
        into.add(ep)
        if existing is None:
            continue
        for new in ep.inputs:
            for idx, old in enumerate(existing.inputs):
                if old.key == new.key and old.example is None and new.example is not None:
                    existing.inputs[idx] = replace(old, example=new.example)


def _run_sync(coro_factory: Any) -> Any:
    """Run a coroutine to completion from sync code, even when an event loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    result: dict[str, Any] = {}

    def worker() -> None:
        try:
            result["value"] = asyncio.run(coro_factory())
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=worker, name="bastion-crawl")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def _input_sort_key(inp: Input) -> tuple[int, str]:
    return (INPUT_LOCATIONS.index(inp.location), inp.name)


_SOURCE_RANK = {"declared": 0, "openapi": 1, "ast": 2, "config": 3, "crawl": 4}


def _header_rank(inp: Input) -> tuple[int, str]:
    return (_SOURCE_RANK.get(inp.source, 9), inp.name)


def _dedupe_headers(inputs: list[Input]) -> list[Input]:
    """Header names are case-insensitive: keep one input per header, the best-sourced one."""
    best: dict[str, Input] = {}
    for inp in inputs:
        if inp.location != "header":
            continue
        key = inp.name.lower()
        old = best.get(key)
        if old is None or _header_rank(inp) < _header_rank(old):
            best[key] = inp
    return [i for i in inputs if i.location != "header" or best[i.name.lower()] is i]


def normalise(surface: Surface) -> Surface:
    """A sorted copy: entry points by (path, method), inputs by (location, name), for determinism."""
    eps: list[EntryPoint] = []
    for ep in surface.sorted():
        inputs = sorted(_dedupe_headers(ep.inputs), key=_input_sort_key)
        eps.append(replace(ep, inputs=inputs, consumes=list(ep.consumes), produces=list(ep.produces)))
    return Surface(entry_points=eps)


def discover_surface(target: Target, *, openapi: str | Path | None = None, limits: Limits | None = None,
                     crawl: bool = True, max_pages: int = 200,
                     exclude_paths: list[str] | None = None) -> Surface:
    """Everything the target exposes: introspected routes, OpenAPI operations and crawled pages.

    `exclude_paths` (the threat model's scope exclusions) are never fetched by the crawler.
    """
    surface = Surface()
    if target.in_process and target.app is not None:
        merge_surfaces(surface, introspect_app(target.app))
    if openapi is not None:
        merge_surfaces(surface, _load_openapi(openapi))
    if crawl:
        from bastion.surface.crawl import crawl_site

        known = normalise(surface)
        crawled = _run_sync(lambda: crawl_site(target, known=known, limits=limits, max_pages=max_pages,
                                               exclude_paths=exclude_paths,
                                               # A live service may serve its own OpenAPI document.
                                               find_openapi=target.kind == "url" and openapi is None))
        merge_surfaces(surface, crawled)
    if target.kind == "url":
        _add_ambient_headers(surface)
    return normalise(surface)


# Headers servers commonly log, store or trust (access logs, analytics, "client IP" code). Without
# the source a crawler cannot tell whether the app reads them, so they are attacked once, at the
# root, where request-wide middleware runs, instead of on every page.
AMBIENT_HEADERS = ("User-Agent", "Referer", "X-Forwarded-For")


def _add_ambient_headers(surface: Surface) -> None:
    root = surface.get("GET", "/")
    if root is None:
        return
    for name in AMBIENT_HEADERS:
        if not any(i.location == "header" and i.name.lower() == name.lower() for i in root.inputs):
            root.add_input(Input("header", name, source="crawl"))


def _ref(file: str | None, line: int | None, source: str) -> str:
    if file:
        return f"{file}:{line}" if line else file
    return source


def surface_rows(surface: Surface) -> list[tuple[str, str, str, str, str]]:
    """One row per (entry point, input) — (method, path, location, name, source_ref) — for printing.

    An entry point without inputs gets one row with empty location and name.
    """
    rows: list[tuple[str, str, str, str, str]] = []
    for ep in normalise(surface).entry_points:
        if not ep.inputs:
            rows.append((ep.method, ep.path, "", "", _ref(ep.file, ep.line, ep.source)))
        for inp in ep.inputs:
            rows.append((ep.method, ep.path, inp.location, inp.name, _ref(inp.file, inp.line, inp.source)))
    return rows
