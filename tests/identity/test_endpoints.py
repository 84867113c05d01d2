"""Generic discovery of login, sign-up, reset and password-change endpoints, and login outcome judgement."""

from __future__ import annotations

from bastion.identity.endpoints import discover_auth, login_accepted, signature_of
from bastion.model.schema import RoleConfig
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.exchange import Exchange, SentRequest


def _ep(method: str, path: str, location: str, *names: str) -> EntryPoint:
    return EntryPoint(method, path, inputs=[Input(location, n) for n in names])  # type: ignore[arg-type]


def _surface() -> Surface:
    return Surface([
        _ep("POST", "/auth/sign-in", "json", "user_name", "passwd"),
        _ep("POST", "/members", "form", "handle", "e_mail", "pwd", "pwd_confirm"),
        _ep("GET", "/members", "query", "page"),
        _ep("POST", "/forgot-password", "json", "email"),
        _ep("POST", "/reset/{key}", "json", "new_password"),
        _ep("POST", "/me/password", "form", "old_password", "new_password"),
        _ep("POST", "/orders", "json", "sku", "quantity"),
        _ep("POST", "/auth/logout", "form", "token"),
    ])


def test_discovers_every_kind_from_field_and_path_names() -> None:
    auth = discover_auth(_surface(), {})
    assert [(e.path, e.identity_field, e.password_field) for e in auth.logins] == \
        [("/auth/sign-in", "user_name", "passwd")]
    [signup] = auth.signups
    assert (signup.path, signup.user_field, signup.email_field, signup.password_field, signup.confirm_fields,
            signup.form_page) == ("/members", "handle", "e_mail", "pwd", ("pwd_confirm",), "/members")
    assert [(e.path, e.identity_field) for e in auth.resets] == [("/forgot-password", "email")]
    assert [e.path for e in auth.reset_confirms] == ["/reset/{key}"]
    [change] = auth.password_changes
    assert (change.current_password_field, change.password_field) == ("old_password", "new_password")
    assert auth.accounts == []  # users are never guessed


def test_role_configs_come_first_and_name_the_known_accounts() -> None:
    configs = {
        "anonymous": RoleConfig(),
        "carol": RoleConfig.model_validate({"login": {"path": "/session", "form": {
            "email": "carol@shop.example", "password": "s3cret-Carol", "remember": "1"}}}),
        "dan": RoleConfig.model_validate({"login": {"path": "/session", "form": {
            "email": "dan@shop.example", "password": "s3cret-Dan", "remember": "1"}}}),
    }
    auth = discover_auth(_surface(), configs)
    assert [e.path for e in auth.logins] == ["/session", "/auth/sign-in"]
    session = auth.logins[0]
    # Credentials are filled per request: the endpoint's defaults never carry a role's password.
    assert session.fields == {"email": "", "password": "", "remember": "1"}
    assert [(a.role, a.username, a.email) for a in auth.accounts] == \
        [("carol", "carol@shop.example", "carol@shop.example"), ("dan", "dan@shop.example", "dan@shop.example")]


def _ex(status: int, headers: list[tuple[str, str]] | None = None, body: str = "") -> Exchange:
    return Exchange(request=SentRequest("POST", "http://t/login", []), status=status, headers=headers or [],
                    body=body.encode())


def test_login_accepted_against_a_known_failure() -> None:
    failed = _ex(200, body="<p>Wrong password</p>")
    assert login_accepted(_ex(302, [("location", "/home"), ("set-cookie", "sid=abc; Path=/")]), failed, "/login")
    assert login_accepted(_ex(200, [("content-type", "application/json")], '{"access_token": "x"}'),
                          _ex(401), "/login")
    # Sent back to the login page, or the same answer as the failure: not a login.
    assert not login_accepted(_ex(302, [("location", "/login?error=1")]), _ex(401), "/login")
    assert not login_accepted(_ex(200, body="<p>Wrong password</p>"), failed, "/login")
    assert signature_of(_ex(302, [("location", "/a?x=1"), ("set-cookie", "s=1")])) == (302, "/a", ("s",))
