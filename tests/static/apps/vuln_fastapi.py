"""A FastAPI app with request-data flaws reached through FastAPI parameters (never imported)."""

from typing import Annotated

from fastapi import Cookie, FastAPI, Header, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from jinja2 import Environment

app = FastAPI(debug=True)
app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=True)


@app.get("/products")
async def products(request: Request, category: str):
    return request.app.state.db.execute(f"SELECT * FROM products WHERE category = '{category}'").fetchall()


@app.get("/")
async def home(display_name: Annotated[str | None, Cookie()] = None):
    return Environment().from_string("Hi " + (display_name or "")).render()


@app.get("/out")
async def out(x_next: Annotated[str, Header()] = "/"):
    return RedirectResponse(x_next)


@app.post("/notes")
async def notes(request: Request):
    body = await request.json()
    return request.app.state.db.execute("INSERT INTO notes VALUES ('" + body["text"] + "')")
