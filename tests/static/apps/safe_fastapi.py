"""A hardened FastAPI app: request data only ever reaches sinks as bound parameters (never imported)."""

from typing import Annotated

from fastapi import Cookie, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from jinja2 import Environment, select_autoescape

app = FastAPI()
app.add_middleware(CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True)
env = Environment(autoescape=select_autoescape())
SORTS = {"name": "name", "price": "price_cents"}


@app.get("/products")
async def products(request: Request, category: Annotated[str, Query(max_length=50)] = "",
                   sort: str = "name", page: Annotated[int, Query(ge=1)] = 1):
    order = SORTS.get(sort, "name")
    sql = f"SELECT * FROM products WHERE category = ? ORDER BY {order} LIMIT 10 OFFSET {(page - 1) * 10}"
    return request.app.state.db.execute(sql, (category,)).fetchall()


@app.get("/")
async def home(display_name: Annotated[str | None, Cookie()] = None):
    return env.get_template("home.html").render(name=display_name)


@app.get("/out")
async def out(to: str = "/"):
    return RedirectResponse("/" + to.lstrip("/"))
