"""A deliberately vulnerable Flask REST API in the style of the known API training apps (users, books, JWT).

Flaws (`create_app()`): sign-up takes `admin: true`, a debug route dumps every account with its password,
login tells "user not found" from "password incorrect", any user reads any book's secret by title, any user
changes any user's password through the path, an email regex that backtracks, an HS256 key from a word
list, no login throttling and SQL built with an f-string in `GET /users/v1/{username}`. The well-built twin
(`create_app(hardened=True)`, module `flask_bookshelf_api_safe`) fixes each one and keeps the same routes.
The service describes itself with its own OpenAPI document at `/openapi.json`, linked from `/ui/`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import jwt
from flask import Flask, g, jsonify, request

WEAK_KEY = "secret123"  # FLAW: a word-list key
USERS = (("name1", "pass1", "mail1@mail.com", 0), ("admin", "pass1", "admin@mail.com", 1))
BOOKS = (("bookTitle16", "secret for bookTitle16", "name1"), ("bookTitle77", "secret for bookTitle77", "admin"))
LOOSE_EMAIL = re.compile(r"^([0-9a-zA-Z]([-.\w]*[0-9a-zA-Z])*@{1}([0-9a-zA-Z][-\w]*[0-9a-zA-Z]\.)+[a-zA-Z]{2,9})$")
EMAIL_CHECK_CHARS = 22
STRICT_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){1,8}$")
DOCS_PAGE = """<!doctype html><html><head><title>Bookshelf API docs</title></head><body>
<h1>Bookshelf API</h1><div id="swagger-ui"></div>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
<p><a href="/openapi.json">OpenAPI document</a></p></body></html>"""


def _hash(password: str) -> str:
    salt = secrets.token_hex(8)
    return salt + "$" + hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 100_000).hex()


def _check(stored: str, password: str) -> bool:
    if "$" not in stored:
        return hmac.compare_digest(stored, password)
    salt, digest = stored.split("$", 1)
    return hmac.compare_digest(digest, hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(),
                                                           100_000).hex())


def _init_db(path: str, hardened: bool) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    con.executescript("""
        DROP TABLE IF EXISTS users; DROP TABLE IF EXISTS books;
        CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, password TEXT, email TEXT,
                            admin INTEGER);
        CREATE TABLE books (id INTEGER PRIMARY KEY, book_title TEXT, secret_content TEXT, owner TEXT);
    """)
    for name, password, email, admin in USERS:
        con.execute("INSERT INTO users (username, password, email, admin) VALUES (?, ?, ?, ?)",
                    (name, _hash(password) if hardened else password, email, admin))
    con.executemany("INSERT INTO books (book_title, secret_content, owner) VALUES (?, ?, ?)", BOOKS)
    con.commit()
    con.close()


def openapi_document() -> dict[str, Any]:
    """The API's own OpenAPI 3.0 description (hand-written, as these services ship it)."""
    def body(props: dict[str, str], required: list[str]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": required,
            "properties": {k: {"type": v} for k, v in props.items()}}}}}

    user = [{"name": "username", "in": "path", "required": True, "schema": {"type": "string", "example": "name1"}}]
    book = [{"name": "book_title", "in": "path", "required": True,
             "schema": {"type": "string", "example": "bookTitle16"}}]
    ok = {"200": {"description": "OK"}}
    created = {"201": {"description": "Created"}}
    done = {"204": {"description": "Changed"}}
    bearer = [{"bearerAuth": []}]
    return {
        "openapi": "3.0.1", "info": {"title": "Bookshelf API", "version": "0.1"},
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                          "bearerFormat": "JWT"}}},
        "paths": {
            "/users/v1": {"get": {"summary": "All users", "responses": ok}},
            "/users/v1/_debug": {"get": {"summary": "All users, with every field", "responses": ok}},
            "/users/v1/register": {"post": {"requestBody": body(
                {"username": "string", "password": "string", "email": "string"},
                ["username", "password", "email"]), "responses": created}},
            "/users/v1/login": {"post": {"requestBody": body({"username": "string", "password": "string"},
                                                             ["username", "password"]), "responses": ok}},
            "/users/v1/{username}": {"get": {"parameters": user, "responses": ok},
                                     "delete": {"parameters": user, "security": bearer, "responses": ok}},
            "/users/v1/{username}/email": {"put": {"parameters": user, "security": bearer,
                                                   "requestBody": body({"email": "string"}, ["email"]),
                                                   "responses": done}},
            "/users/v1/{username}/password": {"put": {"parameters": user, "security": bearer,
                                                      "requestBody": body({"password": "string"}, ["password"]),
                                                      "responses": done}},
            "/books/v1": {"get": {"responses": ok},
                          "post": {"security": bearer, "requestBody": body(
                              {"book_title": "string", "secret": "string"}, ["book_title", "secret"]),
                              "responses": created}},
            "/books/v1/{book_title}": {"get": {"parameters": book, "security": bearer, "responses": ok}},
        },
    }


