"""The scope guard: every request, redirects included, must go to an allowlisted host."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import httpx

from bastion.errors import ScopeError


@dataclass(frozen=True)
class Scope:
    hosts: frozenset[str]
    exclude_paths: tuple[str, ...] = field(default=())

    @classmethod
    def for_base_url(cls, base_url: str, extra_hosts: list[str] | None = None,
                     exclude_paths: list[str] | None = None) -> Scope:
        host = httpx.URL(base_url).host
        return cls(frozenset({host.lower(), *(h.lower() for h in extra_hosts or [])}),
                   tuple(exclude_paths or ()))

    def allows(self, url: str | httpx.URL) -> bool:
        """An entry `host` allows any port of that host; `host:port` only that port."""
        u = httpx.URL(str(url))
        if u.scheme not in ("http", "https"):
            return False
        host = (u.host or "").lower().strip("[]")
        port = u.port or {"http": 80, "https": 443}[u.scheme]
        return host in self._any_port or (host, port) in self._host_ports

    @cached_property
    def _any_port(self) -> set[str]:
        return {_split_host_port(h)[0] for h in self.hosts if _split_host_port(h)[1] is None}

    @cached_property
    def _host_ports(self) -> set[tuple[str, int | None]]:
        return {_split_host_port(h) for h in self.hosts if _split_host_port(h)[1] is not None}

    def path_excluded(self, url: str | httpx.URL) -> bool:
        if not self.exclude_paths:  # the usual case: no URL to parse, twice per request
            return False
        path = httpx.URL(str(url)).path
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.exclude_paths)

    def require(self, url: str | httpx.URL) -> None:
        if not self.allows(url):
            raise ScopeError(f"{url}: outside the scope (allowed hosts: {', '.join(sorted(self.hosts))})")


def _split_host_port(entry: str) -> tuple[str, int | None]:
    """`example.test:8443` → ("example.test", 8443); `[::1]:8000` → ("::1", 8000); bare hosts → port None."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None
