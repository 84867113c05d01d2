"""The threat-model file (bastion.yaml) as pydantic models; unknown keys are errors everywhere."""

from __future__ import annotations

import dataclasses
import difflib
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from bastion.target.budget import Limits

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
# Roles every policy may name without defining them: the owner of the asset instance, and nobody.
PSEUDO_ROLES = ("owner", "anonymous")

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
NonEmptyStr = Annotated[str, Field(min_length=1)]
UrlPath = Annotated[str, Field(pattern=r"^/\S*$", description="a path starting with '/'")]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")]
Scalar = str | int | float | bool


def _not_a_boolean(value: Any) -> Any:
    # pydantic reads `true` as 1; for a count or a duration that is always a mistake.
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


PositiveInt = Annotated[int, BeforeValidator(_not_a_boolean), Field(gt=0)]
PositiveFloat = Annotated[float, BeforeValidator(_not_a_boolean), Field(gt=0, allow_inf_nan=False)]
# Optional sections may be left empty (`accepted:`), which YAML reads as null.
_EMPTY_SECTIONS: dict[str, Any] = {
    "scope": {}, "roles": {}, "assets": {}, "access": {}, "data_classes": {}, "accepted": [],
}

ACCESS_KEY_PATTERN = re.compile(r"^(?P<method>[A-Z]+) (?P<path>/\S*)$")
_APP_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*(\(.*\))?$", re.DOTALL)
_BASE32 = re.compile(r"^[A-Z2-7]+=*$")


class KeyedError(ValueError):
    """A cross-field error that knows which key (relative to the model) is at fault."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _check_http_url(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL with a host")
    return value


class TargetConfig(_Strict):
    """What to scan: an importable app (in-process) or a running URL, plus an optional OpenAPI file."""

    app: NonEmptyStr | None = Field(None, description="in-process app: 'module:app' or 'module:factory()'")
    url: str | None = Field(None, description="base URL of a running service you own")
    openapi: NonEmptyStr | None = Field(None, description="OpenAPI 3.x file, relative to this file")
    base_url: str | None = Field(None, description="URL the in-process app believes it is served at")
    reset: NonEmptyStr | None = Field(None, description="'module:function' that restores the target's data "
                                      "after state-changing probes; called with the app (in-process) or "
                                      "the base URL")

    @field_validator("app", "reset")
    @classmethod
    def _app_spec(cls, value: str | None) -> str | None:
        if value is not None and not _APP_SPEC.match(value.strip()):
            raise ValueError("must look like 'module:app' or 'module:factory()'")
        return value

    @field_validator("url", "base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _check_http_url(value, "value")

    @model_validator(mode="after")
    def _app_xor_url(self) -> TargetConfig:
        if (self.app is None) == (self.url is None):
            raise ValueError("give exactly one of 'app' (in-process) or 'url' (running service)")
        if self.base_url is not None and self.url is not None:
            raise KeyedError(("base_url",), "base_url is only for in-process 'app' targets; "
                                            "'url' is already the base")
        return self


class ScopeConfig(_Strict):
    """Where traffic may go; empty `hosts` means only the target's own host."""

    hosts: list[NonEmptyStr] = Field(default_factory=list)
    exclude_paths: list[UrlPath] = Field(default_factory=list)

    @field_validator("hosts")
    @classmethod
    def _bare_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if "/" in host or " " in host:
                raise ValueError(f"hosts are host names or addresses (with an optional :port), "
                                 f"not URLs: {host!r}")
        return hosts


class LoginConfig(_Strict):
    """How a role logs in: one request whose response sets a cookie or returns a token."""

    path: UrlPath
    method: HttpMethod = "POST"
    json_body: dict[str, Any] | None = Field(None, alias="json")
    form: dict[str, Scalar] | None = None
    params: dict[str, Scalar] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    form_page: UrlPath | None = Field(None, description="page holding the login form (CSRF token); "
                                                        "default: `path`")
    csrf_field: NonEmptyStr | None = Field(None, description="hidden CSRF field name; default: every "
                                                             "hidden field of the login form")
    token_path: NonEmptyStr | None = Field(None, description="dot path of the token in the JSON "
                                                             "response; default: access_token, token, jwt")
    token_header: NonEmptyStr = "Authorization"
    token_prefix: str = "Bearer"

    @model_validator(mode="after")
    def _one_body(self) -> LoginConfig:
        if self.json_body is not None and self.form is not None:
            raise ValueError("give either 'json' or 'form' for the login body, not both")
        return self


