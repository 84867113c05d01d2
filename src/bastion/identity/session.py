"""A logged-in role: the cookies, headers and token applied to every request sent as that role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.target.client import ProbeClient


@dataclass
class RoleSession:
    """Credentials of one role; `apply` merges them into a request's keyword arguments."""

    name: str
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    login_path: str | None = None
    # Values obtained or configured for this role that must never appear in any output.
    secrets: set[str] = field(default_factory=set)
    # Logs the role in again (in place) with the given client; set by the login flow that made it.
    refresher: Callable[[ProbeClient, RoleSession], Awaitable[None]] | None = field(default=None, repr=False)

    async def refresh(self, client: ProbeClient) -> bool:
        """Log in again (expired session, or after a target reset); False if the role cannot re-login."""
        if self.refresher is None:
            return False
        await self.refresher(client, self)
        return True

    def apply(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Request kwargs with this role's cookies and headers underneath the caller's own."""
        out = dict(kwargs)
        headers = {k.lower(): v for k, v in self.headers.items()}
        headers.update({k.lower(): v for k, v in (kwargs.get("headers") or {}).items()})
        cookies = {**self.cookies, **(kwargs.get("cookies") or {})}
        if headers:
            out["headers"] = headers
        if cookies:
            out["cookies"] = cookies
        return out

    def secret_values(self) -> set[str]:
        """Cookie values, header values and configured secrets of this role, to redact."""
        return {*self.secrets, *self.cookies.values(), *self.headers.values()}
