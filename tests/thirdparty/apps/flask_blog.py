"""A small, deliberately vulnerable Flask blog written the way a hurried team would write it."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from flask import Flask, abort, g, redirect, render_template_string, request, send_file, session, url_for
from werkzeug.debug import DebuggedApplication

LAYOUT = """<!doctype html><html><head><title>{{ title }}</title></head><body>
<nav><a href="/">Home</a> | <a href="/search?term=flask">Search</a> | <a href="/greet?visitor=guest">Greet</a>
| <a href="/attachments?name=welcome.txt">Welcome file</a> | <a href="/signin">Sign in</a>
| <a href="/dashboard">My posts</a> | <a href="/signout?next=/">Sign out</a></nav>
{{ body|safe }}</body></html>"""

USERS = {"mira": "mira-pass-1", "tomas": "tomas-pass-2"}


def _init_db(path: str) -> None:
    con = sqlite3.connect(path)
    con.executescript("""
        DROP TABLE IF EXISTS posts;
        CREATE TABLE posts (id INTEGER PRIMARY KEY, author TEXT, title TEXT, content TEXT, draft INTEGER);
        INSERT INTO posts VALUES (1, 'mira', 'Flask tips', 'Blueprints keep things tidy.', 0);
        INSERT INTO posts VALUES (2, 'tomas', 'Private notes', 'my secret draft about layoffs', 1);
        INSERT INTO posts VALUES (3, 'mira', 'Hello world', 'First post.', 0);
    """)
    con.commit()
    con.close()


def create_app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "dev"
    workdir = Path(tempfile.mkdtemp(prefix="blog-"))
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

    def page(title: str, body: str) -> str:
        return render_template_string(LAYOUT, title=title, body=body)

    @app.route("/")
    def home() -> str:
        rows = db().execute("SELECT id, title FROM posts WHERE draft = 0").fetchall()
        items = "".join(f'<li><a href="/posts/{r[0]}">{r[1]}</a></li>' for r in rows)
        return page("Blog", f"<ul>{items}</ul>")

    @app.route("/search")
    def search() -> str:
        term = request.args.get("term", "")
        # FLAW: SQL built with an f-string
        rows = db().execute(f"SELECT id, title FROM posts WHERE draft = 0 AND title LIKE '%{term}%'").fetchall()
        items = "".join(f"<li>{r[1]}</li>" for r in rows)
        return page("Search", f"<p>{len(rows)} results</p><ul>{items}</ul>")

    @app.route("/greet")
    def greet() -> str:
        visitor = request.args.get("visitor", "friend")
        # FLAW: |safe on user input
        return render_template_string("<p>Hello {{ who|safe }}!</p>", who=visitor)

    @app.route("/attachments")
    def attachments():  # type: ignore[no-untyped-def]
        name = request.args.get("name", "welcome.txt")
        # FLAW: no containment check
        return send_file(os.path.join(str(uploads), name))

    @app.route("/posts/<int:post_id>")
    def show(post_id: int) -> str:
        row = db().execute("SELECT title, content FROM posts WHERE id = ? AND draft = 0", (post_id,)).fetchone()
        if row is None:
            abort(404)
        return page(row[0], f"<h1>{row[0]}</h1><p>{row[1]}</p>")

    @app.route("/posts/<int:post_id>/edit", methods=["GET", "POST"])
    def edit(post_id: int):  # type: ignore[no-untyped-def]
        if "user" not in session:
            return redirect(url_for("signin"))
        row = db().execute("SELECT title, content FROM posts WHERE id = ?", (post_id,)).fetchone()
        if row is None:
            abort(404)
        # FLAW: any signed-in user edits (and reads drafts of) anyone's post
        if request.method == "POST":
            db().execute("UPDATE posts SET title = ?, content = ? WHERE id = ?",
                         (request.form.get("title", row[0]), request.form.get("content", row[1]), post_id))
            db().commit()
            return redirect(f"/posts/{post_id}/edit")
        return page("Edit", f'<form method="post"><input name="title" value="{row[0]}">'
                            f'<textarea name="content">{row[1]}</textarea><button>Save</button></form>')

    @app.route("/dashboard")
    def dashboard():  # type: ignore[no-untyped-def]
        if "user" not in session:
            return redirect(url_for("signin"))
        rows = db().execute("SELECT id, title FROM posts WHERE author = ?", (session["user"],)).fetchall()
        items = "".join(f'<li>{r[1]} <a href="/posts/{r[0]}/edit">edit</a></li>' for r in rows)
        return page("My posts", f"<ul>{items}</ul>")

    @app.route("/signin", methods=["GET", "POST"])
    def signin():  # type: ignore[no-untyped-def]
        if request.method == "POST":
            who = request.form.get("login", "")
            if USERS.get(who) == request.form.get("secret"):
                session["user"] = who
                return redirect("/")
            return page("Sign in", "<p>Wrong login or password.</p>"), 401
        return page("Sign in", '<form method="post"><input name="login"><input type="password" name="secret">'
                               "<button>Go</button></form>")

    @app.route("/signout")
    def signout():  # type: ignore[no-untyped-def]
        session.clear()
        # FLAW: unvalidated redirect target
        return redirect(request.args.get("next", "/"))

    app.debug = True
    # FLAW: the interactive debugger in front of the app (what `app.run(debug=True)` does)
    app.wsgi_app = DebuggedApplication(app.wsgi_app, evalex=True)  # type: ignore[method-assign]
    return app
