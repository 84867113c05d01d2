"""Session probes shared by the session and MFA checks: fresh logins, a page that needs a login, the session cookie.

A "members page" is a GET entry point a logged-in role reaches (2xx) and an anonymous client does not
(401/403/404 or a redirect to a login page); replaying a cookie set against it tells whether that
cookie set is authenticated. The session cookie is the role cookie without which the page is denied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any

from bastion.errors import ConfigError
from bastion.identity.login import login_role
from bastion.identity.matrix import ALLOW, DENY, access_outcome
from bastion.identity.session import RoleSession
from bastion.target.exchange import Exchange

if TYPE_CHECKING:
    from bastion.engine.context import CheckContext

# GETs that end sessions or change state: never used as a probe page.
UNSAFE_PATH = re.compile(r"log-?out|sign-?out|delete|remove|destroy|revoke|mfa|otp|2fa|totp|verify",
                         re.IGNORECASE)
LOGOUT_PATH = re.compile(r"(^|/)(log-?out|sign-?out|log-?off|sign-?off)(/|$)", re.IGNORECASE)
MAX_PAGE_CANDIDATES = 25
# Share of the logged-in page a replayed session must reproduce to count as the same page.
SAME_PAGE = 0.8


class RecordingClient:
    """Wraps a ProbeClient and keeps every exchange it sends (login flows hide their responses)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.target = client.target
        self.exchanges: list[Exchange] = []

    async def request(self, method: str, path_or_url: str, **kwargs: Any) -> Exchange:
        ex = await self._client.request(method, path_or_url, **kwargs)
        self.exchanges.extend([*ex.history, ex])
        return ex


@dataclass
class MembersPage:
    path: str
    logged_in: Exchange


def same_page(a: Exchange, b: Exchange) -> bool:
    """Same status class and mostly the same body (logged-in pages carry per-request tokens)."""
    if a.status // 100 != b.status // 100:
        return False
    if a.text == b.text:
        return True
    return SequenceMatcher(None, a.text[:20_000], b.text[:20_000], autojunk=False).quick_ratio() >= SAME_PAGE


def cookie_roles(ctx: CheckContext) -> list[str]:
    """Logged-in roles whose session is carried by cookies (not a bearer header), in config order."""
    return [name for name, s in ctx.roles.items() if s.cookies and name in ctx.role_configs
            and getattr(ctx.role_configs[name], "login", None) is not None]


async def members_page(ctx: CheckContext, role: str) -> MembersPage | None:
    """A GET page `role` reaches and anonymous does not (memoised per check run)."""
    key = f"members_page:{role}"
    if key in ctx.memo:
        return ctx.memo[key]  # type: ignore[no-any-return]
    login_paths = tuple(s.login_path for s in ctx.roles.values() if s.login_path)
    found: MembersPage | None = None
    candidates = [ep for ep in ctx.surface.sorted()
                  if ep.method == "GET" and "{" not in ep.path and not UNSAFE_PATH.search(ep.path)]
    for ep in candidates[:MAX_PAGE_CANDIDATES]:
        mine = await ctx.send("GET", ep.path, as_role=role)
        if not (mine.ok and 200 <= mine.status < 300):
            continue
        anon = await ctx.send("GET", ep.path, as_role="anonymous")
        if access_outcome(anon, login_paths) == DENY:
            found = MembersPage(ep.path, mine)
            break
    ctx.memo[key] = found
    return found


async def authenticated(ctx: CheckContext, page: MembersPage, cookies: dict[str, str],
                        headers: dict[str, str] | None = None) -> tuple[bool, Exchange]:
    """Whether exactly these cookies (and headers) reach the members page like the logged-in role."""
    login_paths = tuple(s.login_path for s in ctx.roles.values() if s.login_path)
    ex = await ctx.send("GET", page.path, as_role="anonymous", cookies=cookies, headers=headers or {})
    ok = access_outcome(ex, login_paths) == ALLOW and 200 <= ex.status < 300 and same_page(ex, page.logged_in)
    return ok, ex


async def session_cookie(ctx: CheckContext, role: str, page: MembersPage) -> str | None:
    """The role cookie whose absence turns the members page into a denial."""
    key = f"session_cookie:{role}"
    if key in ctx.memo:
        return ctx.memo[key]  # type: ignore[no-any-return]
    jar = ctx.roles[role].cookies
    found = None
    for name in sorted(jar):
        ok, _ = await authenticated(ctx, page, {k: v for k, v in jar.items() if k != name},
                                    headers=ctx.roles[role].headers)
        if not ok:
            found = name
            break
    ctx.memo[key] = found
    return found


async def fresh_login(ctx: CheckContext, role: str, *, cookies: dict[str, str] | None = None,
                      second_factor: bool = True) -> tuple[RoleSession, list[Exchange]] | None:
    """A new, separate login of `role` (starting from `cookies`); None when it fails.

    Its secrets join the role's, so they are redacted from every finding.
    """
    config = ctx.role_configs.get(role)
    if config is None or getattr(config, "login", None) is None:
        return None
    if cookies:
        config = config.model_copy(update={"cookies": {**config.cookies, **cookies}})
    recorder = RecordingClient(ctx.client)
    try:
        session = await login_role(recorder, role, config, second_factor=second_factor)  # type: ignore[arg-type]
    except ConfigError:
        return None
    finally:
        ctx.stats.requests += len(recorder.exchanges)
    if role in ctx.roles:
        ctx.roles[role].secrets.update(session.secret_values())
    return session, recorder.exchanges


def set_cookie_headers(exchanges: list[Exchange], name: str) -> list[tuple[Exchange, str]]:
    """Raw Set-Cookie headers for cookie `name` along the exchanges, with the exchange that carried each."""
    out = []
    for ex in exchanges:
        for raw in ex.header_values("set-cookie"):
            if raw.split("=", 1)[0].strip() == name:
                out.append((ex, raw))
    return out


def cookie_attributes(raw: str) -> dict[str, str]:
    """The attributes of one Set-Cookie header (lower-case names; flags map to "")."""
    attrs: dict[str, str] = {}
    for part in raw.split(";")[1:]:
        key, _, value = part.partition("=")
        attrs.setdefault(key.strip().lower(), value.strip())
    return attrs