class MfaConfig(_Strict):
    """Second factor for a role: the TOTP seed (base32), normally from the environment."""

    totp_secret: NonEmptyStr

    @field_validator("totp_secret")
    @classmethod
    def _base32(cls, value: str) -> str:
        # Never echo the value: it is a secret.
        if not _BASE32.match(value.replace(" ", "").upper()):
            raise ValueError("must be a base32 TOTP secret (letters A-Z and digits 2-7)")
        return value


class BasicAuthConfig(_Strict):
    """HTTP basic credentials for a role."""

    username: NonEmptyStr
    password: NonEmptyStr


class RoleConfig(_Strict):
    """One identity the scan acts as; `headers` also carries API keys (e.g. `X-API-Key`)."""

    login: LoginConfig | None = None
    mfa: MfaConfig | None = None
    basic: BasicAuthConfig | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    cookies: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mfa_needs_login(self) -> RoleConfig:
        if self.mfa is not None and self.login is None:
            raise KeyedError(("mfa",), "'mfa' needs a 'login' to complete")
        return self


class AssetConfig(_Strict):
    """Something worth protecting, where it lives, who owns an instance and what data it holds."""

    path: UrlPath
    owner_field: NonEmptyStr | None = None
    data: list[NonEmptyStr] = Field(default_factory=list)


class AcceptedRisk(_Strict):
    """A finding the team has decided to live with, for a reason, until a date."""

    threat: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
    path: UrlPath | None = None
    method: HttpMethod | None = None
    role: NonEmptyStr | None = None
    reason: NonEmptyStr
    until: date
    owner: NonEmptyStr | None = Field(None, description="person or team who accepted the risk")


class ChecksConfig(_Strict):
    """Check ids or prefixes (`injection`, `headers.csp`) to run or skip."""

    include: list[NonEmptyStr] = Field(default_factory=list)
    exclude: list[NonEmptyStr] = Field(default_factory=list)


class BudgetsConfig(_Strict):
    """Caps for the run; unset ones keep Bastion's defaults."""

    max_requests: PositiveInt | None = None
    request_timeout: PositiveFloat | None = None
    total_time: PositiveFloat | None = None
    max_response_bytes: PositiveInt | None = None
    concurrency: PositiveInt | None = None


@dataclasses.dataclass(frozen=True)
class AccessRule:
    """One line of the access policy: who may call `method path`."""

    method: str
    path: str
    roles: tuple[str, ...]


