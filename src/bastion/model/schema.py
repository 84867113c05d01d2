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
    "scope": {}, "roles": {}, "assets": {}, "access": {}, "data_classes": {}, "accepted": [], "data_stores": {},
    "dependencies": {},
    "retention": {},
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
    allow_destructive: bool = Field(False, description="URL targets: allow fault injection and drills that "
                                                       "break the service's dependencies (in-process: always)")

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
    """Second factor for a role: the TOTP seed (base32), normally from the environment.

    Where the code goes is found after the primary login (the page it redirects to, or `form_page`:
    a form with one otp/code/totp/token field); `path`, `field` and `method` pin it explicitly.
    """

    totp_secret: NonEmptyStr
    path: UrlPath | None = Field(None, description="endpoint the code is submitted to; default: the "
                                                   "action of the one-time-code form")
    field: NonEmptyStr | None = Field(None, description="name of the code field; default: the form's "
                                                        "otp/code/totp/token input, else 'code'")
    method: HttpMethod | None = Field(None, description="default: the form's method, else POST")
    form_page: UrlPath | None = Field(None, description="page holding the one-time-code form; default: "
                                                        "where the primary login redirects")

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


class OidcConfig(_Strict):
    """A role that logs in through an OpenID Connect provider (client credentials or authorization code)."""

    issuer: str = Field(description="issuer URL; its /.well-known/openid-configuration is read")
    client_id: NonEmptyStr
    client_secret: str | None = Field(None, description="confidential clients; from ${ENV}")
    flow: Literal["client_credentials", "authorization_code"] = "authorization_code"
    username: str | None = None
    password: str | None = None
    scope: str = "openid"
    redirect_uri: str | None = Field(None, description="without `start`: the redirect URI registered for "
                                                       "Bastion as the client (never called)")
    start: UrlPath | None = Field(None, description="target route that redirects to the provider "
                                                    "(browser-style login through the target)")
    username_field: NonEmptyStr | None = Field(None, description="default: the provider form's text field")
    password_field: NonEmptyStr | None = Field(None, description="default: the provider form's password field")
    token_header: NonEmptyStr = "Authorization"
    token_prefix: str = "Bearer"

    @field_validator("issuer", "redirect_uri")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _check_http_url(value, "value")

    @model_validator(mode="after")
    def _flow_needs(self) -> OidcConfig:
        if self.flow == "client_credentials":
            if not self.client_secret:
                raise KeyedError(("client_secret",), "the client_credentials flow needs a client_secret")
            if self.start is not None:
                raise KeyedError(("start",), "'start' is for the authorization_code flow")
        else:
            if not self.username or not self.password:
                raise KeyedError(("username",), "the authorization_code flow needs a username and a password")
            if self.start is None and self.redirect_uri is None:
                raise KeyedError(("redirect_uri",), "give 'start' (log in through the target) or "
                                                    "'redirect_uri' (Bastion is the OIDC client)")
        return self


class RoleConfig(_Strict):
    """One identity the scan acts as; `headers` also carries API keys (e.g. `X-API-Key`)."""

    login: LoginConfig | None = None
    oidc: OidcConfig | None = None
    mfa: MfaConfig | None = None
    basic: BasicAuthConfig | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    cookies: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_login_flow(self) -> RoleConfig:
        if self.login is not None and self.oidc is not None:
            raise KeyedError(("oidc",), "give either 'login' or 'oidc' for a role, not both")
        return self

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


# --- TLS endpoint and data stores (bastion.tls, bastion.backup) ---------------------------------
# "15m", "24h", "1h30m", "7d": a duration the backup drill compares its measurements with.
Duration = Annotated[str, Field(pattern=r"^\s*(\d+\s*[smhdw]\s*)+$", description="e.g. 30s, 15m, 24h, 7d")]
_SPKI_PIN = re.compile(r"^sha256/[A-Za-z0-9+/]{43}=$")


