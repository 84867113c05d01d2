"""The same blog built carefully: bound parameters, autoescaping, allow-listed redirects, safe_join, headers."""

from __future__ import annotations

import secrets
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, abort, g, redirect, render_template_string, request, send_file, session, url_for
from werkzeug.security import safe_join

LAYOUT = """<!doctype html><html><head><title>{{ title }}</title></head><body>
<nav><a href="/">Home</a> | <a href="/search?term=flask">Search</a> | <a href="/greet?visitor=guest">Greet</a>
| <a href="/attachments?name=welcome.txt">Welcome file</a> | <a href="/signin">Sign in</a>
| <a href="/dashboard">My posts</a> | <a href="/signout?next=/">Sign out</a></nav>
{% block body %}{% endblock %}</body></html>"""

USERS = {"mira": "mira-pass-1", "tomas": "tomas-pass-2"}
MAX_ROWID = 2**63 - 1  # SQLite's INTEGER range: larger ids cannot exist (and would not bind)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}


def _init_db(path: str) -> None:
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE posts (id INTEGER PRIMARY KEY, author TEXT, title TEXT, content TEXT, draft INTEGER);
        INSERT INTO posts VALUES (1, 'mira', 'Flask tips', 'Blueprints keep things tidy.', 0);
        INSERT INTO posts VALUES (2, 'tomas', 'Private notes', 'my secret draft about layoffs', 1);
        INSERT INTO posts VALUES (3, 'mira', 'Hello world', 'First post.', 0);
    """)
    con.commit()
    con.close()


def _local_path(target: str | None) -> str:
    """Only same-site relative paths are followed after sign-out."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def create_app() -> Flask:
    app = Flask(__name__)
    app.secret_key = secrets.token_hex(32)
    app.config.update(SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=1))
    # Signed cookies cannot be revoked: each sign-in gets a nonce the server forgets at sign-out.
    live_sessions: set[str] = set()
    workdir = Path(tempfile.mkdtemp(prefix="blog-safe-"))
    app.config["DB"] = str(workdir / "blog.sqlite3")
    uploads = workdir / "attachments"
    uploads.mkdir()
    (uploads / "welcome.txt").write_text("Welcome to the blog!\n")
    _init_db(app.config["DB"])

    def db() -> sqlite3.Connection:
        if "con" not in g:
            g.con = sqlite3.connect(app.config["DB"])
        return g.con

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        con = g.pop("con", None)
        if con is not None:
            con.close()

    @app.before_request
    def _revoked() -> None:
        if "user" in session and session.get("nonce") not in live_sessions:
            session.clear()

    @app.after_request
    def _headers(resp):  # type: ignore[no-untyped-def]
        for name, value in SECURITY_HEADERS.items():
            resp.headers.setdefault(name, value)
        return resp

    def page(title: str, body: str, **ctx: object) -> str:
        return render_template_string(LAYOUT.replace("{% block body %}{% endblock %}", body), title=title, **ctx)

    @app.route("/")
    def home() -> str:
        rows = db().execute("SELECT id, title FROM posts WHERE draft = 0").fetchall()
        return page("Blog", '<ul>{% for r in rows %}<li><a href="/posts/{{ r[0] }}">{{ r[1] }}</a></li>'
                            "{% endfor %}</ul>", rows=rows)

    @app.route("/search")
    def search() -> str:
        term = request.args.get("term", "")
        rows = db().execute("SELECT id, title FROM posts WHERE draft = 0 AND title LIKE ?", (f"%{term}%",)).fetchall()
        return page("Search", "<p>{{ rows|length }} results for {{ term }}</p>"
                              "<ul>{% for r in rows %}<li>{{ r[1] }}</li>{% endfor %}</ul>", rows=rows, term=term)

    @app.route("/greet")
    def greet() -> str:
        return render_template_string("<p>Hello {{ who }}!</p>", who=request.args.get("visitor", "friend"))

    @app.route("/attachments")
    def attachments():  # type: ignore[no-untyped-def]
        path = safe_join(str(uploads), request.args.get("name", "welcome.txt"))
        if path is None or not Path(path).is_file():
            abort(404)
        return send_file(path)

    @app.route("/posts/<int:post_id>")
    def show(post_id: int) -> str:
        if post_id > MAX_ROWID:
            abort(404)
        row = db().execute("SELECT title, content FROM posts WHERE id = ? AND draft = 0", (post_id,)).fetchone()
        if row is None:
            abort(404)
        return page(row[0], "<h1>{{ t }}</h1><p>{{ c }}</p>", t=row[0], c=row[1])

    @app.route("/posts/<int:post_id>/edit", methods=["GET", "POST"])
    def edit(post_id: int):  # type: ignore[no-untyped-def]
        if "user" not in session:
            return redirect(url_for("signin"))
        if post_id > MAX_ROWID:
            abort(404)
        row = db().execute("SELECT title, content, author FROM posts WHERE id = ?", (post_id,)).fetchone()
        if row is None or row[2] != session["user"]:
            abort(404)  # someone else's post looks like a missing one
        if request.method == "POST":
            db().execute("UPDATE posts SET title = ?, content = ? WHERE id = ? AND author = ?",
                         (request.form.get("title", row[0]), request.form.get("content", row[1]), post_id,
                          session["user"]))
            db().commit()
            return redirect(f"/posts/{post_id}/edit")
        return page("Edit", '<form method="post"><input name="title" value="{{ t }}">'
                            '<textarea name="content">{{ c }}</textarea><button>Save</button></form>',
                    t=row[0], c=row[1])

    @app.route("/dashboard")
    def dashboard():  # type: ignore[no-untyped-def]
        if "user" not in session:
            return redirect(url_for("signin"))
        rows = db().execute("SELECT id, title FROM posts WHERE author = ?", (session["user"],)).fetchall()
        return page("My posts", '<ul>{% for r in rows %}<li>{{ r[1] }} <a href="/posts/{{ r[0] }}/edit">edit</a>'
                                "</li>{% endfor %}</ul>", rows=rows)

    @app.route("/signin", methods=["GET", "POST"])
    def signin():  # type: ignore[no-untyped-def]
        if request.method == "POST":
            who = request.form.get("login", "")
            expected = USERS.get(who)
            if expected is not None and secrets.compare_digest(expected, request.form.get("secret", "")):
                session.clear()
                session["nonce"] = secrets.token_urlsafe(24)
                live_sessions.add(session["nonce"])
                session["user"] = who
                return redirect("/")
            return page("Sign in", "<p>Wrong login or password.</p>"), 401
        return page("Sign in", '<form method="post"><input name="login"><input type="password" name="secret">'
                               "<button>Go</button></form>")

    @app.route("/signout")
    def signout():  # type: ignore[no-untyped-def]
        live_sessions.discard(session.get("nonce", ""))
        session.clear()
        return redirect(_local_path(request.args.get("next")))

    return app
