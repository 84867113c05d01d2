"""The FastAPI demo: a smaller variant of the shop sharing the flaw registry (see FASTAPI_FLAWS).

Inputs are typed FastAPI parameters (Query, Header, Cookie, Form, Pydantic bodies) so they can be
read from the signatures. The SSTI flaw is cookie-borne here too (`display_name` on GET /).
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Annotated, Any

import jinja2
from fastapi import Cookie, Depends, FastAPI, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, Field

from bastion.demo.arithmetic import evaluate_arithmetic
from bastion.demo.db import verify_password
from bastion.demo.flaws import FASTAPI_FLAWS, resolve_flaws
from bastion.demo.policy import (
    EMAIL,
    HARDENING_HEADERS,
    HSTS,
    SESSION_COOKIE,
    VERSION_HEADERS,
    origin_allowed,
    safe_next,
)
from bastion.demo.workspace import Workspace

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(FilePath(__file__).parent / "templates" / "fastapi")),
    autoescape=True,
)
_SORTS = {"name": "name", "price": "price_cents"}


@dataclass
class FastAPIDemoState:
    workspace: Workspace
    flaws: frozenset[str]

    def planted(self, flaw_id: str) -> bool:
        return flaw_id in self.flaws


class Address(BaseModel):
    city: str = Field(default="", max_length=80)


class ProfileUpdate(BaseModel):
    display_name: str = Field(default="", max_length=80)
    bio: str = Field(default="", max_length=1000)
    address: Address = Field(default_factory=Address)


class NewsletterSignup(BaseModel):
    email: str = Field(max_length=254)


def create_fastapi_app(flaws: str | Iterable[str] | None = "all") -> FastAPI:
    """Build the FastAPI demo; requested flaws it does not implement are simply not planted."""
    planted_flaws = resolve_flaws(flaws) & FASTAPI_FLAWS
    workspace = Workspace()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(title="DemoCorp API", version="1.4.2", lifespan=lifespan)
    workspace.attach(app)
    app.state.demo = FastAPIDemoState(workspace, planted_flaws)
    app.middleware("http")(_response_policy)
    _add_routes(app)
    return app


def demo_state(request: Request) -> FastAPIDemoState:
    return request.app.state.demo  # type: ignore[no-any-return]


def get_db(request: Request) -> Iterator[sqlite3.Connection]:
    """One connection per request, closed afterwards."""
    conn = demo_state(request).workspace.db.connect()
    try:
        yield conn
    finally:
        conn.close()


State = Annotated[FastAPIDemoState, Depends(demo_state)]
DB = Annotated[sqlite3.Connection, Depends(get_db)]


def current_user(request: Request, conn: DB) -> sqlite3.Row | None:
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return None
    row = conn.execute("SELECT user_id FROM sessions WHERE sid = ?", (sid,)).fetchone()
    if row is None or row["user_id"] is None:
        return None
    return conn.execute("SELECT * FROM users WHERE id = ?", (row["user_id"],)).fetchone()  # type: ignore[no-any-return]


User = Annotated[sqlite3.Row | None, Depends(current_user)]


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_TEMPLATES.get_template(template).render(**context), status_code=status_code)


def set_session_cookie(resp: Response, request: Request, state: FastAPIDemoState, sid: str) -> None:
    """Set (or, with an empty value, clear) the session cookie with the flags the flaws allow."""
    max_age = None if sid else 0
    if state.planted("insecure_session_cookie"):
        resp.set_cookie(SESSION_COOKIE, sid, path="/", max_age=max_age, httponly=False,
                        samesite=None)  # type: ignore[arg-type]
    else:
        resp.set_cookie(SESSION_COOKIE, sid, path="/", max_age=max_age, secure=request.url.scheme == "https",
                        httponly=True, samesite="lax")


def redirect_after_auth(state: FastAPIDemoState, target: str | None, fallback: str) -> RedirectResponse:
    location = (target or fallback) if state.planted("open_redirect") else safe_next(target, fallback)
    return RedirectResponse(location, status_code=303)


async def _response_policy(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Security headers, version banner and CORS, as the planted flaws allow."""
    state = demo_state(request)
    is_api = request.url.path.startswith("/api/")
    origin = request.headers.get("origin")
    if is_api and request.method == "OPTIONS" and request.headers.get("access-control-request-method"):
        resp: Response = Response(status_code=204)
    else:
        resp = await call_next(request)
    if not state.planted("missing_security_headers"):
        resp.headers.update(HARDENING_HEADERS)
    if not state.planted("missing_hsts") and request.url.scheme == "https":
        resp.headers["Strict-Transport-Security"] = HSTS
    if state.planted("version_banner"):
        resp.headers.update(VERSION_HEADERS)
        resp.headers["X-Powered-By"] = "FastAPI/0.115.0 Starlette/0.41.0"
    if is_api:
        resp.headers.append("Vary", "Origin")
        if origin and origin_allowed(origin, state.flaws):
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Access-Control-Allow-Credentials"] = "true"
            if request.method == "OPTIONS":
                resp.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT"
                resp.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return resp


def _add_routes(app: FastAPI) -> None:
    app.get("/", response_class=HTMLResponse)(home)
    app.get("/healthz")(healthz)
    app.get("/login", response_class=HTMLResponse)(login_form)
    app.post("/login")(login)
    app.get("/logout")(logout)
    app.get("/products", response_class=HTMLResponse)(products)
    app.get("/search", response_class=HTMLResponse)(search)
    app.get("/tools/calc", response_class=HTMLResponse)(calc)
    app.get("/api/products")(api_products)
    app.get("/api/products/{product_id}")(api_product)
    app.post("/api/newsletter")(api_newsletter)
    app.put("/api/profile")(api_profile)


