"""Which TLS endpoint to examine, and the scope guard: only loopback or in-scope hosts are contacted."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import ssl
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bastion.errors import BastionError, ScopeError


class TlsScopeError(ScopeError):
    """The TLS endpoint is neither loopback nor in the scan's scope."""


@dataclasses.dataclass(frozen=True)
class TlsEndpoint:
    """Where to connect (`host`, `port`), the name the certificate must carry, and how findings name it."""

    host: str
    port: int
    server_name: str
    # Stable name for findings: never an ephemeral loopback port of a served context.
    label: str
    ca_file: Path | None = None
    pins: tuple[str, ...] = ()
    # Bastion serves the service's own server-side SSLContext (`tls: {context: ...}`) on loopback.
    context_spec: str | None = None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and the name localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_scope(host: str, allowed: Iterable[str]) -> None:
    """Raise TlsScopeError unless `host` is loopback or one of the allowed hosts (`host` or `host:port`)."""
    names = {h.lower().rsplit(":", 1)[0] if h.count(":") == 1 else h.lower() for h in allowed}
    if not is_loopback(host) and host.lower() not in names:
        raise TlsScopeError(f"TLS endpoint {host!r} is out of scope: only loopback or the scope hosts "
                            f"({', '.join(sorted(names)) or 'none'}) may be contacted")


def endpoint_from_url(url: str, *, ca_file: Path | None = None, pins: Iterable[str] = (),
                      server_name: str | None = None) -> TlsEndpoint:
    """The endpoint of an https:// URL (port 443 unless given)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise BastionError(f"{url}: TLS checks need an https:// URL with a host")
    port = parts.port or 443
    return TlsEndpoint(host=parts.hostname, port=port, server_name=server_name or parts.hostname,
                       label=f"https://{parts.hostname}:{port}", ca_file=ca_file, pins=tuple(pins))


def endpoint_for_scan(config: Any, target: Any) -> TlsEndpoint | None:
    """The endpoint a scan examines: the model's `tls:` section, else an https URL target; None if neither."""
    tls = getattr(config, "tls", None)
    target_host = urlsplit(target.base_url).hostname or ""
    if tls is None:
        if target.kind == "url" and target.is_https:
            return endpoint_from_url(target.base_url)
        return None
    ca_file = config.resolve_path(tls.ca_file) if tls.ca_file else None
    if tls.context is not None:
        if not target.in_process:
            raise BastionError("tls.context needs an in-process target (target.app); for a running "
                               "service give tls.host and tls.port")
        name = tls.server_name or target_host or "localhost"
        return TlsEndpoint(host="127.0.0.1", port=0, server_name=name, label=f"https://{name}",
                           ca_file=ca_file, pins=tuple(tls.pin), context_spec=tls.context)
    if tls.host is None and not (target.kind == "url" and target.is_https):
        raise BastionError("tls: give 'host' (and 'port'), 'context', or scan an https:// target URL")
    host = tls.host or target_host
    port = tls.port or (urlsplit(target.base_url).port if tls.host is None else None) or 443
    check_scope(host, [target_host, *target.scope_hosts])
    return TlsEndpoint(host=host, port=port, server_name=tls.server_name or host, label=f"https://{host}:{port}",
                       ca_file=ca_file, pins=tuple(tls.pin))


def _server_context(spec: str, app: Any) -> ssl.SSLContext:
    from bastion.target.target import load_app

    factory = load_app(spec)
    context = factory(app) if callable(factory) else factory
    if not isinstance(context, ssl.SSLContext):
        raise BastionError(f"tls.context {spec}: expected an ssl.SSLContext, got {type(context).__name__}")
    return context


@contextlib.contextmanager
def open_endpoint(endpoint: TlsEndpoint, app: Any = None) -> Iterator[TlsEndpoint]:
    """The endpoint ready to connect to: a served context gets a loopback listener for the `with` block."""
    if endpoint.context_spec is None:
        yield endpoint
        return
    from bastion.tls.listener import serve_tls

    with serve_tls(_server_context(endpoint.context_spec, app)) as (host, port):
        yield dataclasses.replace(endpoint, host=host, port=port)
