"""OIDC role logins against a third-party-style relying party, with the test provider on 127.0.0.1:
browser-style authorization code through the target, Bastion as the OIDC client, client credentials,
key rotation, and every failing step as a ConfigError naming the role and the step."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from bastion.doubles import OIDCProvider
from bastion.errors import ConfigError
from bastion.identity.login import login_roles_sync
from bastion.identity.oidc import oidc_scope_hosts, origin
from bastion.identity.session import RoleSession
from bastion.model.loader import load_config_text
from bastion.model.schema import RoleConfig
from bastion.target.client import ProbeClient
from bastion.target.exchange import Exchange
from bastion.target.target import Target

from .oidc_rp import ALICE_PASSWORD, CLIENT_ID, CLIENT_SECRET, RelyingParty, register, rp_target


@pytest.fixture(scope="module")
def idp() -> Iterator[OIDCProvider]:
    with OIDCProvider().serve() as provider:
        register(provider)
        yield provider


def browser_role(idp: OIDCProvider, **overrides: Any) -> RoleConfig:
    oidc = {"issuer": idp.issuer, "client_id": CLIENT_ID, "flow": "authorization_code", "username": "alice",
            "password": ALICE_PASSWORD, "start": "/login/oidc", **overrides}
    return RoleConfig.model_validate({"oidc": oidc})


def get(target: Target, session: RoleSession | None, path: str) -> Exchange:
    async def run() -> Exchange:
        async with ProbeClient(target) as client:
            return await client.request("GET", path, **(session.apply({}) if session else {}))

    return asyncio.run(run())


def test_authorization_code_through_the_target_keeps_its_session_cookie(idp: OIDCProvider) -> None:
    target = rp_target(idp, RelyingParty(idp.issuer))
    alice = login_roles_sync(target, {"alice": browser_role(idp)})["alice"]
    me = get(target, alice, "/me")
    assert me.status == 200 and '"user":"alice"' in me.text.replace(" ", "")
    assert get(target, None, "/me").status == 401
    assert alice.login_path == "/login/oidc"
    # The provider's host joined the scan's scope; its cookies and the role's secrets are masked.
    assert origin(idp.issuer).split("://")[1] in target.scope_hosts
    secrets = alice.secret_values()
    assert ALICE_PASSWORD in secrets and alice.cookies["session"] in secrets
    assert any(len(value) >= 16 for value in secrets - {ALICE_PASSWORD, *alice.cookies.values()})  # IdP csrf


def test_wrong_password_fails_at_the_provider_login_step(idp: OIDCProvider) -> None:
    target = rp_target(idp, RelyingParty(idp.issuer))
    with pytest.raises(ConfigError) as err:
        login_roles_sync(target, {"alice": browser_role(idp, password="wrong")})
    message = str(err.value)
    assert "role 'alice'" in message and "'provider-login'" in message and "wrong username or password" in message
    assert "wrong" not in message.replace("wrong username", "")  # the password itself is not echoed
    assert err.value.key == "roles.alice.oidc"


def test_a_start_route_that_does_not_redirect_fails_at_the_start_step(idp: OIDCProvider) -> None:
    target = rp_target(idp, RelyingParty(idp.issuer))
    with pytest.raises(ConfigError, match="'start'.*answered 404"):
        login_roles_sync(target, {"alice": browser_role(idp, start="/sso/begin")})


def test_a_callback_the_target_rejects_fails_at_the_callback_step(idp: OIDCProvider) -> None:
    # A relying party that trusts another provider: the ID token's signature does not verify.
    other = OIDCProvider()
    rp = RelyingParty(idp.issuer)
    rp.keys = {idp.active_kid: _public_key(other)}
    with pytest.raises(ConfigError, match="'callback'.*answered 401"):
        login_roles_sync(rp_target(idp, rp), {"alice": browser_role(idp)})


def _public_key(provider: OIDCProvider) -> Any:
    import jwt

    return jwt.PyJWKSet.from_dict(provider.jwks()).keys[0].key


def test_bastion_as_the_client_gets_user_tokens_with_pkce(idp: OIDCProvider) -> None:
    rp = RelyingParty(idp.issuer)
    target = rp_target(idp, rp)
    role = RoleConfig.model_validate({"oidc": {"issuer": idp.issuer, "client_id": "bastion-cli",
                                               "username": "alice", "password": ALICE_PASSWORD,
                                               "redirect_uri": "http://127.0.0.1/bastion-callback"}})
    alice = login_roles_sync(target, {"alice": role})["alice"]
    assert alice.headers["Authorization"].startswith("Bearer ")
    who = get(target, alice, "/api/whoami")
    assert who.status == 200 and '"sub":"alice"' in who.text.replace(" ", "")
    assert alice.renewer is not None  # the provider gave a refresh token
    assert alice.expires_at is not None
    token = alice.headers["Authorization"].removeprefix("Bearer ")
    assert token in alice.secret_values()


def test_client_credentials_gives_a_bearer_token(idp: OIDCProvider) -> None:
    target = rp_target(idp, RelyingParty(idp.issuer))
    role = RoleConfig.model_validate({"oidc": {"issuer": idp.issuer, "client_id": "reporting-job",
                                               "client_secret": "job-secret", "flow": "client_credentials",
                                               "scope": "reports"}})
    job = login_roles_sync(target, {"job": role})["job"]
    who = get(target, job, "/api/whoami")
    assert who.status == 200 and "reporting-job" in who.text
    assert "job-secret" in job.secret_values() and job.renewer is None


def test_client_credentials_with_a_wrong_secret_fails_at_the_token_step(idp: OIDCProvider) -> None:
    role = RoleConfig.model_validate({"oidc": {"issuer": idp.issuer, "client_id": "reporting-job",
                                               "client_secret": "nope", "flow": "client_credentials"}})
    with pytest.raises(ConfigError, match="'token'.*invalid_client"):
        login_roles_sync(rp_target(idp, RelyingParty(idp.issuer)), {"job": role})


def test_a_provider_that_is_not_there_fails_at_discovery(idp: OIDCProvider) -> None:
    role = RoleConfig.model_validate({"oidc": {"issuer": idp.issuer + "/realms/none", "client_id": "x",
                                               "client_secret": "y", "flow": "client_credentials"}})
    with pytest.raises(ConfigError, match="'discovery'.*404"):
        login_roles_sync(rp_target(idp, RelyingParty(idp.issuer)), {"job": role})


def test_key_rotation_old_tokens_verify_during_grace_and_the_rp_refetches_jwks() -> None:
    with OIDCProvider(key_grace=3600).serve() as idp:
        register(idp)
        rp = RelyingParty(idp.issuer)
        target = rp_target(idp, rp)
        before = login_roles_sync(target, {"alice": browser_role(idp)})["alice"]
        old_token = idp.issue("alice")
        assert rp.jwks_fetches == 1
        idp.rotate_keys()
        after = login_roles_sync(target, {"alice": browser_role(idp)})["alice"]
        assert rp.jwks_fetches == 2  # the new ID token named a kid the RP did not know
        assert get(target, after, "/me").status == 200 and get(target, before, "/me").status == 200
        # A relying party starting now still gets the old key from the JWKS during the grace period.
        fresh_rp = RelyingParty(idp.issuer)
        assert fresh_rp.verify(old_token)["sub"] == "alice"


def test_config_from_yaml_with_secrets_from_the_environment() -> None:
    text = """
