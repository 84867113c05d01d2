"""A plain Starlette notes service with a few flaws: debug tracebacks, an HTML f-string, a permissive CORS regex."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

NOTES = [{"id": 1, "text": "buy milk"}, {"id": 2, "text": "call the plumber"}, {"id": 3, "text": "renew passport"}]


async def index(request: Request) -> HTMLResponse:
    return HTMLResponse('<html><body><h1>Notes</h1><a href="/find?word=milk">find</a> '
                        '<a href="/page?number=1">page 1</a> <a href="/api/notes">all</a></body></html>')


async def find(request: Request) -> HTMLResponse:
    word = request.query_params.get("word", "")
    hits = [n for n in NOTES if word in n["text"]]
    # FLAW: the search word goes into HTML unescaped
    return HTMLResponse(f"<html><body><p>Results for {word}: {len(hits)}</p></body></html>")


async def page(request: Request) -> JSONResponse:
    size = 2
    # FLAW: int() of raw input; with debug=True the traceback page is served to the client
    number = int(request.query_params.get("number", "1"))
    return JSONResponse(NOTES[(number - 1) * size:number * size])


async def notes(request: Request) -> JSONResponse:
    return JSONResponse(NOTES)


app = Starlette(
    debug=True,  # FLAW: tracebacks to clients
    routes=[Route("/", index), Route("/find", find), Route("/page", page), Route("/api/notes", notes)],
    # FLAW: any origin, with credentials
    middleware=[Middleware(CORSMiddleware, allow_origin_regex=".*", allow_credentials=True, allow_methods=["*"])],
)