class TlsConfig(_Strict):
    """The TLS endpoint to examine: a host and port, or (in-process targets) the service's own SSLContext."""

    host: NonEmptyStr | None = Field(None, description="default: the host of an https target URL")
    port: Annotated[int, BeforeValidator(_not_a_boolean), Field(gt=0, lt=65536)] | None = None
    server_name: NonEmptyStr | None = Field(None, description="SNI and the name the certificate must match; "
                                                              "default: the host (or the target's host)")
    ca_file: NonEmptyStr | None = Field(None, description="PEM trust anchors for a private CA, relative to "
                                                          "this file; default: the system trust store")
    pin: list[NonEmptyStr] = Field(default_factory=list, description="SPKI pins 'sha256/BASE64'; the "
                                                                     "endpoint's key must match one")
    context: NonEmptyStr | None = Field(None, description="'module:function' returning the server-side "
                                                          "ssl.SSLContext the service runs with (called with "
                                                          "the in-process app); Bastion serves it on loopback")

    @field_validator("pin", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("pin")
    @classmethod
    def _pin_format(cls, pins: list[str]) -> list[str]:
        for pin in pins:
            if not _SPKI_PIN.match(pin):
                raise ValueError(f"pins look like 'sha256/' + base64 of the SPKI SHA-256 (44 chars), got {pin!r}")
        return pins

    @field_validator("context")
    @classmethod
    def _context_spec(cls, value: str | None) -> str | None:
        if value is not None and not _APP_SPEC.match(value.strip()):
            raise ValueError("must look like 'module:function'")
        return value

    @model_validator(mode="after")
    def _context_or_host(self) -> TlsConfig:
        if self.context is not None and (self.host is not None or self.port is not None):
            raise KeyedError(("context",), "give either 'context' (served on loopback by Bastion) or "
                                           "'host'/'port', not both")
        return self


class BackupConfig(_Strict):
    """Where a data store's backups are and how they are protected."""

    path: NonEmptyStr | None = Field(None, description="backup file or glob (newest match wins), relative to "
                                                       "this file; may come from the store's `locate`")
    encrypted: bool = Field(False, description="the backups must be encrypted")
    key_env: NonEmptyStr | None = Field(None, description="environment variable holding the decryption key")
    format: Literal["fernet", "aes-gcm"] = Field("fernet", description="encryption format (docs/backup.md)")


class DataStoreConfig(_Strict):
    """A database whose backups the recovery drill restores and compares with the live data."""

    kind: Literal["sqlite", "postgresql"]
    path: NonEmptyStr | None = Field(None, description="SQLite file, relative to this file")
    url: str | None = Field(None, description="PostgreSQL URL (read-only use)")
    scratch_url: str | None = Field(None, description="PostgreSQL server/database restores go to; default: "
                                                      "a new database on the live server, dropped after")
    backup: BackupConfig | None = None
    rto: Duration | None = Field(None, description="recovery time objective")
    rpo: Duration | None = Field(None, description="recovery point objective (max. backup age)")
    locate: NonEmptyStr | None = Field(None, description="'module:function' called with the in-process app; "
                                                         "returns where the store and its backups live")

    @field_validator("locate")
    @classmethod
    def _locate_spec(cls, value: str | None) -> str | None:
        if value is not None and not _APP_SPEC.match(value.strip()):
            raise ValueError("must look like 'module:function'")
        return value

    @model_validator(mode="after")
    def _where(self) -> DataStoreConfig:
        if self.locate is None:
            if self.kind == "sqlite" and self.path is None:
                raise KeyedError(("path",), "a sqlite store needs 'path' (or 'locate')")
            if self.kind == "postgresql" and self.url is None:
                raise KeyedError(("url",), "a postgresql store needs 'url' (or 'locate')")
        if self.backup is not None and self.backup.path is None and self.locate is None:
            raise KeyedError(("backup", "path"), "give the backup file or glob (or a 'locate' hook)")
        if self.backup is not None and self.backup.key_env is not None and not self.backup.encrypted:
            raise KeyedError(("backup", "key_env"), "'key_env' is for encrypted backups (encrypted: true)")
        return self


# --- privacy and audit trail (checks/privacy.py, checks/audit_trail.py) -------------------------------
# A hook or an endpoint: "module:function" (in-process targets) or "METHOD /path".
HookOrEntry = Annotated[str, Field(pattern=r"^(?:[A-Z]+ /\S*|[A-Za-z_][\w.]*:[A-Za-z_][\w.]*)$",
                                   description="'module:function' or 'METHOD /path'")]
AuditEvent = Literal["login_success", "login_failure", "privilege_change", "export", "admin_action"]


class MaskingConfig(_Strict):
    """Personal data that must be masked where it leaves the service: data-class names or detector kinds."""

    exports: list[NonEmptyStr] = Field(default_factory=list, description="data classes or kinds (email, phone, "
                                       "iban, card_number, ssn, nino, insee, national_id) masked in exports")


class RetentionRule(_Strict):
    """How long a data class or asset is kept and what removes it when it is older."""

    days: PositiveInt
    purge: HookOrEntry = Field(description="the purge job: 'module:function' (called with the app) or "
                                           "'METHOD /path' (called as `role`)")
    seed: HookOrEntry | None = Field(None, description="'module:function' called with (app, days): stores "
                                     "records older than `days` and returns marker strings they contain")
    stores: list[HookOrEntry] = Field(default_factory=list, description="where expired data must be gone "
                                      "('GET /path' read as every role, or 'module:function' returning text); "
                                      "export endpoints found in the surface are always read")
    role: NonEmptyStr | None = Field(None, description="role that runs an endpoint purge (default: the first "
                                                       "role the access policy allows)")


class ErasureConfig(_Strict):
    """The right to erasure: the request that erases a user's data and where it must be gone."""

    request: HookOrEntry = Field(description="'METHOD /path' sent as the user, or 'module:function' called "
                                             "with (app, username)")
    stores: list[HookOrEntry] = Field(default_factory=list)


_DEFAULT_AUDIT_EVENTS: tuple[AuditEvent, ...] = ("login_success", "login_failure", "export", "admin_action")


class AuditConfig(_Strict):
    """The security audit trail: where it is read, what it must record and how it is verified."""

    log: HookOrEntry = Field(description="'GET /path' read as `role` or 'module:function' called with the app "
                                         "(returns records as dicts or text)")
    events: list[AuditEvent] = Field(default_factory=lambda: list(_DEFAULT_AUDIT_EVENTS))
    verify: HookOrEntry | None = Field(None, description="trail verification: 'GET /path' (2xx and no false "
                                       "valid/ok flag = intact) or 'module:function' returning a bool")
    tamper: HookOrEntry | None = Field(None, description="'module:function' called with the app: edits one "
                                       "stored record the way an insider with database access would")
    role: NonEmptyStr | None = Field(None, description="role that reads the trail (default: the roles the "
                                                       "access policy allows on `log`, else every role)")


class AlertLogConfig(_Strict):
    """An alert is a log record on `logger` (or a child) whose message matches `pattern`."""

    logger: NonEmptyStr = Field(description="logger name the service alerts on, e.g. 'shop.security'")
    pattern: NonEmptyStr = Field(description="regular expression an alert's message matches (case-insensitive)")

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


class AlertWebhookConfig(_Strict):
    """An alert is a request to a webhook URL Bastion serves on loopback and hands to the service."""

    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        description="environment variable the service reads its alert webhook URL from (in-process targets "
                    "get it set while the app is built)")
    port: Annotated[int, BeforeValidator(_not_a_boolean), Field(ge=1024, le=65535)] | None = Field(
        None, description="URL targets: the loopback port Bastion listens on; start the service with "
                          "<env>=http://127.0.0.1:<port>/alert")


