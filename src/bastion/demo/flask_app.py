"""The Flask demo service: a small shop with accounts, invoices and tools, flaws planted on request.

Every flawed code path sits next to its safe twin behind `planted("<flaw id>")`, so the hardened
app has the same routes doing the same job. To add a flaw: add it to `flaws.FLAWS`, then branch on
`planted(id)` where the flaw lives.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import subprocess
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, cast

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    render_template_string,
    request,
    send_from_directory,
)
from flask.json.provider import DefaultJSONProvider
from lxml import etree
from markupsafe import Markup
from werkzeug.debug import DebuggedApplication
from werkzeug.exceptions import HTTPException

from bastion.demo import accounts
from bastion.demo.arithmetic import evaluate_arithmetic
from bastion.demo.flaws import resolve_flaws
from bastion.demo.policy import (
    EMAIL,
    HARDENING_HEADERS,
    HSTS,
    SESSION_COOKIE,
    VERSION_HEADERS,
    origin_allowed,
    safe_next,
)
from bastion.demo.tokens import attach_tokens, bearer_user, tokens_bp
from bastion.demo.workspace import Workspace

LANGUAGES = ("en", "fr", "de", "es")
# Headers a view queues for the hand-rolled header hook (see RawHeaderHook).
RAW_HEADERS_KEY = "bastion_demo.raw_headers"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_MAX_IMPORT_BYTES = 100_000
# Server-side session lifetime: idle timeout and absolute lifetime (OWASP ASVS 3.3).
SESSION_IDLE_S = 30 * 60
SESSION_MAX_AGE_S = 12 * 3600

bp = Blueprint("demo", __name__)


@dataclass
class DemoState:
    workspace: Workspace
    flaws: frozenset[str]


def create_app(flaws: str | Iterable[str] | None = "all") -> Flask:
    """Build the demo Flask app with the given flaws planted ("all", "none", "a,b" or ids)."""
    planted_flaws = resolve_flaws(flaws)
    workspace = Workspace()
    if "exposed_files" in planted_flaws:
        # The classic slip: the whole project directory becomes the static folder, served at /.
        app = Flask(__name__, static_folder=str(workspace.project_dir), static_url_path="")
    else:
        app = Flask(__name__, static_folder=str(workspace.project_dir / "static"), static_url_path="/static")
    workspace.attach(app)
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024
    app.json = StrictJSONProvider(app)
    app.extensions["bastion_demo"] = DemoState(workspace, planted_flaws)
    app.register_blueprint(bp)
    attach_tokens(app, workspace.root)
    app.register_blueprint(tokens_bp)
    app.before_request(_load_user)
    from bastion.demo.profile import profile_bp  # imported here: it imports this module

    app.register_blueprint(profile_bp)  # after _load_user: its before-request hook reads g.user
    from bastion.demo.accounts import bp as accounts_bp  # sign-up, reset, password change (imports this module)

    app.register_blueprint(accounts_bp)
    from bastion.demo.mfa import mfa_bp  # TOTP step and remember-device (imports this module)

    app.register_blueprint(mfa_bp)
    from bastion.demo.reports import reports_bp  # basket report: the fuzz_crash flaw (imports this module)

    app.register_blueprint(reports_bp)
    from bastion.demo.integrations import integrations_bp  # webhooks test, imports, directory (imports this module)

    app.register_blueprint(integrations_bp)
    from bastion.demo.notes import notes_bp  # encrypted notes and preferences (imports this module)

    app.register_blueprint(notes_bp)
    from bastion.demo.privacy import privacy_bp  # payment export, retention purge, audit seals (imports this module)

    app.register_blueprint(privacy_bp)
    from bastion.demo.privacy_erasure import erasure_bp  # customer search index, erasure job (imports this module)

    app.register_blueprint(erasure_bp)
    from bastion.demo.privacy_mail import configure_mail  # welcome mail to SMTP_HOST/SMTP_PORT (environment)

    configure_mail(app)
    from bastion.demo.integrations_deps import deps_bp  # partner API via the IdP, job worker (imports this module)

    app.register_blueprint(deps_bp)
    from bastion.demo.alerts import alerts_bp  # alert on many failed logins from one client (imports this module)

    app.register_blueprint(alerts_bp)
    from bastion.demo.identity_leaks import leaks_bp  # token and reset-link leaks, IdP catalog (imports this module)

    app.register_blueprint(leaks_bp)
    from bastion.demo.resilience_deps import resilience_bp  # permissions DB and revocation cache (imports this module)

    app.register_blueprint(resilience_bp)
    from bastion.demo.fuzz_state import bookmarks_bp  # bookmarks CRUD: the stateful-fuzzing flaw (imports this module)

    app.register_blueprint(bookmarks_bp)
    from bastion.demo.openapi_doc import openapi_bp  # account summary, generated /openapi.json (imports this module)

    app.register_blueprint(openapi_bp)
    from bastion.demo.teams import teams_bp  # team memberships and roles: stale/unaudited (imports this module)

    app.register_blueprint(teams_bp)
    from bastion.demo.jwt_claims import ops_bp  # admin metrics trusting the JWT role claim (demo/jwt_claims.py)

    app.register_blueprint(ops_bp)
    from bastion.demo.csrf_flaws import csrf_bp  # e-mail signature form: the CSRF flaw (imports this module)

    app.register_blueprint(csrf_bp)
    from bastion.demo.signup_flaws import signup_bp  # API sign-up: the client-chosen role flaw

    app.register_blueprint(signup_bp)
    from bastion.demo.backup import install_backup  # the nightly database backup (demo/backup.py)

    install_backup(app)
    app.after_request(_security_headers)
    app.after_request(_cors_headers)
    app.teardown_appcontext(_close_db)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled_error)
    app.wsgi_app = RawHeaderHook(app.wsgi_app)  # type: ignore[method-assign]
    if "debug_console" in planted_flaws:
        debugger = DebuggedApplication(app.wsgi_app, evalex=True)
        # Someone "fixed" the untrusted-host error by trusting the deployment's own host names.
        debugger.trusted_hosts += [".bastion.local", "localhost"]
        app.wsgi_app = debugger  # type: ignore[method-assign]
    return app


class RawHeaderHook:
    """WSGI middleware appending headers views queued in the environ, without validating them."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        queued: list[tuple[str, str]] = environ.setdefault(RAW_HEADERS_KEY, [])

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, list(headers) + queued, exc_info)

        return self.app(environ, start)


