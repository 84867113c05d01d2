"""`bastion init`: the generated starting file loads back, and writing it is safe."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.errors import ConfigError
from bastion.model import load_config
from bastion.model.init import render_starting_config, write_starting_config
from bastion.model.loader import load_config_text
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.surface.openapi import load_openapi

DATA = Path(__file__).parent.parent / "data"


def odd_surface() -> Surface:
    return Surface(entry_points=[
        EntryPoint("GET", "/", inputs=[Input("query", "q")]),
        EntryPoint("POST", '/quote"and#hash/{id}'),
        EntryPoint("get", "/lower"),
        EntryPoint("WEBSOCKET", "/ws"),
        EntryPoint("GET", "/with space"),
        EntryPoint("GET", "/caf\u00e9/\u2603"),
    ])


def test_app_config_round_trips_through_load_config(tmp_path: Path) -> None:
    surface = load_openapi(DATA / "openapi" / "shop-3.0.yaml")
    text = render_starting_config(surface, app_spec="shop.app:create_app(debug=False)", url=None)
    path = write_starting_config(tmp_path / "bastion.yaml", text)
    config = load_config(path, env={})  # the commented ${USER_PASSWORD} must not need the variable
    assert config.target.app == "shop.app:create_app(debug=False)" and config.target.url is None
    assert config.scope.hosts == []
    assert config.role_names() == ["anonymous"]
    assert {f"{r.method} {r.path}" for r in config.access_rules()} == {ep.key for ep in surface.entry_points}
    assert all(r.roles == ("anonymous",) for r in config.access_rules())
    assert set(config.data_classes) == {"pii", "secret"}
    assert "${USER_PASSWORD}" in text and "TODO" in text


def test_url_config_scopes_to_the_url_host() -> None:
    text = render_starting_config(Surface(), app_spec=None, url="http://127.0.0.1:8000/base")
    config = load_config_text(text, {})
    assert config.target.url == "http://127.0.0.1:8000/base"
    assert config.scope.hosts == ["127.0.0.1"]
    assert config.access == {}


def test_app_with_url_becomes_base_url() -> None:
    config = load_config_text(render_starting_config(Surface(), app_spec="m:app", url="https://svc.test"), {})
    assert (config.target.app, config.target.base_url) == ("m:app", "https://svc.test")


def test_odd_paths_are_quoted_or_left_out() -> None:
    text = render_starting_config(odd_surface(), app_spec="m:app", url=None)
    config = load_config_text(text, {})
    assert set(config.access) == {"GET /", 'POST /quote"and#hash/{id}', "GET /lower", "GET /caf\u00e9/\u2603"}
    assert "# not listable here: WEBSOCKET /ws" in text
    assert "# not listable here: GET /with space" in text


def test_a_target_is_required() -> None:
    with pytest.raises(ConfigError, match="needs a target"):
        render_starting_config(Surface(), app_spec=None, url=None)


def test_write_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text("mine\n")
    with pytest.raises(ConfigError, match="already exists; use --force") as info:
        write_starting_config(path, "new\n")
    assert info.value.file == str(path)
    assert path.read_text() == "mine\n"
    write_starting_config(path, "new\n", force=True)
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bastion.yaml"]  # no temp file left behind


def test_write_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        write_starting_config(tmp_path / "missing" / "bastion.yaml", "x\n")
    with pytest.raises(ConfigError, match="is a directory"):
        write_starting_config(tmp_path, "x\n", force=True)


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text("old\n")

    def broken_replace(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("bastion.model.init.os.replace", broken_replace)
    with pytest.raises(ConfigError, match="cannot write file: disk full"):
        write_starting_config(path, "new\n", force=True)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bastion.yaml"]
