"""A logged-in role: the cookies, headers and token applied to every request sent as that role."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.target.client import ProbeClient

# Renew this long before the expiry (capped at a tenth of the lifetime, so short-lived tokens still get used).
EXPIRY_MARGIN_S = 5.0


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
    # When the credentials stop working (epoch seconds: JWT `exp`, `expires_in`, cookie Max-Age), if known.
    expires_at: float | None = None
    # Renews the credentials without a full login (a refresh_token grant); False = could not, log in again.
    renewer: Callable[[ProbeClient, RoleSession], Awaitable[bool]] | None = field(default=None, repr=False)
    # Where "now" comes from; tests inject a fake clock instead of sleeping.
    clock: Callable[[], float] = field(default=time.time, repr=False)
    _margin: float = field(default=0.0, repr=False)
    _renewing: asyncio.Future[bool] | None = field(default=None, repr=False)

    async def refresh(self, client: ProbeClient) -> bool:
        """Log in again (expired session, or after a target reset); False if the role cannot re-login."""
        if self.refresher is None:
            return False
        self.remember_credentials()
        await self.refresher(client, self)
        return True

    def remember_credentials(self) -> None:
        """Keep the current cookie and header values as secrets: replaced credentials stay redacted."""
        self.secrets |= {*self.cookies.values(), *self.headers.values()}

    def set_expiry(self, expires_at: float | None) -> None:
        """Record when the credentials expire (None: unknown, never renewed on time)."""
        self.expires_at = expires_at
        if expires_at is not None:
            self._margin = min(EXPIRY_MARGIN_S, max(0.0, (expires_at - self.clock()) / 10))

    def expired(self) -> bool:
        """Whether the credentials are past (or about to pass) their known expiry."""
        return self.expires_at is not None and self.clock() >= self.expires_at - self._margin

    def take_lifetime(self, fresh: RoleSession) -> None:
        """Adopt the expiry and renewer of a fresh login of the same role."""
        self.expires_at, self._margin, self.renewer = fresh.expires_at, fresh._margin, fresh.renewer

    async def ensure_fresh(self, client: ProbeClient) -> bool:
        """Renew expired credentials before a request (refresh grant, else a new login); True if renewed.

        Concurrent requests of one role share one renewal: refresh tokens are single-use.
        """
        if not self.expired():
            return False
        pending = self._renewing
        if pending is not None and not pending.done() and pending.get_loop() is asyncio.get_running_loop():
            return await asyncio.shield(pending)
        self._renewing = asyncio.ensure_future(self._renew(client))
        return await self._renewing

    async def _renew(self, client: ProbeClient) -> bool:
        self.remember_credentials()
        renewed = self.renewer is not None and await self.renewer(client, self)
        if not renewed:
            renewed = await self.refresh(client)
        if self.expired():
            # Still expired (clock skew, an IdP issuing dead tokens): stop renewing before every request.
            self.expires_at = None
        return renewed

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
