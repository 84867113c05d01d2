"""pytest fixtures for identities: `tokens` (issue, refresh, expire, revoke), `totp(role)`, `oidc_provider`.

    def test_expired_token_is_refused(bastion_client, tokens):
        r = bastion_client.get("/api/me", headers={"authorization": f"Bearer {tokens.expired('alice')}"})
        assert r.status == 401

Registered by bastion.pytest_plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyotp
import pytest

from bastion.doubles.oidc import OIDCProvider
from bastion.model.schema import RoleConfig


class TokenKit:
    """Tokens for the threat model's roles: from an OIDC provider when one is bound, else by logging in."""

    def __init__(self, roles: Mapping[str, RoleConfig] | None = None, provider: OIDCProvider | None = None,
                 login: Callable[[str], str] | None = None) -> None:
        self.roles = roles
        self.provider = provider
        self._login = login
        self._refresh_of: dict[str, str] = {}  # access token -> its refresh token
        self._role_of: dict[str, str] = {}  # token -> role it was issued for

    def use(self, provider: OIDCProvider) -> TokenKit:
        """Issue from `provider` from now on (e.g. one the test built itself); returns self."""
        self.provider = provider
        return self

    def _role(self, role: str) -> RoleConfig | None:
        if self.roles is None:
            return None
        if role not in self.roles or role == "anonymous":
            known = ", ".join(name for name in self.roles if name != "anonymous") or "none"
            raise pytest.UsageError(f"tokens: no role {role!r} that can hold a token in the threat model "
                                    f"(roles: {known})")
        return self.roles[role]

    def _subject(self, role: str) -> tuple[str, str | None]:
        """(sub, client_id) for `role`: its OIDC username and client when it has an `oidc:` block."""
        config = self._role(role)
        oidc = config.oidc if config is not None else None
        if oidc is None:
            return role, None
        return (oidc.username or oidc.client_id), oidc.client_id

    def _need_provider(self, what: str) -> OIDCProvider:
        if self.provider is None:
            raise pytest.UsageError(f"tokens.{what} needs an OIDC provider: request the `oidc_provider` "
                                    "fixture in the test or call tokens.use(provider)")
        return self.provider

    def issue(self, role: str, /, **claims: Any) -> str:
        """A valid access token for `role` (extra `claims` need a provider: a login cannot choose them)."""
        if self.provider is None:
            if claims:
                self._need_provider("issue(role, **claims)")
            return self._login_token(role)
        sub, client_id = self._subject(role)
        body = self.provider.issue_tokens(sub, client_id=client_id or "", **claims)
        self._remember(role, body)
        return str(body["access_token"])

    def refresh(self, token_or_role: str) -> str:
        """A new access token for the role of a token (provider: a refresh_token grant, which rotates)."""
        role = self._role_of.get(token_or_role, token_or_role)
        if self.provider is None:
            return self._login_token(role)
        refresh_token = self._refresh_of.get(token_or_role) or self._refresh_of.get(role)
        if refresh_token is None:
            raise pytest.UsageError(f"tokens.refresh({token_or_role[:12]!r}...): not a token or role that "
                                    "tokens.issue() gave out")
        body = self.provider.refresh(refresh_token)
        self._remember(role, body)
        return str(body["access_token"])

    def expired(self, role: str, /, **claims: Any) -> str:
        """A validly signed token for `role` whose `exp` has passed."""
        provider = self._need_provider("expired")
        sub, client_id = self._subject(role)
        return provider.expire(provider.issue(sub, client_id=client_id, **claims))

    def revoke(self, token: str) -> None:
        """Revoke an access token (and the refresh token issued with it) at the provider."""
        provider = self._need_provider("revoke")
        provider.revoke(token)
        refresh_token = self._refresh_of.pop(token, None)
        if refresh_token is not None:
            provider.revoke(refresh_token)

    def _remember(self, role: str, body: Mapping[str, Any]) -> None:
        access = str(body["access_token"])
        self._role_of[access] = role
        if body.get("refresh_token"):
            self._refresh_of[access] = self._refresh_of[role] = str(body["refresh_token"])

    def _login_token(self, role: str) -> str:
        self._role(role)
        if self._login is None:
            raise pytest.UsageError("tokens: no OIDC provider and no threat model to log in with "
                                    "(pass --bastion-config, or request the `oidc_provider` fixture)")
        token = self._login(role)
        self._role_of[token] = role
        return token


def _bearer_login(request: pytest.FixtureRequest, roles: Mapping[str, RoleConfig]) -> Callable[[str], str]:
    """Log a role in against the configured target and return its bearer token."""

    def login(role: str) -> str:
        from bastion.identity.login import login_roles_sync

        target = request.getfixturevalue("bastion_target")
        session = login_roles_sync(target, {role: roles[role]})[role]
        for name, value in session.headers.items():
            scheme, _, token = value.partition(" ")
            if name.lower() == "authorization" and scheme.lower() == "bearer" and token:
                return token
        raise pytest.UsageError(f"tokens.issue({role!r}): the role's login gives no bearer token (cookie "
                                "session?); bind an OIDC provider to issue tokens for it")

    return login


@pytest.fixture
def oidc_provider() -> Iterator[OIDCProvider]:
    """A fresh OIDC provider served on 127.0.0.1 for this test; register clients and users on it."""
    with OIDCProvider().serve() as provider:
        yield provider


@pytest.fixture
def tokens(request: pytest.FixtureRequest, bastion_config: Any) -> TokenKit:
    """`tokens.issue("alice", **claims)`, `.refresh(token)`, `.expired("alice")`, `.revoke(token)`.

    Bound to the threat model's roles and, when the test uses `oidc_provider`, to that provider.
    """
    roles = dict(bastion_config.roles) if bastion_config is not None else None
    provider = request.getfixturevalue("oidc_provider") if "oidc_provider" in request.fixturenames else None
    return TokenKit(roles, provider, _bearer_login(request, roles) if roles is not None else None)


@pytest.fixture
def totp(bastion_config: Any) -> Callable[..., str]:
    """`totp("admin")`: the role's current TOTP code (from its `mfa.totp_secret`); `at=` a timestamp."""

    def code(role: str, at: float | None = None) -> str:
        roles = bastion_config.roles if bastion_config is not None else {}
        config = roles.get(role)
        if config is None:
            known = ", ".join(sorted(roles)) or "none: pass --bastion-config"
            raise pytest.UsageError(f"totp({role!r}): no such role in the threat model (roles: {known})")
        if config.mfa is None:
            raise pytest.UsageError(f"totp({role!r}): role {role!r} has no mfa.totp_secret in the threat model")
        generator = pyotp.TOTP(config.mfa.totp_secret.replace(" ", "").upper())
        try:
            return generator.now() if at is None else generator.at(at)
        except ValueError as exc:  # e.g. a seed shorter than pyotp accepts; never echo the seed itself
            raise pytest.UsageError(f"totp({role!r}): roles.{role}.mfa.totp_secret is not usable: {exc}") from None

    return code
