"""httpx clients on in-process demo apps."""

from __future__ import annotations

import httpx
from flask import Flask

DEMO_URL = "https://demo.bastion.local"


def flask_client(app: Flask, base_url: str = DEMO_URL) -> httpx.Client:
    """A client that calls the Flask app in-process over WSGI and never follows redirects."""
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url=base_url, follow_redirects=False)
