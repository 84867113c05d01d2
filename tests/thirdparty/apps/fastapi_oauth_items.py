"""A deliberately vulnerable FastAPI app built on the tutorial's OAuth2 password flow.

`POST /token` takes the `username`/`password` form fields and answers `{"access_token", "token_type"}`.
Flaws: items belong to users but `GET/DELETE /items/{item_id}` never check the owner, and `/admin/stats`
trusts the `role` claim of a JWT it decodes without verifying the signature.
"""


import datetime as dt
import secrets
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Form, HTTPException
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel

SIGNING_KEY = secrets.token_urlsafe(32)
ACCOUNTS = {"ana": {"password": "ana-pw-4412", "role": "user"},
            "ben": {"password": "ben-pw-9981", "role": "user"},
            "ops": {"password": "ops-pw-5531", "role": "admin"}}
SEED_ITEMS = ((1, "ana", "Ana's notebook", "ana private: locker code 5521"),
              (2, "ben", "Ben's camera", "ben private: serial BX-221"),
              (3, "ana", "Ana's bike", "ana private: lock 0042"))

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")


class ItemIn(BaseModel):
    title: str
    note: str = ""


def reset(app: FastAPI) -> None:
    """Restore the seeded items (the scan's reset hook after state-changing probes)."""
    app.state.items.clear()
    app.state.items.update({i: {"id": i, "owner": o, "title": t, "note": n} for i, o, t, n in SEED_ITEMS})


def create_app() -> FastAPI:
    app = FastAPI(title="Items")
    items: dict[int, dict[str, Any]] = {}
    app.state.items = items
    reset(app)

    def current_user(token: Annotated[str, Depends(oauth2_scheme)]) -> str:
        try:
            claims = jwt.decode(token, SIGNING_KEY, algorithms=["HS256"])
        except jwt.PyJWTError:
            raise HTTPException(401, "Could not validate credentials",
                                headers={"WWW-Authenticate": "Bearer"}) from None
        if claims.get("sub") not in ACCOUNTS:
            raise HTTPException(401, "Could not validate credentials")
        return str(claims["sub"])

    @app.post("/token")
    def login(username: Annotated[str, Form()], password: Annotated[str, Form()]) -> dict[str, str]:
        account = ACCOUNTS.get(username)
        if account is None or not secrets.compare_digest(account["password"], password):
            raise HTTPException(400, "Incorrect username or password")
        now = dt.datetime.now(dt.UTC)
        token = jwt.encode({"sub": username, "role": account["role"], "iat": now,
                            "exp": now + dt.timedelta(minutes=30)}, SIGNING_KEY, algorithm="HS256")
        return {"access_token": token, "token_type": "bearer"}

    @app.get("/users/me")
    def me(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
        return {"username": user, "role": ACCOUNTS[user]["role"]}

    @app.get("/items")
    def my_items(user: Annotated[str, Depends(current_user)]) -> list[dict[str, Any]]:
        return [i for i in items.values() if i["owner"] == user]

    @app.post("/items", status_code=201)
    def create_item(body: ItemIn, user: Annotated[str, Depends(current_user)]) -> dict[str, Any]:
        new_id = max(items, default=0) + 1
        items[new_id] = {"id": new_id, "owner": user, "title": body.title, "note": body.note}
        return items[new_id]

    @app.get("/items/{item_id}")
    def read_item(item_id: int, user: Annotated[str, Depends(current_user)]) -> dict[str, Any]:
        item = items.get(item_id)
        if item is None:  # FLAW: the owner is never compared with `user`
            raise HTTPException(404, "Item not found")
        return item

    @app.delete("/items/{item_id}", status_code=204)
    def delete_item(item_id: int, user: Annotated[str, Depends(current_user)]) -> None:
        if items.pop(item_id, None) is None:  # FLAW: anyone deletes anyone's item
            raise HTTPException(404, "Item not found")

    @app.get("/admin/stats")
    def admin_stats(token: Annotated[str, Depends(oauth2_scheme)]) -> dict[str, Any]:
        # FLAW: the role is read from a payload whose signature is never checked
        claims = jwt.decode(token, options={"verify_signature": False})
        if claims.get("role") != "admin":
            raise HTTPException(403, "Admins only")
        return {"users": sorted(ACCOUNTS), "items": len(items)}

    return app


app = create_app()
