"""Benign requests never replace a role's credentials with made-up cookie or header values."""

from __future__ import annotations

from bastion.identity.session import RoleSession
from bastion.surface.model import EntryPoint, Input
from bastion.surface.requests import build_request


def _dashboard() -> EntryPoint:
    """A Flask view using `session` and a FastAPI-style `authorization: str = Header()` plus harmless inputs."""
    return EntryPoint("GET", "/dashboard", inputs=[
        Input("cookie", "session", source="ast"), Input("header", "Authorization", source="ast"),
        Input("header", "X-Api-Key", source="ast"), Input("header", "X-Request-Id", source="ast"),
        Input("cookie", "theme", example="dark", source="crawl"), Input("query", "page", source="ast")])


def test_session_cookie_and_credential_headers_are_left_to_the_role() -> None:
    spec = build_request(_dashboard())
    assert spec.cookies == {"theme": "dark"}  # the server-set value seen while crawling is kept
    assert spec.headers == {"X-Request-Id": "bastion"}
    role = RoleSession(name="mira", cookies={"session": "real-signed-cookie"},
                       headers={"Authorization": "Bearer real-token"})
    sent = role.apply(spec.kwargs())
    assert sent["cookies"]["session"] == "real-signed-cookie"
    assert sent["headers"]["authorization"] == "Bearer real-token"


def test_injected_cookie_and_header_are_still_sent() -> None:
    ep = _dashboard()
    assert build_request(ep, ep.input("cookie", "session"), "'").cookies["session"] == "'"
    assert build_request(ep, ep.input("header", "Authorization"), "x").headers["Authorization"] == "x"


def test_sign_out_links_are_listed_but_never_followed() -> None:
    """A crawled `/account/sign-out?next=/` is an entry point (open redirects live there), never a fetched page."""
    import asyncio

    from flask import Flask, redirect, request

    from bastion.surface.crawl import crawl_site
    from bastion.target import Target

    app = Flask(__name__)
    visits: list[str] = []

    @app.before_request
    def _log() -> None:
        visits.append(request.path)

    @app.route("/")
    def index() -> str:
        return ('<a href="/account/sign-out?next=/">Sign out</a> <a href="/posts/7/delete">Delete</a>'
                ' <a href="/about">About</a>')

    @app.route("/about")
    def about() -> str:
        return "about"

    @app.route("/account/sign-out")
    def sign_out():  # type: ignore[no-untyped-def]
        return redirect(request.args.get("next", "/"))

    surface = asyncio.run(crawl_site(Target.from_app(app)))
    assert "/account/sign-out" not in visits and not any("delete" in v for v in visits)
    sign_out_ep = surface.get("GET", "/account/sign-out")
    assert sign_out_ep is not None and sign_out_ep.input("query", "next") is not None
    assert not any("delete" in ep.path for ep in surface.entry_points)
