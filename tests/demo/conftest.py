"""Clients for the demo apps: httpx over WSGI (Flask) and Starlette's TestClient (FastAPI)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import httpx
import pytest

from bastion.demo import create_app, create_fastapi_app

from .clients import DEMO_URL, flask_client


@pytest.fixture
def flask_demo() -> Callable[..., httpx.Client]:
    """flask_demo(flaws, base_url=DEMO_URL) -> httpx client on a fresh Flask demo."""
    def make(flaws: str = "all", base_url: str = DEMO_URL) -> httpx.Client:
        return flask_client(create_app(flaws), base_url)

    return make


@pytest.fixture
def fastapi_demo() -> Iterator[Callable[..., httpx.Client]]:
    """fastapi_demo(flaws, base_url=DEMO_URL) -> TestClient on a fresh FastAPI demo."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette nudges towards httpx2
        from fastapi.testclient import TestClient
    clients: list[TestClient] = []

    def make(flaws: str = "all", base_url: str = DEMO_URL) -> httpx.Client:
        client = TestClient(create_fastapi_app(flaws), base_url=base_url, follow_redirects=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
