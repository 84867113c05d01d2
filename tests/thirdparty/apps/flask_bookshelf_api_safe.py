"""The well-built twin of the bookshelf API: same routes and document, every flaw fixed."""

from __future__ import annotations

from flask import Flask

from tests.thirdparty.apps.flask_bookshelf_api import create_app as _create_app


def create_app() -> Flask:
    return _create_app(hardened=True)