def reset(app: Flask) -> None:
    """Restore the seeded users and books (the scan's reset hook after state-changing probes)."""
    _init_db(app.config["DB"], app.config["HARDENED"])


def create_app(hardened: bool = False) -> Flask:
    app = Flask(__name__)
    key = secrets.token_urlsafe(32) if hardened else WEAK_KEY
    app.config["DB"] = str(Path(tempfile.mkdtemp(prefix="bookshelf-")) / "api.sqlite3")
    app.config["HARDENED"] = hardened
    reset(app)
    failures: dict[str, int] = {}

    def db() -> sqlite3.Connection:
        if "con" not in g:
            # Autocommit: no statement leaves a transaction (and its lock) open while the scan hammers the API.
            g.con = sqlite3.connect(app.config["DB"], isolation_level=None, timeout=1.0)
            g.con.row_factory = sqlite3.Row
        return g.con

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        con = g.pop("con", None)
        if con is not None:
            con.close()

    def error(status: int, message: str):  # type: ignore[no-untyped-def]
        return jsonify({"status": "fail", "message": message}), status

    def current_user() -> sqlite3.Row | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        try:
            claims = jwt.decode(header[7:], key, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        row: sqlite3.Row | None = db().execute("SELECT * FROM users WHERE username = ?",
                                               (claims.get("sub"),)).fetchone()
        return row

    @app.after_request
    def _headers(resp):  # type: ignore[no-untyped-def]
        if hardened:
            resp.headers["X-Content-Type-Options"] = "nosniff"
            resp.headers["X-Frame-Options"] = "DENY"
            resp.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
            resp.headers["Referrer-Policy"] = "no-referrer"
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/")
    def index():  # type: ignore[no-untyped-def]
        return jsonify({"message": "Bookshelf API", "docs": "/ui/"})

    @app.get("/ui/")
    def docs() -> str:
        return DOCS_PAGE

    @app.get("/openapi.json")
    def spec():  # type: ignore[no-untyped-def]
        return jsonify(openapi_document())

    @app.get("/users/v1")
    def list_users():  # type: ignore[no-untyped-def]
        rows = db().execute("SELECT username, email FROM users").fetchall()
        return jsonify({"users": [dict(r) for r in rows]})

    @app.get("/users/v1/_debug")
    def debug_users():  # type: ignore[no-untyped-def]
        if hardened:
            return error(404, "Not found")
        rows = db().execute("SELECT username, password, email, admin FROM users").fetchall()
        return jsonify({"users": [dict(r) for r in rows]})  # FLAW: every account with its password

    @app.post("/users/v1/register")
    def register():  # type: ignore[no-untyped-def]
        data = request.get_json(silent=True) or {}
        username, password, email = data.get("username"), data.get("password"), data.get("email")
        if not all(isinstance(v, str) and v for v in (username, password, email)):
            return error(400, "username, password and email are required")
        if hardened and (len(password) < 12 or username.lower() in password.lower() or len(set(password)) < 6
                         or not STRICT_EMAIL.match(email)):
            return error(400, "password too short or email invalid")
        if db().execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
            return error(400, "User already exists. Please Log in.")
        # FLAW: `admin` comes from the client
        admin = 0 if hardened else int(bool(data.get("admin", False)))
        db().execute("INSERT INTO users (username, password, email, admin) VALUES (?, ?, ?, ?)",
                     (username, _hash(password) if hardened else password, email, admin))
        db().commit()
        return jsonify({"status": "success", "message": "Successfully registered."}), 201

    @app.post("/users/v1/login")
    def login():  # type: ignore[no-untyped-def]
        data = request.get_json(silent=True) or {}
        username, password = str(data.get("username", "")), str(data.get("password", ""))
        if hardened and failures.get(username, 0) >= 5:
            return error(429, "Too many attempts, try later")
        row = db().execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        if row is None and not hardened:
            return error(401, "Username does not exist")  # FLAW: tells which names exist
        if row is None or not _check(row["password"], password):
            failures[username] = failures.get(username, 0) + 1
            return error(401, "Username or password is incorrect" if hardened else "Password is not correct")
        failures.pop(username, None)
        now = dt.datetime.now(dt.UTC)
        token = jwt.encode({"sub": row["username"], "iat": now, "exp": now + dt.timedelta(minutes=30)},
                           key, algorithm="HS256")
        return jsonify({"status": "success", "message": "Successfully logged in.", "auth_token": token})

    @app.get("/users/v1/<username>")
    def get_user(username: str):  # type: ignore[no-untyped-def]
        if hardened:
            row = db().execute("SELECT username, email FROM users WHERE username = ?", (username,)).fetchone()
        else:  # FLAW: SQL built with an f-string
            row = db().execute(f"SELECT username, email FROM users WHERE username = '{username}'").fetchone()
        return jsonify(dict(row)) if row else error(404, "User not found")

    @app.delete("/users/v1/<username>")
    def delete_user(username: str):  # type: ignore[no-untyped-def]
        user = current_user()
        if user is None:
            return error(401, "Invalid token")
        if not user["admin"]:
            return error(403, "Only admins may delete users")
        db().execute("DELETE FROM users WHERE username = ?", (username,))
        db().commit()
        return jsonify({"status": "success"})

    @app.put("/users/v1/<username>/email")
    def update_email(username: str):  # type: ignore[no-untyped-def]
        user = current_user()
        if user is None:
            return error(401, "Invalid token")
        email = str((request.get_json(silent=True) or {}).get("email", ""))
        pattern = STRICT_EMAIL if hardened else LOOSE_EMAIL  # FLAW: nested quantifiers backtrack
        # Capped for the test suite: the app runs in the scanner's process, and re holds the GIL while it
        # backtracks, so an uncapped input could freeze the whole test run (2**22 steps is ~1 s at most).
        if not pattern.match(email[:EMAIL_CHECK_CHARS]):
            return error(400, "Please provide a valid email address")
        if hardened and username != user["username"]:
            return error(403, "You can only change your own email")
        db().execute("UPDATE users SET email = ? WHERE username = ?", (email, username))
        db().commit()
        return "", 204

    @app.put("/users/v1/<username>/password")
    def update_password(username: str):  # type: ignore[no-untyped-def]
        user = current_user()
        if user is None:
            return error(401, "Invalid token")
        password = str((request.get_json(silent=True) or {}).get("password", ""))
        if not password:
            return error(400, "Malformed data")
        if hardened and username != user["username"]:
            return error(403, "You can only change your own password")
        # FLAW (unhardened): the path, not the token, says whose password changes
        db().execute("UPDATE users SET password = ? WHERE username = ?",
                     (_hash(password) if hardened else password, username))
        db().commit()
        return "", 204

    @app.get("/books/v1")
    def list_books():  # type: ignore[no-untyped-def]
        rows = db().execute("SELECT book_title, owner AS user FROM books").fetchall()
        return jsonify({"books": [dict(r) for r in rows]})

    @app.post("/books/v1")
    def add_book():  # type: ignore[no-untyped-def]
        user = current_user()
        if user is None:
            return error(401, "Invalid token")
        data = request.get_json(silent=True) or {}
        title, secret = data.get("book_title"), data.get("secret")
        if not (isinstance(title, str) and title and isinstance(secret, str)):
            return error(400, "book_title and secret are required")
        db().execute("INSERT INTO books (book_title, secret_content, owner) VALUES (?, ?, ?)",
                     (title, secret, user["username"]))
        db().commit()
        return jsonify({"status": "success", "book_title": title}), 201

    @app.get("/books/v1/<book_title>")
    def get_book(book_title: str):  # type: ignore[no-untyped-def]
        user = current_user()
        if user is None:
            return error(401, "Invalid token")
        if hardened:
            row = db().execute("SELECT * FROM books WHERE book_title = ? AND owner = ?",
                               (book_title, user["username"])).fetchone()
        else:  # FLAW: any signed-in user reads any user's book secret
            row = db().execute("SELECT * FROM books WHERE book_title = ?", (book_title,)).fetchone()
        if row is None:
            return error(404, "Book not found")
        return jsonify({"book_title": row["book_title"], "secret": row["secret_content"], "owner": row["owner"]})

    return app
