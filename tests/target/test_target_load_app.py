"""Loading apps from specs and telling WSGI from ASGI."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.errors import TargetError
from bastion.target import Target, load_app
from bastion.target.target import detect_app_kind

_counter = itertools.count()

APP_MODULE = '''
from flask import Flask

calls = []


def create_app(name="default", debug=False, tags=()):
    calls.append((name, debug, tuple(tags)))
    app = Flask(name)
    app.config["NAME"] = name
    return app


def broken_factory():
    raise RuntimeError("missing DATABASE_URL")


class Holder:
    app = Flask("held")


app = create_app("module-level")
'''


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh importable module name holding APP_MODULE."""
    name = f"bastion_test_app_{next(_counter)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(APP_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_module_attr(app_module: str) -> None:
    assert load_app(f"{app_module}:app").config["NAME"] == "module-level"


def test_nested_attr(app_module: str) -> None:
    assert load_app(f"{app_module}:Holder.app").name == "held"


def test_factory_call(app_module: str) -> None:
    assert load_app(f"{app_module}:create_app()").config["NAME"] == "default"


def test_factory_with_literal_args_and_kwargs(app_module: str) -> None:
    app = load_app(f"{app_module}:create_app('x', debug=True, tags=['a', 'b'])")
    assert app.config["NAME"] == "x"
    assert sys.modules[app_module].calls[-1] == ("x", True, ("a", "b"))


def test_target_from_spec(app_module: str) -> None:
    target = Target.from_spec(f"{app_module}:create_app(name='spec')")
    assert target.kind == "wsgi" and target.in_process
    assert target.spec == f"{app_module}:create_app(name='spec')"


@pytest.mark.parametrize("spec", ["no_colon_here", "mod:", ":app", "mod:1 +", "mod:app[0]", "mod:'str'"])
def test_bad_spec_names_the_spec(spec: str) -> None:
    with pytest.raises(TargetError) as err:
        load_app(spec)
    assert str(err.value).startswith(spec + ":")


def test_missing_module_names_the_spec() -> None:
    expected = r"^no_such_module_xyz:app: cannot import module 'no_such_module_xyz'"
    with pytest.raises(TargetError, match=expected):
        load_app("no_such_module_xyz:app")


def test_missing_attribute_names_the_spec(app_module: str) -> None:
    expected = rf"^{app_module}:nope: module '{app_module}' has no attribute 'nope'"
    with pytest.raises(TargetError, match=expected):
        load_app(f"{app_module}:nope")


@pytest.mark.parametrize("call", ["create_app(name)", "create_app(__import__('os').getcwd())",
                                  "create_app(*['a'])", "create_app(**{'name': 'a'})",
                                  "create_app(1 if 1 else 2)"])
def test_non_literal_arguments_are_refused_and_never_evaluated(app_module: str, call: str) -> None:
    spec = f"{app_module}:{call}"
    with pytest.raises(TargetError, match="literals") as err:
        load_app(spec)
    assert str(err.value).startswith(spec + ":")
    module = sys.modules.get(app_module)  # refused before the import, or at least before the call
    assert module is None or module.calls == [("module-level", False, ())]


def test_factory_that_raises_names_the_spec(app_module: str) -> None:
    expected = r"broken_factory\(\): factory raised RuntimeError: missing DATABASE_URL"
    with pytest.raises(TargetError, match=expected):
        load_app(f"{app_module}:broken_factory()")


def test_module_that_raises_on_import_names_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bastion_test_bad_import.py").write_text("raise KeyError('SECRET_KEY')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(TargetError, match=r"^bastion_test_bad_import:app: .*KeyError"):
            load_app("bastion_test_bad_import:app")
    finally:
        sys.modules.pop("bastion_test_bad_import", None)


def test_hostile_deep_expression_is_a_target_error() -> None:
    spec = "mod:" + "(" * 5000 + "app" + ")" * 5000
    with pytest.raises(TargetError):
        load_app(spec)


# --- detect_app_kind ----------------------------------------------------------------------------------

def plain_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    return []


async def plain_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    return None


class ClassWsgi:
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        return []


class ClassAsgi:
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None


def test_detects_flask() -> None:
    from flask import Flask

    assert detect_app_kind(Flask("x")) == "wsgi"


def test_detects_fastapi() -> None:
    from fastapi import FastAPI

    assert detect_app_kind(FastAPI()) == "asgi"


@pytest.mark.parametrize(("app", "kind"), [(plain_wsgi, "wsgi"), (plain_asgi, "asgi"), (ClassWsgi(), "wsgi"),
                                           (ClassAsgi(), "asgi")])
def test_detects_plain_callables(app: Any, kind: str) -> None:
    assert detect_app_kind(app) == kind


@pytest.mark.parametrize("garbage", [42, "app", None, lambda: None, lambda a, b, c, d: None, object()])
def test_garbage_is_a_target_error(garbage: Any) -> None:
    with pytest.raises(TargetError, match="my:spec"):
        detect_app_kind(garbage, "my:spec")


def test_from_app_with_garbage_names_the_spec() -> None:
    with pytest.raises(TargetError, match="pkg:thing"):
        Target.from_app(12, spec="pkg:thing")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "not a url", "http://", "127.0.0.1:8000"])
def test_bad_target_urls(url: str) -> None:
    with pytest.raises(TargetError, match="URL"):
        Target.from_url(url)
