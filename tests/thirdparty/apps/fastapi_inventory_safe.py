"""The inventory API built carefully: bound parameters, no shell, allow-listed previews, explicit fields, strong key."""


import ipaddress
import os
import secrets
from typing import Annotated
from urllib.parse import urlsplit

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool

ACCOUNTS = {"ops": {"password": "ops-pass-77", "is_admin": False, "email": "ops@example.org"},
            "root": {"password": "root-pass-99", "is_admin": True, "email": "root@example.org"}}
PREVIEW_HOSTS = {"docs.python.org", "example.org"}


class Credentials(BaseModel):
    username: str
    password: str


class ProfilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, max_length=200)


class PingRequest(BaseModel):
    host: str


def _engine():  # type: ignore[no-untyped-def]
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    with engine.begin() as con:
        con.execute(text("CREATE TABLE stock (sku TEXT, label TEXT, category TEXT, qty INTEGER)"))
        con.execute(text("INSERT INTO stock VALUES ('A-1', 'Bolt', 'hardware', 10), ('B-2', 'Cable', 'network', 4)"))
    return engine


def create_app() -> FastAPI:
    app = FastAPI(title="Inventory")
    engine = _engine()
    signing_key = os.environ.get("INVENTORY_JWT_KEY") or secrets.token_urlsafe(48)
    profiles = {name: dict(acc) for name, acc in ACCOUNTS.items()}

    def current_user(authorization: Annotated[str | None, Header()] = None) -> str:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "missing token")
        try:
            claims = jwt.decode(authorization[7:], signing_key, algorithms=["HS256"], options={"require": ["exp"]})
        except jwt.PyJWTError:
            raise HTTPException(401, "bad token") from None
        if claims.get("sub") not in profiles:
            raise HTTPException(401, "unknown user")
        return str(claims["sub"])

    @app.post("/auth/token")
    def issue_token(body: Credentials) -> dict[str, str]:
        import time

        account = profiles.get(body.username)
        if account is None or not secrets.compare_digest(str(account["password"]), body.password):
            raise HTTPException(401, "invalid credentials")
        claims = {"sub": body.username, "exp": int(time.time()) + 900}
        return {"access_token": jwt.encode(claims, signing_key, algorithm="HS256"), "token_type": "bearer"}

    @app.get("/inventory")
    def list_stock(category: str = "hardware") -> list[dict[str, object]]:
        with engine.connect() as con:
            rows = con.execute(text("SELECT sku, label, qty FROM stock WHERE category = :c"), {"c": category}).all()
        return [{"sku": r[0], "label": r[1], "qty": r[2]} for r in rows]

    @app.post("/tools/ping")
    def ping(body: PingRequest) -> dict[str, str]:
        try:
            address = ipaddress.ip_address(body.host)
        except ValueError:
            raise HTTPException(422, "host must be an IP address") from None
        # No shell and no network tool: the check is whether the address is routable at all.
        return {"output": f"{address} is {'private' if address.is_private else 'public'}"}

    @app.get("/preview")
    def preview(url: str) -> dict[str, str]:
        parts = urlsplit(url)
        if parts.scheme != "https" or parts.hostname not in PREVIEW_HOSTS:
            raise HTTPException(422, "only https links to known documentation sites can be previewed")
        return {"url": url, "snippet": ""}  # fetched by a sandboxed worker, not inline

    @app.get("/me")
    def me(user: Annotated[str, Depends(current_user)]) -> dict[str, object]:
        p = profiles[user]
        return {"username": user, "email": p["email"], "is_admin": p["is_admin"]}

    @app.patch("/me")
    def update_me(patch: ProfilePatch, user: Annotated[str, Depends(current_user)]) -> dict[str, object]:
        if patch.email is not None:
            profiles[user]["email"] = patch.email
        p = profiles[user]
        return {"username": user, "email": p["email"], "is_admin": p["is_admin"]}

    @app.middleware("http")
    async def _headers(request, call_next):  # type: ignore[no-untyped-def]
        resp = await call_next(request)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Cache-Control", "no-store")
        resp.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        return resp

    return app


app = create_app()
