"""The FastAPI demo plants its subset of the shared flaws; its hardened twin is clean."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import httpx
import pytest

from bastion.demo import FASTAPI_FLAWS, create_fastapi_app
from bastion.demo.policy import CSP, TRUSTED_ORIGIN

Probe = Callable[[httpx.Client], bool]


def _cookie(c: httpx.Client) -> str:
    c.cookies.clear()  # TestClient keeps cookies: a known session is not re-issued
    return next(v for v in c.get("/").headers.get_list("set-cookie") if v.startswith("session_id="))


PROBES: dict[str, Probe] = {
    "version_banner": lambda c: "1.4.2" in c.get("/").headers.get("server", ""),
    "missing_security_headers": lambda c: not any(
        n in c.get("/").headers for n in ("content-security-policy", "x-content-type-options",
                                          "x-frame-options", "referrer-policy")),
    "missing_hsts": lambda c: "strict-transport-security" not in c.get("/").headers,
    "insecure_session_cookie": lambda c: not {"httponly", "secure", "samesite"} & set(
        part.strip().split("=")[0] for part in _cookie(c).lower().split(";")),
    "cors_reflect_origin": lambda c: c.get("/api/products", headers={"Origin": "https://attacker.example"})
    .headers.get("access-control-allow-origin") == "https://attacker.example",
    "cors_null_origin": lambda c: c.get("/api/products", headers={"Origin": "null"})
    .headers.get("access-control-allow-origin") == "null",
    "sqli_error": lambda c: "sqlite3.OperationalError" in c.get("/products", params={"category": "'"}).text,
    "xss_reflected": lambda c: "<bstf1>" in c.get("/search", params={"q": "<bstf1>"}).text,
    "ssti": lambda c: "1337" in c.get("/", headers={"Cookie": "display_name={{7*191}}"}).text,
    "code_injection": lambda c: "bstcalc" in c.get("/tools/calc", params={"expr": "'bst'+'calc'"}).text,
    "open_redirect": lambda c: c.get("/logout", params={"next": "https://evil.example/"})
    .headers.get("location") == "https://evil.example/",
}


def test_every_fastapi_flaw_has_a_probe() -> None:
    assert set(PROBES) == FASTAPI_FLAWS


@pytest.mark.parametrize("flaw_id", sorted(FASTAPI_FLAWS))
def test_fastapi_flaw_planted_alone(flaw_id: str, fastapi_demo: Callable[..., httpx.Client]) -> None:
    assert PROBES[flaw_id](fastapi_demo(flaw_id))


@pytest.mark.parametrize("flaw_id", sorted(FASTAPI_FLAWS))
def test_fastapi_flaw_absent_from_hardened_twin(flaw_id: str,
                                                fastapi_demo: Callable[..., httpx.Client]) -> None:
    assert not PROBES[flaw_id](fastapi_demo("none"))


def test_all_plants_every_fastapi_flaw(fastapi_demo: Callable[..., httpx.Client]) -> None:
    client = fastapi_demo("all")
    assert all(probe(client) for probe in PROBES.values())


def test_flaws_it_does_not_implement_are_accepted(fastapi_demo: Callable[..., httpx.Client]) -> None:
    client = fastapi_demo("xxe,path_traversal,xss_reflected")
    assert PROBES["xss_reflected"](client)
    assert client.app.state.demo.flaws == frozenset({"xss_reflected"})  # type: ignore[attr-defined]


def test_same_routes_in_both_twins() -> None:
    def routes(flaws: str) -> set[tuple[str, str]]:
        return {(r.path, ",".join(sorted(r.methods))) for r in create_fastapi_app(flaws).routes
                if hasattr(r, "methods")}

    assert routes("all") == routes("none")


def test_inputs_are_typed_parameters() -> None:
    from bastion.demo import fastapi_app

    assert "display_name" in inspect.signature(fastapi_app.home).parameters
    assert "category" in inspect.signature(fastapi_app.products).parameters
    assert "update" in inspect.signature(fastapi_app.api_profile).parameters


def test_hardened_fastapi_behaviour(fastapi_demo: Callable[..., httpx.Client]) -> None:
    client = fastapi_demo("none")
    home = client.get("/")
    assert home.headers["content-security-policy"] == CSP
    assert home.headers["strict-transport-security"].startswith("max-age=")
    cookie = _cookie(client)
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    trusted = client.get("/api/products", headers={"Origin": TRUSTED_ORIGIN})
    assert trusted.headers["access-control-allow-origin"] == TRUSTED_ORIGIN
    assert "Origin" in trusted.headers["vary"]
    assert "{{7*191}}" in client.get("/", headers={"Cookie": "display_name={{7*191}}"}).text
    assert "&lt;b&gt;" in client.get("/search", params={"q": "<b>"}).text
    assert "No products" in client.get("/products", params={"category": "'"}).text
    assert client.get("/tools/calc", params={"expr": "'a'+'b'"}).status_code == 400
    assert "<output>42</output>" in client.get("/tools/calc", params={"expr": "6*7"}).text
    assert client.get("/api/products/abc").status_code == 422
    assert client.get("/api/products/99999999999").status_code == 422
    signup = client.post("/api/newsletter", json={"email": "x@y.example"})
    assert signup.json() == {"subscribed": "x@y.example"}
    assert client.put("/api/profile", json={"display_name": "X"}).status_code == 401
    login = client.post("/login", data={"username": "guest", "password": "guest", "next": "https://evil.example"})
    assert login.status_code == 303 and login.headers["location"] == "/"
    client.cookies.set("session_id", login.cookies["session_id"])
    r = client.put("/api/profile", json={"display_name": "G", "address": {"city": "Oslo"}})
    assert r.json() == {"display_name": "G", "bio": "", "address": {"city": "Oslo"}}
    bad = client.post("/login", data={"username": "guest", "password": "nope"})
    assert bad.status_code == 401 and "Invalid username" in bad.text
