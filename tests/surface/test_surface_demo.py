"""Discovery on the shipped demo (loose assertions: the demo's routes belong to another module)."""

from __future__ import annotations

import sys
import types

import pytest

from bastion.surface.discover import discover_surface, surface_rows
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target import Target


def test_demo_surface_has_header_cookie_and_path_inputs() -> None:
    demo = pytest.importorskip("bastion.demo")
    surface = discover_surface(Target.from_app(demo.create_app("none")))
    locations = {i.location for ep in surface.entry_points for i in ep.inputs}
    assert {"header", "cookie", "path"} <= locations
    assert surface_rows(surface)


def test_openapi_document_is_merged(monkeypatch, tmp_path) -> None:
    spec = tmp_path / "openapi.yaml"
    spec.write_text("openapi: 3.0.0\n")
    seen: list[object] = []

    def load_openapi(path):
        seen.append(path)
        ep = EntryPoint("GET", "/from-spec", source="openapi")
        ep.add_input(Input("query", "token", source="openapi"))
        return Surface([ep])

    fake = types.ModuleType("bastion.surface.openapi")
    fake.load_openapi = load_openapi
    monkeypatch.setitem(sys.modules, "bastion.surface.openapi", fake)
    surface = discover_surface(Target.from_url("http://127.0.0.1:9"), openapi=spec, crawl=False)
    assert seen == [spec]
    assert surface.get("GET", "/from-spec").input("query", "token").source == "openapi"
    assert ("GET", "/from-spec", "query", "token", "openapi") in surface_rows(surface)
