"""A deliberately vulnerable FastAPI inventory API: raw SQL text(), a shell "ping" tool, URL previews, weak JWTs."""


import subprocess
import urllib.request
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool

SIGNING_KEY = "secret"  # FLAW: guessable HS256 key
ACCOUNTS = {"ops": {"password": "ops-pass-77", "is_admin": False, "email": "ops@example.org"},
            "root": {"password": "root-pass-99", "is_admin": True, "email": "root@example.org"}}


class Credentials(BaseModel):
    username: str
    password: str


class ProfilePatch(BaseModel):
    email: str | None = None
    is_admin: bool | None = None  # FLAW: a privileged field on the client-facing model


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
    profiles = {name: dict(acc) for name, acc in ACCOUNTS.items()}

    def current_user(authorization: Annotated[str | None, Header()] = None) -> str:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "missing token")
        try:
            claims = jwt.decode(authorization[7:], SIGNING_KEY, algorithms=["HS256"])
        except jwt.PyJWTError:
            raise HTTPException(401, "bad token") from None
        if claims.get("sub") not in profiles:
            raise HTTPException(401, "unknown user")
        return str(claims["sub"])

    @app.post("/auth/token")
    def issue_token(body: Credentials) -> dict[str, str]:
        account = profiles.get(body.username)
        if account is None or account["password"] != body.password:
            raise HTTPException(401, "invalid credentials")
        return {"access_token": jwt.encode({"sub": body.username}, SIGNING_KEY, algorithm="HS256"),
                "token_type": "bearer"}

    @app.get("/inventory")
    def list_stock(category: str = "hardware") -> list[dict[str, object]]:
        with engine.connect() as con:
            # FLAW: user input formatted into text()
            rows = con.execute(text(f"SELECT sku, label, qty FROM stock WHERE category = '{category}'")).all()
        return [{"sku": r[0], "label": r[1], "qty": r[2]} for r in rows]

    @app.post("/tools/ping")
    def ping(body: PingRequest) -> dict[str, str]:
        # FLAW: shell=True with the host pasted in
        run = subprocess.run(f"ping -c 1 -W 1 {body.host}", shell=True, capture_output=True, text=True, timeout=5)
        return {"output": run.stdout + run.stderr}

    @app.get("/preview")
    def preview(url: str) -> dict[str, str]:
        # FLAW: fetches any URL the caller names, internal ones included
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310
                snippet = resp.read(2048).decode("utf-8", "replace")
        except Exception as exc:  # noqa: BLE001
            raise HTTPException(502, f"cannot fetch: {exc}") from None
        return {"url": url, "snippet": snippet}

    @app.get("/me")
    def me(user: Annotated[str, Depends(current_user)]) -> dict[str, object]:
        p = profiles[user]
        return {"username": user, "email": p["email"], "is_admin": p["is_admin"]}

    @app.patch("/me")
    def update_me(patch: ProfilePatch, user: Annotated[str, Depends(current_user)]) -> dict[str, object]:
        # FLAW: every field of the model is copied, is_admin included
        profiles[user].update(patch.model_dump(exclude_none=True))
        p = profiles[user]
        return {"username": user, "email": p["email"], "is_admin": p["is_admin"]}

    return app


app = create_app()
