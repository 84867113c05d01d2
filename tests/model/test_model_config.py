"""bastion.yaml: schema, `${VAR}` interpolation, cross-field rules and errors with file:line:key."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest

from bastion.errors import ConfigError
from bastion.model import BastionConfig, load_config, load_config_text
from bastion.target import Limits

DATA = Path(__file__).parent.parent / "data" / "model"
ENV = {"ALICE_PASSWORD": "alice-pw-1234", "ADMIN_PASSWORD": "admin-pw-5678", "ADMIN_TOTP": "JBSWY3DPEHPK3PXP",
       "SERVICE_TOKEN": "svc-token-abcdef"}
VALID = """\
target:
  url: "http://127.0.0.1:8000"
roles:
  anonymous: {}
  alice:
    login: { path: /login, json: { username: alice, password: "${ALICE_PASSWORD}" } }
  admin:
    login: { path: /login, form: { username: admin } }
assets:
  invoice: { path: "/api/invoices/{id}", owner_field: owner, data: [pii] }
access:
  "GET /api/invoices/{id}": [owner, admin]
data_classes: { pii: [email] }
accepted:
  - { threat: headers.csp-missing, path: /legacy, reason: "old", until: 2027-03-01 }
budgets: { max_requests: 100 }
"""


def error_for(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, ENV if env is None else env, name="bastion.yaml")
    assert info.value.file == "bastion.yaml"
    return info.value


def mutate(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


def test_full_example_loads() -> None:
    config = load_config(DATA / "full.yaml", env=ENV)
    assert isinstance(config, BastionConfig)
    assert config.target.app == "myservice.wsgi:create_app()"
    assert config.target.base_url == "https://shop.test"
    assert config.scope.hosts == ["127.0.0.1", "shop.test:8443"]
    assert config.roles["anonymous"].login is None
    assert config.roles["alice"].login.json_body == {"username": "alice", "password": "alice-pw-1234"}
    assert config.roles["bob"].login.form == {"username": "bob", "password": "bob-default"}
    assert config.roles["bob"].cookies == {"lang": "en"}
    assert config.roles["admin"].mfa.totp_secret == "JBSWY3DPEHPK3PXP"
    assert config.roles["service"].headers == {"Authorization": "Bearer svc-token-abcdef"}
    assert config.assets["invoice"].data == ["pii"]
    assert config.allowed_roles("get", "/api/invoices/{id}") == ("owner", "admin")
    assert config.allowed_roles("GET", "/nothing") is None
    assert [r.method for r in config.access_rules()] == ["GET", "DELETE", "GET"]
    assert config.accepted[0].until == datetime.date(2027, 3, 1)
    assert config.accepted[1].until == datetime.date(2027, 1, 15)
    assert config.accepted[1].role == "bob"
    assert config.checks.include == ["injection", "headers"]
    assert config.role_names() == ["anonymous", "alice", "bob", "admin", "service"]


def test_secret_values_are_the_interpolated_env_values_only() -> None:
    config = load_config(DATA / "full.yaml", env=ENV)
    # The default (bob-default) is written in the file: not a secret.
    expected = {"alice-pw-1234", "admin-pw-5678", "JBSWY3DPEHPK3PXP", "svc-token-abcdef"}
    assert config.secret_values() == expected


def test_paths_resolve_next_to_the_config_file() -> None:
    config = load_config(DATA / "full.yaml", env=ENV)
    assert config.resolve_path(config.target.openapi) == (DATA / "../openapi/shop-3.0.yaml").absolute()
    assert config.resolve_path(config.target.openapi).is_file()
    assert config.resolve_path("/abs/x.yaml") == Path("/abs/x.yaml")
    assert config.source == (DATA / "full.yaml").absolute()


def test_limits_default_and_override() -> None:
    assert load_config(DATA / "minimal.yaml", env={}).limits() == Limits()
    limits = load_config(DATA / "full.yaml", env=ENV).limits()
    assert (limits.max_requests, limits.request_timeout, limits.total_time) == (500, 2.5, 60.0)
    assert (limits.max_response_bytes, limits.concurrency) == (65536, 2)
    assert limits.max_redirects == Limits().max_redirects


def test_env_defaults_escapes_and_empty_values() -> None:
    text = mutate('username: alice', 'username: "${WHO:-al}-$${LITERAL}-${EMPTY:-dflt}-${SET_EMPTY}"')
    config = load_config_text(text, {**ENV, "EMPTY": "", "SET_EMPTY": ""})
    assert config.roles["alice"].login.json_body["username"] == "al-${LITERAL}-dflt-"
    # Non-string values are never interpolated; numbers from the environment still validate.
    text = mutate("max_requests: 100", 'max_requests: "${MAXREQ}"')
    config = load_config_text(text, {**ENV, "MAXREQ": "42"})
    assert config.limits().max_requests == 42


def test_unset_variable_names_file_line_key_and_variable() -> None:
    err = error_for(VALID, env={})
    assert err.line == 6
    assert err.key == "roles.alice.login.json.password"
    assert "ALICE_PASSWORD is not set" in str(err)
    assert str(err).startswith("bastion.yaml:6: roles.alice.login.json.password:")


@pytest.mark.parametrize("value, message", [
    ('"${1BAD}"', "malformed variable reference"),
    ('"${OPEN"', "unterminated"),
])
def test_malformed_references(value: str, message: str) -> None:
    err = error_for(mutate('"${ALICE_PASSWORD}"', value))
    assert message in err.reason and err.line == 6


@pytest.mark.parametrize("old, new, line, key, message", [
    ("roles:\n", "roles:\n  alicee: { hedaers: {} }\n", 4, "roles.alicee.hedaers", "did you mean 'headers'"),
    ("budgets:", "budget:", 16, "budget", "did you mean 'budgets'"),
    ("  url: ", "  app: \"x:y\"\n  url: ", 1, "target", "exactly one of 'app'"),
    ('"http://127.0.0.1:8000"', '"ftp://x"', 2, "target.url", "http:// or https://"),
    ("[owner, admin]", "[owner, admn]", 12, 'access."GET /api/invoices/{id}"[1]', "did you mean 'admin'"),
    ('"GET /api/invoices/{id}"', '"FETCH /api/invoices/{id}"', 12, 'access."FETCH /api/invoices/{id}"',
     "METHOD /path"),
    ('"GET /api/invoices/{id}"', '"GET api/invoices"', 12, 'access."GET api/invoices"', "METHOD /path"),
    ("data: [pii]", "data: [pii, money]", 10, "assets.invoice.data[1]", "unknown data class 'money'"),
    ("reason: \"old\", ", "", 15, "accepted[0].reason", "missing required key 'reason'"),
    ("until: 2027-03-01", "until: soon", 15, "accepted[0].until", "expected a date"),
    ("threat: headers.csp-missing, ", "threat: headers.csp-missing, role: mallory, ", 15, "accepted[0].role",
     "unknown role 'mallory'"),
    ("headers.csp-missing", "headers.csp-mising", 15, "accepted[0].threat",
     "did you mean 'headers.csp-missing'"),
    ("max_requests: 100", "max_requests: 0", 16, "budgets.max_requests", "greater than 0"),
    ("max_requests: 100", "max_requests: lots", 16, "budgets.max_requests", "valid integer"),
    ("max_requests: 100", "max_requests: true", 16, "budgets.max_requests", "got a boolean"),
    ("max_requests: 100", "total_time: .inf", 16, "budgets.total_time", "finite"),
    ("  admin:\n", "  yes:\n", 7, "roles.True", "must be a string; quote it"),
    ("path: /login, json", "path: login, json", 6, "roles.alice.login.path", "starting with '/'"),
    ("form: { username: admin }", "form: { username: [admin] }", 8, "roles.admin.login.form.username",
     "expected a string, got a list"),
    ("form: { username: admin }", "form: { username: admin }, json: {}", 8, "roles.admin.login",
     "either 'json' or 'form'"),
    ("login: { path: /login, form", "method: FETCH\n    login: { path: /login, form", 8, "roles.admin.method",
     "unknown key 'method'"),
    ("  admin:\n", "  owner:\n", 7, "roles.owner", "pseudo-role"),
    ("  admin:\n", "  bad name:\n", 7, 'roles."bad name"', "invalid name"),
    ("roles:\n", "roles:\n  anonymous2: { mfa: { totp_secret: JBSWY3DP } }\n", 4, "roles.anonymous2.mfa",
     "needs a 'login'"),
    ("data_classes: { pii: [email] }", "data_classes: [pii]", 13, "data_classes", "expected a mapping"),
    ("roles:\n", "scope: { hosts: \"127.0.0.1\" }\nroles:\n", 3, "scope.hosts", "expected a list"),
    ("roles:\n", "scope: { hosts: [\"http://127.0.0.1/x\"] }\nroles:\n", 3, "scope.hosts", "not URLs"),
])
def test_invalid_configs_name_line_and_key(old: str, new: str, line: int, key: str, message: str) -> None:
    err = error_for(mutate(old, new))
    assert (err.line, err.key) == (line, key), str(err)
    assert message in err.reason, str(err)


def test_several_problems_report_the_first_and_count_the_rest() -> None:
    err = error_for(mutate("roles:\n", "roles:\n  x: { hedaers: {} }\n").replace("budgets:", "budget:"))
    assert err.line == 4 and "(and 1 more problem)" in err.reason


def test_invalid_totp_secret_is_not_echoed() -> None:
    root = "  root:\n    login: { path: /l }\n    mfa: { totp_secret: \"${TOTP}\" }\n"
    text = mutate("roles:\n", "roles:\n" + root)
    err = error_for(text, env={**ENV, "TOTP": "not-base32-SECRET!!"})
    assert err.key == "roles.root.mfa.totp_secret" and "base32" in err.reason
    assert "not-base32-SECRET!!" not in str(err)


def test_missing_openapi_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text('target:\n  url: "http://127.0.0.1:1"\n  openapi: spec.yaml\n')
    with pytest.raises(ConfigError, match="OpenAPI file not found") as info:
        load_config(path, env={})
    assert (info.value.line, info.value.key) == (3, "target.openapi")
    (tmp_path / "spec.yaml").write_text("openapi: 3.0.0\n")
    assert load_config(path, env={}).resolve_path("spec.yaml") == tmp_path / "spec.yaml"


def test_empty_sections_mean_their_defaults() -> None:
    config = load_config_text('target: { url: "http://h" }\nscope:\nroles:\nassets:\naccess:\ndata_classes:\n'
                              "accepted:\nchecks:\nbudgets:\n", {})
    assert (config.roles, config.accepted, config.scope.hosts, config.budgets) == ({}, [], [], None)
    assert config.limits() == Limits()


def test_target_is_required() -> None:
    err = error_for("roles: {}\n")
    assert err.key == "target" and "missing required key 'target'" in err.reason and err.line == 1


# --- hostile files -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, message, line", [
    ("empty.yaml", "file is empty", 1),
    ("list.yaml", "expected a mapping", 1),
    ("duplicate.yaml", "duplicate key 'alice' (first at line 3)", 4),
    ("alias-bomb.yaml", "once aliases are expanded", None),
    ("deep.yaml", "nesting deeper than 32 levels", 2),
    ("latin1.yaml", "not valid UTF-8", 5),
    ("utf16.yaml", "UTF-16", 1),
])
def test_hostile_files(name: str, message: str, line: int | None) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_config(DATA / name, env={})
    assert info.value.file == str(DATA / name)
    if line is not None:
        assert info.value.line == line
    assert str(info.value).startswith(str(DATA / name))


def test_huge_file_is_refused_by_size(tmp_path: Path) -> None:
    big = tmp_path / "bastion.yaml"
    with big.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    with pytest.raises(ConfigError, match="larger than the limit") as info:
        load_config(big, env={})
    assert info.value.file == str(big)


def test_duplicate_key_error_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(DATA / "duplicate.yaml", env={})
    assert info.value.key == "roles.alice"


def test_unknown_top_level_key_lists_allowed_keys() -> None:
    err = error_for(VALID + "zzz: 1\n")
    assert err.key == "zzz" and "allowed: target, scope, roles" in err.reason and err.line == 17


def test_every_example_in_the_docs_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "threat-model.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.DOTALL)
    assert len(blocks) >= 6
    (tmp_path / "api").mkdir()
    (tmp_path / "openapi.yaml").write_text("openapi: 3.0.0\n")
    (tmp_path / "api" / "openapi.yaml").write_text("openapi: 3.0.0\n")
    env = {"ALICE_PASSWORD": "a-pw", "ADMIN_PASSWORD": "b-pw", "ADMIN_TOTP": "JBSWY3DPEHPK3PXP",
           "SERVICE_TOKEN": "tok"}
    for index, block in enumerate(blocks):
        path = tmp_path / f"example{index}.yaml"
        has_target = block.startswith("target:") or "\ntarget:" in block
        prelude = "" if has_target else 'target: { url: "http://h" }\n'
        if "assets" not in block and "[owner, admin]" in block:
            prelude += "roles: { admin: {} }\n"
        path.write_text(prelude + block)
        load_config(path, env=env)