target: {url: "http://127.0.0.1:8000"}
roles:
  alice:
    oidc: {issuer: "http://127.0.0.1:9000", client_id: rp, client_secret: "${RP_SECRET}",
           username: alice, password: "${ALICE_PASSWORD}", start: /login/oidc}
  job: {oidc: {issuer: "http://127.0.0.1:9001", client_id: job, client_secret: "${JOB}", flow: client_credentials}}
"""
    cfg = load_config_text(text, {"RP_SECRET": "rp-s3cret", "ALICE_PASSWORD": "pw-1", "JOB": "job-s3cret"})
    assert cfg.roles["alice"].oidc is not None and cfg.roles["alice"].oidc.password == "pw-1"
    assert {"rp-s3cret", "pw-1", "job-s3cret"} <= cfg.secret_values()
    assert oidc_scope_hosts(cfg.roles) == ["127.0.0.1:9000", "127.0.0.1:9001"]


@pytest.mark.parametrize(("oidc", "message"), [
    ({"flow": "client_credentials"}, "needs a client_secret"),
    ({"flow": "authorization_code", "start": "/login"}, "needs a username and a password"),
    ({"username": "a", "password": "b"}, "give 'start'"),
    ({"issuer": "ftp://idp", "client_secret": "s", "flow": "client_credentials"}, "http:// or https://"),
])
def test_invalid_oidc_blocks_are_config_errors(oidc: dict[str, str], message: str) -> None:
    block = {"issuer": "http://127.0.0.1:9000", "client_id": "c", **oidc}
    with pytest.raises(ConfigError, match=message):
        load_config_text(f"target: {{url: 'http://127.0.0.1:8000'}}\nroles: {{r: {{oidc: {block!r}}}}}\n", {})


def test_login_and_oidc_together_is_a_config_error() -> None:
    text = ("target: {url: 'http://127.0.0.1:8000'}\nroles: {r: {login: {path: /login}, oidc: "
            "{issuer: 'http://127.0.0.1:9000', client_id: c, client_secret: s, flow: client_credentials}}}\n")
    with pytest.raises(ConfigError, match="either 'login' or 'oidc'"):
        load_config_text(text, {})


def test_secrets_never_reach_the_error_message(idp: OIDCProvider) -> None:
    role = RoleConfig.model_validate({"oidc": {"issuer": idp.issuer, "client_id": "reporting-job",
                                               "client_secret": "very-secret-value", "flow": "client_credentials"}})
    with pytest.raises(ConfigError) as err:
        login_roles_sync(rp_target(idp, RelyingParty(idp.issuer)), {"job": role})
    assert "very-secret-value" not in str(err.value)
    assert CLIENT_SECRET not in str(err.value)