class BastionConfig(_Strict):
    """A parsed, validated bastion.yaml."""

    target: TargetConfig
    scope: ScopeConfig = Field(default_factory=ScopeConfig)
    roles: dict[Name, RoleConfig] = Field(default_factory=dict)
    assets: dict[Name, AssetConfig] = Field(default_factory=dict)
    access: dict[str, list[NonEmptyStr]] = Field(default_factory=dict)
    data_classes: dict[Name, list[NonEmptyStr]] = Field(default_factory=dict)
    accepted: list[AcceptedRisk] = Field(default_factory=list)
    checks: ChecksConfig | None = None
    # Which entry points state-changing probes may call: "auto" (every one on in-process targets,
    # none on URL targets), "all", "none", or a list of "METHOD /path" entries ("* /path" = any method).
    writes: Literal["auto", "all", "none"] | list[NonEmptyStr] = "auto"
    budgets: BudgetsConfig | None = None

    _source: Path | None = PrivateAttr(default=None)
    _secrets: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        if isinstance(data, dict):
            empty = _EMPTY_SECTIONS
            return {k: (empty[k] if v is None and k in empty else v) for k, v in data.items()}
        return data

    @field_validator("roles", mode="before")
    @classmethod
    def _empty_roles(cls, value: Any) -> Any:
        # `anonymous:` with nothing after it is YAML null; it means "a role with no credentials".
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _cross_references(self) -> BastionConfig:
        for problem in self._reference_problems():
            raise problem
        return self

    def _reference_problems(self) -> list[KeyedError]:
        known = set(self.roles) | set(PSEUDO_ROLES)
        problems: list[KeyedError] = []
        if "owner" in self.roles:
            problems.append(KeyedError(("roles", "owner"),
                                       "'owner' is a pseudo-role (the owner of an asset); pick another name"))
        if self.roles.get("anonymous", RoleConfig()).login is not None:
            problems.append(KeyedError(("roles", "anonymous", "login"), "the anonymous role cannot log in"))
        for key, roles in self.access.items():
            match = ACCESS_KEY_PATTERN.match(key)
            if match is None or match["method"] not in HTTP_METHODS:
                problems.append(KeyedError(("access", key), "access keys look like 'METHOD /path', "
                                                            "e.g. 'GET /api/invoices/{id}'"))
                continue
            for index, role in enumerate(roles):
                if role not in known:
                    problems.append(KeyedError(("access", key, index), _unknown_role(role, known)))
        for index, risk in enumerate(self.accepted):
            if risk.role is not None and risk.role not in known:
                problems.append(KeyedError(("accepted", index, "role"), _unknown_role(risk.role, known)))
        for name, asset in self.assets.items():
            for index, data_class in enumerate(asset.data):
                if data_class not in self.data_classes:
                    defined = ", ".join(sorted(self.data_classes)) or "none defined"
                    message = f"unknown data class {data_class!r} (data_classes: {defined})"
                    problems.append(KeyedError(("assets", name, "data", index), message))
        return problems

    def secret_values(self) -> set[str]:
        """Every value that came from a `${VAR}` interpolation; reports and logs must mask them."""
        return set(self._secrets)

    @property
    def source(self) -> Path | None:
        """The file this config was loaded from, if any."""
        return self._source

    def config_hash(self) -> str:
        """Identity of the configuration for the history: the file as written (with `${VAR}`s, never
        their values), or the settings themselves for a config built in code."""
        import hashlib

        if self._source is not None and self._source.is_file():
            data = self._source.read_bytes()
        else:
            data = self.model_dump_json().encode()
            for secret in self._secrets:
                data = data.replace(secret.encode(), b"***")
        return hashlib.sha256(data).hexdigest()[:16]

    def resolve_path(self, p: str | Path) -> Path:
        """A path from the config, relative to the config file's directory (else the working directory)."""
        path = Path(p).expanduser()
        if path.is_absolute():
            return path
        base = self._source.parent if self._source is not None else Path.cwd()
        return base / path

    def limits(self) -> Limits:
        """Run limits: the `budgets` that are set, Bastion's defaults for the rest."""
        if self.budgets is None:
            return Limits()
        overrides = {k: v for k, v in self.budgets.model_dump().items() if v is not None}
        return dataclasses.replace(Limits(), **overrides)

    def access_rules(self) -> list[AccessRule]:
        """The access policy as parsed rules, in file order."""
        rules = []
        for key, roles in self.access.items():
            method, _, path = key.partition(" ")
            rules.append(AccessRule(method=method, path=path, roles=tuple(roles)))
        return rules

    def allowed_roles(self, method: str, path: str) -> tuple[str, ...] | None:
        """Roles the policy allows on `method path` (a path template), or None when it says nothing."""
        roles = self.access.get(f"{method.upper()} {path}")
        return None if roles is None else tuple(roles)

    def role_names(self) -> list[str]:
        """Defined roles, with `anonymous` always present (first)."""
        names = [n for n in self.roles if n != "anonymous"]
        return ["anonymous", *names]


def _unknown_role(role: str, known: set[str]) -> str:
    hint = difflib.get_close_matches(role, sorted(known), n=1)
    suffix = f" (did you mean {hint[0]!r}?)" if hint else f" (defined: {', '.join(sorted(known))})"
    return f"unknown role {role!r}{suffix}"