async def home(request: Request, state: State, conn: DB,
               display_name: Annotated[str | None, Cookie()] = None) -> HTMLResponse:
    greeting = ""
    if display_name and state.planted("ssti"):
        # The cookie becomes part of the template source: that is the flaw, not the missing autoescape.
        template = jinja2.Environment().from_string("Welcome back, " + display_name + "!")  # noqa: S701
        greeting = template.render()
    elif display_name:
        greeting = f"Welcome back, {display_name}!"
    resp = page("home.html", title="Home", greeting=greeting)
    if not request.cookies.get(SESSION_COOKIE):
        sid = secrets.token_urlsafe(24)
        conn.execute("INSERT INTO sessions (sid, user_id) VALUES (?, NULL)", (sid,))
        set_session_cookie(resp, request, state, sid)
    return resp


async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def login_form(next: Annotated[str, Query(max_length=500)] = "/") -> HTMLResponse:
    return page("login.html", title="Log in", next_url=next, error=None)


async def login(request: Request, state: State, conn: DB,
                username: Annotated[str, Form(max_length=80)], password: Annotated[str, Form(max_length=200)],
                next: Annotated[str, Form(max_length=500)] = "/") -> Response:
    user = conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    if user is None or not verify_password(user["password_hash"], password):
        return page("login.html", status_code=401, title="Log in", next_url=next,
                    error="Invalid username or password.")
    sid = secrets.token_urlsafe(24)
    conn.execute("INSERT INTO sessions (sid, user_id) VALUES (?, ?)", (sid, user["id"]))
    resp = redirect_after_auth(state, next, "/")
    set_session_cookie(resp, request, state, sid)
    return resp


async def logout(request: Request, state: State, conn: DB,
                 next: Annotated[str, Query(max_length=500)] = "/") -> RedirectResponse:
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        conn.execute("DELETE FROM sessions WHERE sid = ?", (sid,))
    resp = redirect_after_auth(state, next, "/")
    set_session_cookie(resp, request, state, "")
    return resp


async def products(state: State, conn: DB, category: Annotated[str, Query(max_length=200)] = "",
                   page_no: Annotated[int, Query(alias="page", ge=1, le=1000)] = 1,
                   sort: Annotated[str, Query(max_length=20)] = "name") -> Response:
    order = _SORTS.get(sort, "name")
    offset = (page_no - 1) * 10
    if state.planted("sqli_error"):
        where = f"WHERE category = '{category}'" if category else ""
        try:
            sql = f"SELECT * FROM products {where} ORDER BY {order} LIMIT 10 OFFSET {offset}"
            rows = conn.execute(sql).fetchall()
        except sqlite3.Error as exc:
            return PlainTextResponse(f"Database error: sqlite3.{type(exc).__name__}: {exc}", status_code=500)
    elif category:
        rows = conn.execute(f"SELECT * FROM products WHERE category = ? ORDER BY {order} LIMIT 10 OFFSET ?",
                            (category, offset)).fetchall()
    else:
        rows = conn.execute(f"SELECT * FROM products ORDER BY {order} LIMIT 10 OFFSET ?",
                            (offset,)).fetchall()
    return page("products.html", title="Products", products=rows, category=category, page=page_no)


async def search(state: State, conn: DB,
                 q: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    results: list[sqlite3.Row] = []
    if q:
        results = conn.execute("SELECT * FROM products WHERE name LIKE ? ORDER BY name LIMIT 20",
                               (f"%{q}%",)).fetchall()
    shown = Markup(q) if state.planted("xss_reflected") and q else q  # noqa: S704 -- planted flaw
    return page("search.html", title="Search", searched=q is not None, query=shown, results=results)


async def calc(state: State, expr: Annotated[str | None, Query(max_length=500)] = None) -> HTMLResponse:
    if expr is None:
        return page("calc.html", title="Calculator", result=None, error=None)
    try:
        result = eval(expr) if state.planted("code_injection") else evaluate_arithmetic(expr)
    except Exception as exc:  # any bad formula is the user's mistake, not a server error
        return page("calc.html", status_code=400, title="Calculator", result=None,
                    error=f"Cannot evaluate: {type(exc).__name__}")
    return page("calc.html", title="Calculator", result=result, error=None)


def _product(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "category": row["category"],
            "price": row["price_cents"] / 100, "description": row["description"]}


async def api_products(conn: DB, page_no: Annotated[int, Query(alias="page", ge=1, le=1000)] = 1,
                       limit: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, Any]:
    rows = conn.execute("SELECT * FROM products ORDER BY id LIMIT ? OFFSET ?",
                        (limit, (page_no - 1) * limit)).fetchall()
    return {"page": page_no, "items": [_product(r) for r in rows]}


async def api_product(product_id: Annotated[int, Path(ge=1, le=2147483647)], conn: DB) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail="not found")
    return _product(row)


async def api_newsletter(signup: NewsletterSignup, conn: DB) -> Any:
    email = signup.email.strip().lower()
    if not EMAIL.match(email):
        return JSONResponse({"error": "invalid email address"}, status_code=400)
    conn.execute("INSERT OR IGNORE INTO newsletter (email) VALUES (?)", (email,))
    return {"subscribed": email}


async def api_profile(update: ProfileUpdate, user: User, conn: DB) -> Any:
    if user is None:
        return JSONResponse({"error": "authentication required"}, status_code=401)
    conn.execute("UPDATE users SET display_name = ?, bio = ?, city = ? WHERE id = ?",
                 (update.display_name or user["display_name"], update.bio, update.address.city, user["id"]))
    return update.model_dump()