# --- plumbing ---------------------------------------------------------------------------------


def state() -> DemoState:
    return current_app.extensions["bastion_demo"]  # type: ignore[no-any-return]


def planted(flaw_id: str) -> bool:
    """Whether this app instance has the flaw `flaw_id` planted."""
    return flaw_id in state().flaws


def json_object() -> dict[str, Any]:
    """The request's JSON body if it is an object, else {} (a JSON array or scalar is not a form)."""
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class StrictJSONProvider(DefaultJSONProvider):
    """JSON with lone surrogates (`"\\ud800"`) is refused like malformed JSON: no str can be stored or encoded."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        value = super().loads(s, **kwargs)
        if _LONE_SURROGATE.search(json.dumps(value, ensure_ascii=False, default=str)):
            raise ValueError("lone surrogate in JSON text")
        return value


def db() -> sqlite3.Connection:
    """The request's database connection (one per request: sleep() budgets are per connection)."""
    if "db" not in g:
        g.db = state().workspace.db.connect()
    return g.db  # type: ignore[no-any-return]


def _close_db(_exc: BaseException | None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def audit(action: str, detail: str) -> None:
    actor = g.user["username"] if g.get("user") else "anonymous"
    # Every record states its outcome, so a failed attempt is never mistaken for a success (ASVS 7.2).
    outcome = "failure" if action.endswith("failure") else "success"
    db().execute("INSERT INTO audit_log (actor, action, detail) VALUES (?,?,?)",
                 (actor, action, f"{detail[:480]} outcome={outcome}".lstrip()))
    from bastion.demo.privacy import seal_after_audit  # the audit_log_editable flaw and its sealed twin

    seal_after_audit()


def _load_user() -> None:
    """Resolve the session cookie to a user before any view runs."""
    g.user = None
    g.session_id = None
    # API clients send a bearer access token from /api/auth/token instead of the cookie.
    g.user = bearer_user()
    if g.user is not None:
        return
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return
    row = db().execute("SELECT * FROM sessions WHERE sid = ?", (sid,)).fetchone()
    if row is None:
        return
    now = time.time()
    if not planted("session_no_expiry") and (now - row["seen_at"] > SESSION_IDLE_S
                                             or now - row["created_at"] > SESSION_MAX_AGE_S):
        db().execute("DELETE FROM sessions WHERE sid = ?", (sid,))
        return
    if now - row["seen_at"] > 60:
        db().execute("UPDATE sessions SET seen_at = ? WHERE sid = ?", (now, sid))
    g.session_id = sid
    # Password accepted, one-time code not yet: only the MFA step may see this user (demo/mfa.py).
    g.mfa_pending_user = row["user_id"] if row["mfa_pending"] else None
    if row["user_id"] is not None and (not row["mfa_pending"] or planted("mfa_step_skippable")):
        g.user = db().execute("SELECT * FROM users WHERE id = ?", (row["user_id"],)).fetchone()


def current_user_id() -> int:
    """The signed-in user's id, or -1 (matches no owner) for anonymous visitors."""
    return int(g.user["id"]) if g.get("user") else -1


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            if request.path.startswith("/api/"):
                return jsonify(error="authentication required"), 401
            return redirect("/login?next=" + request.path)
        return view(*args, **kwargs)

    return wrapper


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.user["role"] != "admin":
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def new_session(user_id: int | None, *, pending: bool = False) -> str:
    if planted("session_weak_id"):
        # "Unique enough": the clock plus a counter.
        counter = current_app.extensions.setdefault("bastion_demo.sid_counter", iter(range(100_000, 10**9)))
        sid = f"{int(time.time())}{next(counter)}"
    else:
        sid = secrets.token_urlsafe(24)
    now = time.time()
    db().execute("INSERT INTO sessions (sid, user_id, mfa_pending, created_at, seen_at) VALUES (?,?,?,?,?)",
                 (sid, user_id, int(pending), now, now))
    return sid


def _parent_domain(host: str) -> str | None:
    """`example.com` for `app.example.com` (None for IP addresses and single labels)."""
    name = host.split(":")[0]
    if "." not in name or name.replace(".", "").isdigit():
        return None
    return name.split(".", 1)[1]


def set_session_cookie(resp: Response, name: str, value: str) -> None:
    """Set (or, with an empty value, clear) a session cookie with the flags the flaws allow."""
    max_age = None if value else 0
    domain = expires = None
    if name == SESSION_COOKIE:
        if value and planted("session_no_expiry"):
            expires = "Fri, 01 Jan 2100 00:00:00 GMT"  # "stay signed in", for everyone, for good
        if planted("session_cookie_broad_domain"):
            domain = _parent_domain(request.host)  # shared with every sibling subdomain
    if planted("insecure_session_cookie"):
        resp.set_cookie(name, value, path="/", max_age=max_age, expires=expires, domain=domain)
    else:
        # Secure only over https so the demo still works when served over plain http on 127.0.0.1.
        resp.set_cookie(name, value, path="/", max_age=max_age, expires=expires, secure=request.is_secure,
                        httponly=True, samesite="Lax", domain=domain)


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A bounded integer query parameter; 400 when it is not one."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(400, description=f"{name} must be an integer")
    if not low <= value <= high:
        abort(400, description=f"{name} must be between {low} and {high}")
    return value


def redirect_after_auth(target: str | None, fallback: str) -> Response:
    # Inside a request flask.redirect builds the app's response_class (flask's Response); the stub says werkzeug's.
    if planted("open_redirect"):
        return cast(Response, redirect(target or fallback))
    return cast(Response, redirect(safe_next(target, fallback)))


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.is_json


# --- response hooks -----------------------------------------------------------------------------


def _security_headers(resp: Response) -> Response:
    if not planted("missing_security_headers"):
        resp.headers.update(HARDENING_HEADERS)
    if not planted("missing_hsts") and request.is_secure:
        resp.headers["Strict-Transport-Security"] = HSTS
    if planted("version_banner"):
        resp.headers.update(VERSION_HEADERS)
        resp.headers["X-Powered-By"] = "Flask/3.1.3"
    return resp


def _cors_headers(resp: Response) -> Response:
    if not request.path.startswith("/api/"):
        return resp
    resp.vary.add("Origin")
    origin = request.headers.get("Origin")
    if origin and origin_allowed(origin, state().flaws):
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Access-Control-Allow-Credentials"] = "true"
        if request.method == "OPTIONS":
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE"
            resp.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
            resp.headers["Access-Control-Max-Age"] = "600"
    return resp


def _http_error(exc: HTTPException) -> Any:
    if wants_json():
        return jsonify(error=exc.name, detail=exc.description), exc.code or 500
    return render_template("message.html", title=exc.name, message=exc.description), exc.code or 500


def _unhandled_error(exc: Exception) -> Any:
    if planted("verbose_errors"):
        return Response(traceback.format_exc(), status=500, mimetype="text/plain")
    current_app.logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
    if wants_json():
        return jsonify(error="internal server error"), 500
    return render_template("message.html", title="Internal Server Error",
                           message="Something went wrong. Please try again later."), 500


# --- pages ----------------------------------------------------------------------------------------


@bp.get("/")
def home() -> Response:
    display_name = request.cookies.get("display_name", "")
    greeting = ""
    if display_name and planted("ssti"):
        greeting = render_template_string("Welcome back, " + display_name + "!")
    elif display_name:
        greeting = f"Welcome back, {display_name}!"
    resp = Response(render_template("home.html", title="Home", greeting=greeting))
    if g.session_id is None:
        # Every visitor gets a session so the cart works before login.
        set_session_cookie(resp, SESSION_COOKIE, new_session(None))
    if "display_name" not in request.cookies:
        # Guests are greeted too; login replaces the name with the account's.
        set_session_cookie(resp, "display_name", "Guest")
    return resp


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/login")
def login_form() -> str:
    next_url = request.args.get("next", "/account")
    return render_template("login.html", title="Log in", next_url=next_url, error=None)


@bp.post("/login")
def login() -> Any:
    if request.is_json:
        body = json_object()
        username, password = str(body.get("username", "")), str(body.get("password", ""))
        next_url = body.get("next")
    else:
        # The planted flaw also reads the query string: credentials end up in URLs and logs.
        fields = request.values if planted("credentials_in_url") else request.form
        username, password = fields.get("username", ""), fields.get("password", "")
        next_url = request.form.get("next")
    if planted("password_logged_at_login"):
        current_app.logger.info("login attempt user=%s password=%s", username[:80], password)
    else:
        current_app.logger.info("login attempt user=%s", username[:80])
    blocked = accounts.login_blocked(username)
    if blocked is not None:
        return blocked
    user = db().execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    if not accounts.password_matches(user, password):
        tried = f" password={password[:80]}" if planted("audit_log_has_passwords") else ""
        # The planted flaw drops the account name: the record cannot tell whose login failed.
        who = "" if planted("audit_failed_login_without_actor") else f"username={username[:80]}"
        audit("login.failure", f"{who}{tried}".lstrip())
        accounts.login_failed(username)
        message = accounts.login_failure_message(user)
        if request.is_json:
            return jsonify(error=message), 401
        return render_template("login.html", title="Log in", next_url=next_url or "/account",
                               error=message), 401
    accounts.login_succeeded(username)
    g.user = user
    audit("login.success", f"user_id={user['id']}")
    from bastion.demo import mfa  # TOTP step and session rotation (imports this module)

    sid, mfa_pending = mfa.begin_session(int(user["id"]))
    if mfa_pending:
        resp = mfa.challenge_response(next_url)
    elif request.is_json:
        resp = jsonify(ok=True, user={"id": user["id"], "username": user["username"]})
    else:
        resp = redirect_after_auth(next_url, "/account")
    set_session_cookie(resp, SESSION_COOKIE, sid)
    set_session_cookie(resp, "display_name", user["display_name"])
    return resp


@bp.get("/logout")
def logout() -> Response:
    # The planted flaw only clears the browser's cookie: the session id itself stays valid.
    if g.session_id and not planted("logout_not_server_side"):
        db().execute("DELETE FROM sessions WHERE sid = ?", (g.session_id,))
    resp = redirect_after_auth(request.args.get("next"), "/")
    set_session_cookie(resp, SESSION_COOKIE, "")
    set_session_cookie(resp, "display_name", "")
    return resp


@bp.get("/account")
@login_required
def account() -> str:
    return render_template("account.html", title="Account", user=g.user)


@bp.get("/set-language")
def set_language() -> Response:
    lang = request.args.get("lang", "en")
    resp = cast(Response, redirect("/"))  # flask's Response in a request, as in redirect_after_auth
    if planted("crlf_injection"):
        # Hand-rolled cookie header: the raw value goes straight into the WSGI header list.
        request.environ[RAW_HEADERS_KEY].append(("Set-Cookie", f"lang={lang}; Path=/"))
    else:
        lang = lang if lang in LANGUAGES else "en"
        resp.set_cookie("lang", lang, path="/", secure=request.is_secure, httponly=True, samesite="Lax")
    return resp


# --- catalogue and search ---------------------------------------------------------------------------


_SORTS = {"name": "name", "price": "price_cents"}


@bp.get("/products")
def products() -> Any:
    category = request.args.get("category", "")
    page = int_arg("page", 1, 1, 1000)
    per_page = int_arg("per_page", 10, 1, 50)
    sort = request.args.get("sort", "name")
    order = _SORTS.get(sort, "name")
    offset = (page - 1) * per_page
    if planted("sqli_error"):
        where = f"WHERE category = '{category}'" if category else ""
        try:
            sql = f"SELECT * FROM products {where} ORDER BY {order} LIMIT {per_page} OFFSET {offset}"
            rows = db().execute(sql).fetchall()
        except sqlite3.Error as exc:
            message = f"Database error: sqlite3.{type(exc).__name__}: {exc}"
            return Response(message, 500, mimetype="text/plain")
    elif category:
        rows = db().execute(f"SELECT * FROM products WHERE category = ? ORDER BY {order} LIMIT ? OFFSET ?",
                            (category, per_page, offset)).fetchall()
    else:
        rows = db().execute(f"SELECT * FROM products ORDER BY {order} LIMIT ? OFFSET ?",
                            (per_page, offset)).fetchall()
    return render_template("products.html", title="Products", products=rows, category=category, page=page,
                           per_page=per_page, sort=sort if sort in _SORTS else "name")


@bp.get("/search")
def search() -> str:
    query = request.args.get("q")
    results: list[sqlite3.Row] = []
    if query:
        results = db().execute("SELECT * FROM products WHERE name LIKE ? ORDER BY name LIMIT 20",
                               (f"%{query}%",)).fetchall()
    shown = Markup(query) if planted("xss_reflected") and query else query  # noqa: S704 -- planted flaw
    return render_template("search.html", title="Search", searched=query is not None, query=shown,
                           results=results)


def product_json(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "category": row["category"],
            "price": row["price_cents"] / 100, "description": row["description"]}


@bp.get("/api/products")
def api_products() -> Response:
    page = int_arg("page", 1, 1, 1000)
    limit = int_arg("limit", 10, 1, 50)
    rows = db().execute("SELECT * FROM products ORDER BY id LIMIT ? OFFSET ?",
                        (limit, (page - 1) * limit)).fetchall()
    return jsonify(page=page, items=[product_json(r) for r in rows])


@bp.get("/api/products/<int(max=2147483647):product_id>")
def api_product(product_id: int) -> Any:
    row = db().execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
    if row is None:
        abort(404)
    return jsonify(product_json(row))


@bp.get("/api/stats")
def api_stats() -> Response:
    tenant = request.headers.get("X-Tenant", "")
    if tenant:
        record_tenant_usage(tenant)
    products_count = db().execute("SELECT count(*) FROM products").fetchone()[0]
    shared = db().execute("SELECT count(*) FROM invoices WHERE shared = 1").fetchone()[0]
    return jsonify(products=products_count, public_invoices=shared)


def record_tenant_usage(tenant: str) -> None:
    """Best-effort usage metering: never let it break the request."""
    try:
        if planted("sqli_time"):
            row = db().execute(f"SELECT id FROM tenants WHERE slug = '{tenant}'").fetchone()
        else:
            row = db().execute("SELECT id FROM tenants WHERE slug = ?", (tenant,)).fetchone()
        if row is not None:
            db().execute("INSERT INTO tenant_usage (tenant_id, hits) VALUES (?, 1)", (row["id"],))
    except sqlite3.Error:
        pass


# --- invoices ---------------------------------------------------------------------------------------


def invoice_json(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "number": row["number"], "customer": row["customer"],
            "amount": row["amount_cents"] / 100, "status": row["status"], "owner_id": row["owner_id"]}


@bp.get("/invoices")
def invoices() -> str:
    if planted("verbose_errors"):
        page = int(request.args.get("page", "1"))
        per_page = int(request.args.get("per_page", "10"))
    else:
        page = int_arg("page", 1, 1, 1000)
        per_page = int_arg("per_page", 10, 1, 50)
    rows = db().execute("SELECT * FROM invoices WHERE shared = 1 OR owner_id = ? ORDER BY id "
                        "LIMIT ? OFFSET ?", (current_user_id(), per_page, (page - 1) * per_page)).fetchall()
    return render_template("invoices.html", title="Invoices", invoices=rows, page=page, per_page=per_page)


@bp.get("/api/invoices/<int(max=2147483647):invoice_id>")
def api_invoice(invoice_id: int) -> Any:
    row = db().execute("SELECT * FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
    visible = row is not None and (row["shared"] or row["owner_id"] == current_user_id()
                                   or (g.user is not None and g.user["role"] == "admin")
                                   or (g.user is not None and planted("invoice_bola")))
    if not visible:
        abort(404)
    return jsonify(invoice_json(row))


@bp.post("/api/invoices/search")
def api_invoice_search() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="expected a JSON object"), 400
    criteria = body.get("filter") or {}
    if not isinstance(criteria, dict):
        return jsonify(error="filter must be an object"), 400
    status = str(criteria.get("status", "paid"))
    customer = criteria.get("customer")
    sql = "SELECT * FROM invoices WHERE (shared = 1 OR owner_id = ?)"
    params: list[Any] = [current_user_id()]
    if customer:
        sql += " AND customer LIKE ?"
        params.append(f"%{customer}%")
    if planted("sqli_boolean"):
        try:
            rows = db().execute(sql + f" AND status = '{status}' ORDER BY id", params).fetchall()
        except sqlite3.Error:
            rows = []  # errors are swallowed: only the result set can tell
    else:
        rows = db().execute(sql + " AND status = ? ORDER BY id", [*params, status]).fetchall()
    return jsonify(invoices=[invoice_json(r) for r in rows])


@bp.get("/api/invoices/export")
@login_required
def api_invoice_export() -> Any:
    fmt = request.args.get("format", "json")
    rows = db().execute("SELECT * FROM invoices WHERE owner_id = ? ORDER BY id",
                        (current_user_id(),)).fetchall()
    audit("invoices.export", f"format={fmt[:10]} rows={len(rows)}")
    if fmt == "csv":
        lines = ["number,customer,amount,status"]
        for r in rows:
            cells = (r["number"], r["customer"], r["amount_cents"] / 100, r["status"])
            lines.append(",".join(csv_cell(str(v)) for v in cells))
        return Response("\n".join(lines) + "\n", mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=invoices.csv"})
    if fmt != "json":
        abort(400, description="format must be csv or json")
    return jsonify(invoices=[invoice_json(r) for r in rows])


def csv_cell(value: str) -> str:
    """Quote a CSV cell and defuse spreadsheet formulas."""
    if value[:1] in ("=", "+", "-", "@"):
        value = "'" + value
    return '"' + value.replace('"', '""') + '"'


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The published API description (part of the API: API clients and scanners read it)."""
    from bastion.demo.openapi_doc import openapi_document as document  # every /api/ route (demo/openapi_doc.py)

    return Response(json.dumps(document(current_app), indent=1), mimetype="application/json")


@bp.post("/api/import")
def api_import() -> Any:
    if request.mimetype not in ("application/xml", "text/xml"):
        return jsonify(error="send the invoices as application/xml"), 415
    data = request.get_data(cache=False)
    if len(data) > _MAX_IMPORT_BYTES:
        return jsonify(error="document too large"), 413
    if planted("xxe"):
        parser = etree.XMLParser(resolve_entities=True, no_network=True, load_dtd=True)
    else:
        if re.search(rb"<!DOCTYPE", data, re.IGNORECASE):
            return jsonify(error="DTDs are not allowed"), 400
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return jsonify(error="malformed XML"), 400
    fields = [[element_path(el), el.text or ""] for el in root.iter()
              if isinstance(el.tag, str) and len(el) == 0][:200]
    records = sum(1 for el in root if isinstance(el.tag, str))
    db().execute("INSERT INTO imports (owner_id, records, summary) VALUES (?,?,?)",
                 (g.user["id"] if g.user else None, records, json.dumps(fields)[:2000]))
    audit("invoices.import", f"records={records}")
    return jsonify(imported=records, fields=fields)


def element_path(el: Any) -> str:
    parts = [el.tag]
    parent = el.getparent()
    while parent is not None:
        parts.append(parent.tag)
        parent = parent.getparent()
    return "/".join(reversed(parts))


# --- community: guestbook, contact, newsletter, uploads -------------------------------------------------


@bp.get("/guestbook")
def guestbook() -> str:
    rows = db().execute("SELECT name, message FROM guestbook ORDER BY id DESC LIMIT 50").fetchall()
    stored_markup = planted("xss_stored")  # the message was meant to allow "a little formatting"
    entries = [{"name": r["name"], "message": Markup(r["message"]) if stored_markup else r["message"]}  # noqa: S704
               for r in rows]
    return render_template("guestbook.html", title="Guestbook", entries=entries)


@bp.post("/guestbook")
def sign_guestbook() -> Any:
    name = request.form.get("name", "").strip() or "Anonymous"
    message = request.form.get("message", "").strip()
    if not message or len(message) > 2000 or len(name) > 80:
        abort(400, description="a message (up to 2000 characters) and a name (up to 80) are required")
    db().execute("INSERT INTO guestbook (name, message) VALUES (?, ?)", (name, message))
    return redirect("/guestbook", code=303)


@bp.route("/contact", methods=["GET", "POST"])
def contact() -> Any:
    if request.method == "GET":
        return render_template("contact.html", title="Contact", thanks=None, error=None)
    name = request.form.get("name", "").strip()
    email = request.form.get("email", "").strip()
    message = request.form.get("message", "").strip()
    if not name or not EMAIL.match(email) or not message or len(message) > 5000:
        return render_template("contact.html", title="Contact", thanks=None,
                               error="Please give your name, a valid email and a message."), 400
    db().execute("INSERT INTO outbox (recipient, subject, body) VALUES (?,?,?)",
                  ("support@democorp.example", f"Contact from {name[:80]}", f"{email}\n\n{message}"))
    return render_template("contact.html", title="Contact", thanks=name, error=None)


@bp.post("/api/newsletter")
def api_newsletter() -> Any:
    body = json_object()
    email = str(body.get("email", "")).strip().lower()
    if not EMAIL.match(email):
        return jsonify(error="invalid email address"), 400
    db().execute("INSERT OR IGNORE INTO newsletter (email) VALUES (?)", (email,))
    return jsonify(subscribed=email)


@bp.get("/upload")
def upload_form() -> str:
    return render_template("upload.html", title="Upload", uploaded=None, size=0)


@bp.post("/upload")
def upload() -> Any:
    document = request.files.get("document")
    if document is None or not document.filename:
        abort(400, description="choose a file to upload")
    size = len(document.read())
    name = Markup(document.filename) if planted("xss_upload_filename") else document.filename  # noqa: S704
    audit("upload", f"bytes={size}")
    return render_template("upload.html", title="Upload", uploaded=name, size=size)


# --- downloads ----------------------------------------------------------------------------------------


@bp.get("/files/")
def files_index() -> str:
    base = state().workspace.files_dir
    names = sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
    return render_template("files.html", title="Downloads", names=names)


@bp.get("/files/<path:name>")
def download(name: str) -> Any:
    files_dir = str(state().workspace.files_dir)
    if not planted("path_traversal"):
        return send_from_directory(files_dir, name, mimetype="text/plain")
    try:
        with open(os.path.join(files_dir, name), "rb") as fh:
            content = fh.read(1_000_000)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        abort(404)
    return Response(content, mimetype="text/plain")


@bp.get("/backup/")
def backup_listing() -> Any:
    if not planted("exposed_files"):
        abort(404)
    base = state().workspace.project_dir / "backup"
    entries = sorted((p.name, p.stat().st_size) for p in base.iterdir())
    return render_template("listing.html", path="/backup/", entries=entries)


# --- tools --------------------------------------------------------------------------------------------


@bp.get("/tools/ping")
def ping_form() -> str:
    return render_template("ping.html", title="Ping", output=None, error=None)


@bp.post("/tools/ping")
def ping() -> Any:
    if request.is_json:
        host = str(json_object().get("host", ""))
    else:
        host = request.form.get("host", "")
    output, error, status = run_ping(host)
    if request.is_json:
        return jsonify(output=output, error=error), status
    return render_template("ping.html", title="Ping", output=output, error=error), status


def run_ping(host: str) -> tuple[str | None, str | None, int]:
    """Pretend to ping: the demo must never touch the network, so it only echoes."""
    # A scratch working directory: shell redirections in hostile input must not litter the caller's cwd.
    scratch = state().workspace.root
    try:
        if planted("command_injection"):
            proc = subprocess.run(f"echo pinging {host}", shell=True, capture_output=True, text=True,
                                  timeout=5, cwd=scratch)
        elif not _HOSTNAME.match(host):
            return None, "invalid host name", 400
        else:
            proc = subprocess.run(["echo", "pinging", host], capture_output=True, text=True, timeout=5,
                                  cwd=scratch)
    except subprocess.TimeoutExpired:
        return None, "timed out", 504
    return proc.stdout[:10_000], None, 200


@bp.get("/tools/calc")
def calc() -> Any:
    expr = request.args.get("expr")
    if expr is None:
        return render_template("calc.html", title="Calculator", expr=None, result=None, error=None)
    try:
        result = eval(expr) if planted("code_injection") else evaluate_arithmetic(expr)
    except Exception as exc:  # any bad formula is the user's mistake, not a server error
        return render_template("calc.html", title="Calculator", expr=expr, result=None,
                               error=f"Cannot evaluate: {type(exc).__name__}"), 400
    return render_template("calc.html", title="Calculator", expr=expr, result=result, error=None)


# --- accounts: profile, password reset, webhooks ------------------------------------------------------


@bp.post("/api/profile")
@login_required
def api_profile() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="expected a JSON object"), 400
    display_name = str(body.get("display_name", g.user["display_name"]))[:80]
    bio = str(body.get("bio", g.user["bio"]))[:1000]
    raw_address = body.get("address")
    address = raw_address if isinstance(raw_address, dict) else {}
    city = str(address.get("city", g.user["city"]))[:80]
    db().execute("UPDATE users SET display_name = ?, bio = ?, city = ? WHERE id = ?",
                 (display_name, bio, city, g.user["id"]))
    if planted("profile_mass_assignment") and isinstance(body.get("role"), str):
        # "Generic" update: every users column the client sends is copied, the role included.
        db().execute("UPDATE users SET role = ? WHERE id = ?", (body["role"][:20], g.user["id"]))
    audit("profile.update", f"user_id={g.user['id']}")
    return jsonify(display_name=display_name, bio=bio, address={"city": city})


@bp.get("/api/webhooks")
@login_required
def api_webhooks() -> Response:
    rows = db().execute("SELECT id, url, events FROM webhooks WHERE owner_id = ? ORDER BY id",
                        (g.user["id"],)).fetchall()
    hooks = [{"id": r["id"], "url": r["url"], "events": json.loads(r["events"])} for r in rows]
    return jsonify(webhooks=hooks)


@bp.post("/api/webhooks")
@login_required
def api_create_webhook() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="expected a JSON object"), 400
    url = str(body.get("url", ""))
    events = body.get("events") or ["invoice.paid"]
    if not re.match(r"^https?://[^\s/]+", url) or len(url) > 500:
        return jsonify(error="url must be an http(s) URL"), 400
    if not isinstance(events, list) or not all(isinstance(e, str) and len(e) < 50 for e in events):
        return jsonify(error="events must be a list of event names"), 400
    cur = db().execute("INSERT INTO webhooks (owner_id, url, events) VALUES (?,?,?)",
                       (g.user["id"], url, json.dumps(events)))
    audit("webhook.create", f"id={cur.lastrowid}")
    return jsonify(id=cur.lastrowid, url=url, events=events), 201


# --- admin --------------------------------------------------------------------------------------------


@bp.get("/admin")
@admin_required
def admin_home() -> str:
    return render_template("admin.html", title="Admin", users=None, events=None)


@bp.get("/admin/users")
@admin_required
def admin_users() -> str:
    users = db().execute("SELECT id, username, email, role FROM users ORDER BY id").fetchall()
    return render_template("admin.html", title="Users", users=users, events=None)


@bp.get("/admin/audit")
@admin_required
def admin_audit() -> str:
    events = db().execute("SELECT * FROM audit_log ORDER BY id DESC LIMIT 200").fetchall()
    return render_template("admin.html", title="Audit log", users=None, events=events)


@bp.get("/admin/export")
@login_required
def admin_export() -> Any:
    # The role check lives in the view so the planted flaw can skip it, like a forgotten decorator.
    if g.user["role"] != "admin" and not planted("admin_export_bfla"):
        abort(403)
    rows = db().execute("SELECT id, username, email, role FROM users ORDER BY id").fetchall()
    audit("admin.export", f"rows={len(rows)}")
    return jsonify(users=[dict(r) for r in rows])