class AlertsConfig(_Strict):
    """How the team is alerted to an attack (breach drills judge 'alerted?' by it; docs/drills.md)."""

    log: AlertLogConfig | None = None
    webhook: AlertWebhookConfig | None = None

    @model_validator(mode="after")
    def _one_channel(self) -> AlertsConfig:
        if self.log is None and self.webhook is None:
            raise ValueError("give at least one alert channel: 'log' (logger + pattern) or 'webhook' (env)")
        return self


DependencyKind = Literal["oidc", "queue", "vault", "sqlite", "postgresql", "cache", "smtp", "http"]
EntrySpec = Annotated[str, Field(pattern=r"^[A-Z]+ /\S*$", description="'METHOD /path'")]


class QueueSigningConfig(_Strict):
    """How producers sign queue messages: an HMAC of the body in a header (Bastion holds the key)."""

    header: NonEmptyStr = "signature"
    algorithm: Literal["hmac-sha256"] = "hmac-sha256"


class DependencyConfig(_Strict):
    """A service the target depends on (docs/resilience.md); with `double: true` Bastion runs a test
    double for it, passes its address to the app factory through the environment, and breaks it on purpose."""

    kind: DependencyKind
    double: bool = Field(False, description="start Bastion's double for it (oidc, queue, vault) and wire the "
                                            "in-process app to it")
    env: dict[NonEmptyStr, NonEmptyStr] = Field(default_factory=dict, description="rename the settings Bastion "
                                                "sets (OIDC_ISSUER -> MY_IDP_URL)")
    protects: list[EntrySpec] = Field(default_factory=list, description="entry points whose authentication "
                                      "or authorization depends on it ('METHOD /path')")
    audience: NonEmptyStr | None = Field(None, description="oidc: the audience the target expects in service "
                                                           "tokens")
    topic: NonEmptyStr | None = Field(None, description="queue: the topic the target consumes")
    consume: EntrySpec | None = Field(None, description="queue: entry point that makes the consumer run")
    effect: EntrySpec | None = Field(None, description="queue: entry point listing what the consumer did "
                                                       "(a processed message's text shows up there)")
    sample: dict[str, Any] | None = Field(None, description="queue: a message the consumer accepts; "
                                          "'{canary}' in a string value marks it")
    signing: QueueSigningConfig | None = None
    # Outages of stores that are not doubles (bastion/resilience/outage.py): a SQLite file, a TCP store by URL,
    # or the app's own switch.
    path: NonEmptyStr | None = Field(None, description="sqlite: the database file the app opens (new "
                                                       "connections to it fail during an outage)")
    url: NonEmptyStr | None = Field(None, description="postgresql/cache: where the store listens "
                                                      "(postgresql://host:port/db, redis://host:port/0)")
    fault_hook: NonEmptyStr | None = Field(None, description="'module:function' called with (app, on: bool) to "
                                                             "break and heal the dependency (preferred over "
                                                             "path/url)")

    @model_validator(mode="after")
    def _double_kinds(self) -> DependencyConfig:
        if self.double and self.kind not in ("oidc", "queue", "vault", "cache", "smtp"):
            raise KeyedError(("double",), f"Bastion has no double for kind {self.kind!r} (oidc, queue, vault, "
                                          "cache, smtp) yet: declare it without 'double'")
        return self


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
    # With no role declared, sign two throw-away users up through the service's sign-up (identity/autoroles.py):
    # None = on for in-process targets and for URL targets whose `writes:` allow the sign-up; false = never.
    auto_roles: bool | None = None
    budgets: BudgetsConfig | None = None
    tls: TlsConfig | None = None
    data_stores: dict[Name, DataStoreConfig] = Field(default_factory=dict)
    dependencies: dict[Name, DependencyConfig] = Field(default_factory=dict)
    # Privacy and audit trail (checks/privacy.py, checks/audit_trail.py).
    masking: MaskingConfig | None = None
    retention: dict[Name, RetentionRule] = Field(default_factory=dict)
    erasure: ErasureConfig | None = None
    audit: AuditConfig | None = None
    # How the team is alerted (breach drills, checks/drills.py).
    alerts: AlertsConfig | None = None

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
