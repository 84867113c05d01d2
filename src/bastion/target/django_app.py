"""Django projects as in-process targets: find the handler behind middleware, check ALLOWED_HOSTS.

`target.app: "myproject.wsgi:application"` (or `asgi:application`) imports the project's standard
`wsgi.py`/`asgi.py`, which sets `DJANGO_SETTINGS_MODULE` and builds the handler. Django answers 400
(DisallowedHost) to every request whose Host is not in `settings.ALLOWED_HOSTS`, so a scan of such a
project would only see 400s: that is refused up front with a configuration error instead.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import httpx

from bastion.errors import TargetError

# Attributes middlewares commonly keep the wrapped app under (WhiteNoise: `application`).
_WRAPPED_ATTRS = ("application", "app", "wsgi_app", "_app", "wrapped", "__wrapped__")
_MAX_DEPTH = 12


def find_django_handler(app: Any) -> Any | None:
    """The Django WSGIHandler/ASGIHandler reachable from `app` (middleware unwrapped), if any."""
    if "django" not in sys.modules:  # not a Django process: never import Django for nothing
        return None
    try:
        from django.core.handlers.base import BaseHandler
    except ImportError:
        return None
    seen: set[int] = set()

    def walk(obj: Any, depth: int) -> Any | None:
        if obj is None or id(obj) in seen or depth > _MAX_DEPTH:
            return None
        seen.add(id(obj))
        if isinstance(obj, BaseHandler):
            return obj
        owner = getattr(obj, "__self__", None)
        if owner is not None and not isinstance(owner, type):
            found = walk(owner, depth + 1)
            if found is not None:
                return found
        for attr in _WRAPPED_ATTRS:
            try:
                inner = inspect.getattr_static(obj, attr)
            except AttributeError:
                continue
            if callable(inner) and not inspect.isfunction(inner) or isinstance(inner, BaseHandler):
                found = walk(inner, depth + 1)
                if found is not None:
                    return found
        for cell in getattr(obj, "__closure__", None) or ():
            try:
                found = walk(cell.cell_contents, depth + 1)
            except ValueError:  # empty cell
                continue
            if found is not None:
                return found
        return None

    return walk(app, 0)


def allowed_hosts() -> list[str]:
    """The hosts Django accepts, as `HttpRequest.get_host` computes them (DEBUG adds localhost)."""
    from django.conf import settings

    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def check_allowed_hosts(app: Any, base_url: str, spec: str = "") -> None:
    """Raise TargetError when `app` is a Django project whose ALLOWED_HOSTS rejects `base_url`'s host."""
    if find_django_handler(app) is None:
        return
    from django.http.request import split_domain_port, validate_host

    host = httpx.URL(base_url).netloc.decode("ascii")
    domain, _port = split_domain_port(host)
    hosts = allowed_hosts()
    if domain and validate_host(domain, hosts):
        return
    raise TargetError(
        f"{spec or 'target.app'}: Django's settings.ALLOWED_HOSTS {hosts!r} does not allow {domain!r}, the host "
        f"Bastion uses for in-process requests, so every request would answer 400 (DisallowedHost). "
        f"Add {domain!r} to ALLOWED_HOSTS in the settings the scan runs with, or set target.base_url to a URL "
        f"whose host ALLOWED_HOSTS accepts.")
