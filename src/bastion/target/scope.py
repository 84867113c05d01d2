"""The scope guard: every request, redirects included, must go to an allowlisted host."""

from __future__ import annotations

from dataclasses import dataclass, field

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
        u = httpx.URL(str(url))
        if u.scheme not in ("http", "https"):
            return False
        host = (u.host or "").lower().strip("[]")
        return host in {h.strip("[]") for h in self.hosts}

    def path_excluded(self, url: str | httpx.URL) -> bool:
        path = httpx.URL(str(url)).path
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.exclude_paths)

    def require(self, url: str | httpx.URL) -> None:
        if not self.allows(url):
            raise ScopeError(f"{url}: outside the scope (allowed hosts: {', '.join(sorted(self.hosts))})")
