"""The demo's flaw registry: which flaws exist, where they live and which checks must find them.

This table is the test oracle of the whole suite: planting a flaw must make each of its `checks`
fire, and the hardened twin (no flaws) must make none of them fire. Ids are a contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Flaw:
    id: str
    title: str
    checks: tuple[str, ...]
    location: str


_TABLE: tuple[Flaw, ...] = (
    Flaw("debug_console", "Werkzeug interactive debugger exposed", ("config.debug-exposed",),
         "GET /console (Werkzeug debugger, evalex on; PIN-protected)"),
    Flaw("verbose_errors", "Unhandled exceptions return a Python traceback", ("config.stack-trace",),
         "GET /invoices?page= (non-integer page raises ValueError; error handler returns the traceback)"),
    Flaw("version_banner", "Server and framework versions in response headers", ("config.version-banner",),
         "every response: Server: DemoCorp-API/1.4.2 Python/3.11.7, X-Powered-By: Flask/3.1.3"),
    Flaw("exposed_files", "Project directory served as static files", ("config.file-exposure",),
         "GET /.env, /.git/config, /.git/HEAD, /app.py.bak, /settings.py~ "
         "and GET /backup/ (directory listing)"),
    Flaw("missing_security_headers", "No CSP, X-Content-Type-Options, X-Frame-Options or Referrer-Policy",
         ("headers.csp-missing", "headers.xcto-missing", "headers.frame-options-missing",
          "headers.referrer-policy-missing"),
         "every response"),
    Flaw("missing_hsts", "No Strict-Transport-Security on https responses", ("headers.hsts-missing",),
         "every https response"),
    Flaw("insecure_session_cookie", "Session cookie without HttpOnly, Secure and SameSite",
         ("headers.cookie-flags",), "Set-Cookie: session_id on GET / (first visit) and POST /login"),
    Flaw("cors_reflect_origin", "CORS reflects any http(s) Origin with credentials",
         ("cors.origin-reflection",),
         "every /api/ route (Access-Control-Allow-Origin echoes Origin, Allow-Credentials: true)"),
    Flaw("cors_null_origin", "CORS allows Origin: null with credentials", ("cors.null-origin",),
         "every /api/ route (allowlist contains 'null')"),
    Flaw("sqli_error", "Error-based SQL injection (DB error text returned)", ("injection.sql",),
         "GET /products?category= (query string; f-string SQL, sqlite3 error message in a 500)"),
    Flaw("sqli_boolean", "Boolean-based blind SQL injection in a nested JSON field", ("injection.sql",),
         "POST /api/invoices/search (JSON filter.status; errors swallowed, empty list)"),
    Flaw("sqli_time", "Time-based blind SQL injection through a request header", ("injection.sql",),
         "GET /api/stats (header X-Tenant; result ignored; sqlite sleep(n) function, capped at 3 s)"),
    Flaw("xss_reflected", "Reflected XSS in the search page", ("injection.xss-reflected",),
         "GET /search?q= (query string echoed unescaped into HTML)"),
    Flaw("xss_upload_filename", "Reflected XSS through an uploaded file's name", ("injection.xss-reflected",),
         "POST /upload (multipart file 'document': its file name is echoed unescaped)"),
    Flaw("xss_stored", "Stored XSS in the guestbook", ("injection.xss-stored",),
         "POST /guestbook (form field message) rendered unescaped on GET /guestbook"),
    Flaw("path_traversal", "Path traversal in file download", ("injection.path-traversal",),
         "GET /files/{name} (path segment; os.path.join without containment check)"),
    Flaw("command_injection", "OS command injection in the network diagnostic", ("injection.command",),
         "POST /tools/ping (form or JSON field host; shell=True)"),
    Flaw("ssti", "Server-side template injection through a cookie", ("injection.ssti",),
         "GET / (cookie display_name rendered with render_template_string)"),
    Flaw("code_injection", "Python code injection in the calculator", ("injection.code",),
         "GET /tools/calc?expr= (query string passed to eval())"),
    Flaw("xxe", "XML external entities resolved on import", ("injection.xxe",),
         "POST /api/import (application/xml body; lxml with resolve_entities=True, load_dtd=True)"),
    Flaw("open_redirect", "Open redirect after login and logout", ("injection.open-redirect",),
         "GET /logout?next= and POST /login (field next) redirect to any URL"),
    Flaw("crlf_injection", "CRLF injection into a response header", ("injection.crlf",),
         "GET /set-language?lang= (value written raw into Set-Cookie by a hand-rolled WSGI header hook)"),
    Flaw("invoice_bola", "Any signed-in user can read any user's invoice (BOLA/IDOR)", ("authz.bola",),
         "GET /api/invoices/{id} (ownership not checked for signed-in users)"),
    Flaw("admin_export_bfla", "Admin user export reachable by every signed-in user (BFLA)",
         ("authz.bfla", "authz.policy-drift"),
         "GET /admin/export (login required instead of the admin role)"),
)

FLAWS: dict[str, Flaw] = {f.id: f for f in _TABLE}

# Flaws the FastAPI variant plants; the others are accepted by create_fastapi_app but not planted.
FASTAPI_FLAWS: frozenset[str] = frozenset({
    "version_banner", "missing_security_headers", "missing_hsts", "insecure_session_cookie",
    "cors_reflect_origin", "cors_null_origin", "sqli_error", "xss_reflected", "ssti", "code_injection",
    "open_redirect",
})


def resolve_flaws(spec: str | Iterable[str] | None = "all") -> frozenset[str]:
    """Turn "all", "none", "a,b" or an iterable of ids into a set of flaw ids (ValueError on unknown)."""
    if spec is None:
        return frozenset()
    if isinstance(spec, str):
        text = spec.strip()
        if text == "all":
            return frozenset(FLAWS)
        if text in ("", "none"):
            return frozenset()
        ids = [part.strip() for part in text.split(",") if part.strip()]
    else:
        ids = [str(part).strip() for part in spec]
    unknown = sorted(set(ids) - set(FLAWS))
    if unknown:
        raise ValueError(f"unknown demo flaw id(s): {', '.join(unknown)} (known: {', '.join(sorted(FLAWS))})")
    return frozenset(ids)
