"""Security policy shared by the Flask and FastAPI demos: headers, CORS decisions, redirect targets."""

from __future__ import annotations

import re

SESSION_COOKIE = "session_id"
TRUSTED_ORIGIN = "https://app.democorp.example"
CSP = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'"
HSTS = "max-age=63072000; includeSubDomains"
VERSION_HEADERS = {"Server": "DemoCorp-API/1.4.2 Python/3.11.7"}
HARDENING_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,185}\.[A-Za-z]{2,24}$")


def origin_allowed(origin: str, flaws: frozenset[str]) -> bool:
    """Whether CORS should grant `origin` credentialed access."""
    if origin == TRUSTED_ORIGIN:
        return True
    if "cors_null_origin" in flaws and origin == "null":
        return True
    # "Validation" that only checks the scheme: any web origin passes.
    return "cors_reflect_origin" in flaws and re.match(r"^https?://", origin) is not None


def safe_next(target: str | None, fallback: str) -> str:
    """A same-site relative path, or `fallback`: never an absolute or scheme-relative URL."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return fallback
    if any(ch in target for ch in "\r\n\t\\"):
        return fallback
    return target
