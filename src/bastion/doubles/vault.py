"""A secrets vault for tests: versioned secrets, rotation, revocation, and an audit trail of every read.

    vault = SecretsVault()
    vault.put("app/db", {"password": "pw-1"})
    with vault.serve():                              # HTTP on 127.0.0.1, Vault KV v2 paths
        client = VaultClient(vault.url, vault.token)  # or vault.client(); what the app under test uses
        assert client.get("app/db").data["password"] == "pw-1"
        vault.rotate("app/db")                       # version 2, fresh random values
        vault.revoke("app/db", version=1)            # reading version 1 now fails

HTTP API (token in `X-Vault-Token` or `Authorization: Bearer`), shaped like HashiCorp Vault's KV v2:
`GET|POST|PUT /v1/<mount>/data/<path>[?version=N]`, `GET /v1/<mount>/metadata/<path>`,
`POST /v1/<mount>/destroy/<path>` `{"versions": [N]}`, `GET /v1/sys/health`, and Bastion's own
`POST /v1/<mount>/rotate/<path>`. Reads are audited with the token's name, never its value or the secret.
Served, the vault sits behind a FaultProxy; unserved, `vault.client()` talks to it in-process through a
FaultTransport: bastion.doubles.faults applies either way.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx

from bastion.doubles.faults import FaultState, FaultTransport
from bastion.doubles.serve import serve_wsgi

IN_PROCESS_URL = "http://vault.bastion.test"
# Request bodies larger than this are refused: a double must not be what a hostile test exhausts.
MAX_BODY_BYTES = 64 * 1024
# An oversized body is still read (up to this much) before the 413: a server that answers while the
# client is sending resets the connection, and the client sees a disconnect instead of the status.
MAX_DRAIN_BYTES = 1024 * 1024
ROTATED_VALUE_BYTES = 24
CLIENT_TIMEOUT_S = 5.0
_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 413: "Content Too Large"}


class VaultError(Exception):
    """A vault refusal: HTTP-like status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class SecretNotFound(VaultError):
    """No such secret or version."""

    def __init__(self, path: str, version: int | None = None) -> None:
        super().__init__(404, f"no secret at {path!r}" + (f" version {version}" if version else ""))


class SecretRevoked(VaultError):
    """The version was revoked (destroyed) and can no longer be read."""

    def __init__(self, path: str, version: int) -> None:
        super().__init__(404, f"secret {path!r} version {version} was revoked")


@dataclass(frozen=True)
class Secret:
    """One version of a secret."""

    path: str
    version: int
    data: dict[str, str]
    created_time: str


@dataclass(frozen=True)
class AuditEntry:
    """One access: operation, path, version, who (a token's name, never its value) and the outcome."""

    time: float
    operation: str
    path: str
    version: int | None
    actor: str
    outcome: str


@dataclass
class _Version:
    data: dict[str, str]
    created: float
    revoked: bool = False


@dataclass
class _Token:
    name: str
    read_only: bool = False
    prefixes: tuple[str, ...] = ()  # paths the token may touch ("" = all)

    def allows(self, path: str, write: bool) -> bool:
        if write and self.read_only:
            return False
        return not self.prefixes or any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.prefixes)


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SecretsVault:
    """Versioned secrets in memory; the Python methods are the operator's view (`get` is audited as `actor`)."""

    def __init__(self, mount: str = "secret", *, token: str | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.mount = mount.strip("/")
        self.now = now
        self.url = IN_PROCESS_URL
        self.fault_state = FaultState("vault")
        self.audit: list[AuditEntry] = []
        self._secrets: dict[str, list[_Version]] = {}
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.RLock()
        self.token = self.add_token("root", token=token)

    # --- tokens and audit -------------------------------------------------------------------------------

    def add_token(self, name: str, *, token: str | None = None, read_only: bool = False,
                  paths: Iterable[str] = ()) -> str:
        """A token for an app, limited to `paths` (prefixes; all when empty) and to reads if `read_only`."""
        value = token or secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[value] = _Token(name, read_only, tuple(p.strip("/") for p in paths))
        return value

    def _audit(self, operation: str, path: str, version: int | None, actor: str, outcome: str) -> None:
        with self._lock:
            self.audit.append(AuditEntry(self.now(), operation, path, version, actor, outcome))

    def reads(self, path: str | None = None) -> list[AuditEntry]:
        """Audited reads (of `path`, or of all paths)."""
        return [e for e in self.audit if e.operation == "read" and (path is None or e.path == path)]

    # --- secrets ----------------------------------------------------------------------------------------

    def put(self, path: str, data: Mapping[str, Any]) -> int:
        """Store a new version of the secret at `path`; returns its version number (1, 2, ...)."""
        path = path.strip("/")
        with self._lock:
            versions = self._secrets.setdefault(path, [])
            versions.append(_Version({str(k): str(v) for k, v in data.items()}, self.now()))
            return len(versions)

    def get(self, path: str, version: int | None = None, *, actor: str = "operator") -> Secret:
        """A version of the secret (the latest when None); every call is audited as a read by `actor`."""
        path = path.strip("/")
        try:
            secret = self._read(path, version)
        except VaultError as exc:
            self._audit("read", path, version, actor, "revoked" if isinstance(exc, SecretRevoked) else "missing")
            raise
        self._audit("read", path, secret.version, actor, "ok")
        return secret

    def _read(self, path: str, version: int | None) -> Secret:
        with self._lock:
            versions = self._secrets.get(path)
            if not versions:
                raise SecretNotFound(path)
            number = version if version else len(versions)
            if not 1 <= number <= len(versions):
                raise SecretNotFound(path, number)
            stored = versions[number - 1]
            if stored.revoked:
                raise SecretRevoked(path, number)
            return Secret(path, number, dict(stored.data), _rfc3339(stored.created))

    def rotate(self, path: str, data: Mapping[str, Any] | None = None) -> int:
        """A new version: `data`, or every key of the current version with a fresh random value."""
        path = path.strip("/")
        if data is None:
            with self._lock:
                versions = self._secrets.get(path)
                if not versions:
                    raise SecretNotFound(path)
                data = {key: secrets.token_urlsafe(ROTATED_VALUE_BYTES) for key in versions[-1].data}
        return self.put(path, data)

    def revoke(self, path: str, version: int | None = None) -> None:
        """Revoke (destroy) a version, the latest when None: reading it fails from now on."""
        path = path.strip("/")
        with self._lock:
            versions = self._secrets.get(path)
            if not versions:
                raise SecretNotFound(path)
            number = version if version else len(versions)
            if not 1 <= number <= len(versions):
                raise SecretNotFound(path, number)
            versions[number - 1].revoked = True

    def versions(self, path: str) -> dict[int, bool]:
        """version -> still readable (not revoked)."""
        with self._lock:
            return {i + 1: not v.revoked for i, v in enumerate(self._secrets.get(path.strip("/"), []))}

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._secrets)

    # --- serving --------------------------------------------------------------------------------------------

    @contextmanager
    def serve(self) -> Iterator[SecretsVault]:
        """Serve the HTTP API on 127.0.0.1 (free port); `url` is its address until the block ends."""
        with serve_wsgi(self, faults=self.fault_state) as base_url:
            self.url = base_url
            try:
                yield self
            finally:
                self.url = IN_PROCESS_URL

    def env(self, prefix: str = "VAULT_") -> dict[str, str]:
        """Settings for an app under test (`VAULT_ADDR`, `VAULT_TOKEN`: the names Vault's own tools read)."""
        return {f"{prefix}ADDR": self.url, f"{prefix}TOKEN": self.token}

    def client(self, token: str | None = None, timeout: float = CLIENT_TIMEOUT_S) -> VaultClient:
        """An HTTP client for the vault: over the network when served, in-process (WSGI) otherwise."""
        transport = None
        if self.url == IN_PROCESS_URL:
            transport = FaultTransport(httpx.WSGITransport(app=self), self.fault_state)
        return VaultClient(self.url, token or self.token, mount=self.mount, timeout=timeout, transport=transport)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """WSGI entry point."""
        try:
            status, body = self._dispatch(environ)
        except VaultError as exc:
            status, body = exc.status, {"errors": [exc.message]}
        payload = b"" if status == 204 else json.dumps(body).encode()
        start_response(f"{status} {_REASONS.get(status, 'Error')}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                        ("Cache-Control", "no-store")])
        return [payload]

    def _dispatch(self, environ: dict[str, Any]) -> tuple[int, Any]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == "/v1/sys/health":
            return 200, {"initialized": True, "sealed": False, "standby": False}
        prefix = f"/v1/{self.mount}/"
        kind, _, secret_path = path[len(prefix):].partition("/") if path.startswith(prefix) else ("", "", "")
        if kind not in ("data", "metadata", "destroy", "rotate") or not secret_path.strip("/"):
            raise VaultError(404, f"no route {path}")
        token = self._token(environ)
        secret_path = secret_path.strip("/")
        write = not (kind in ("data", "metadata") and method == "GET")
        if not token.allows(secret_path, write):
            self._audit("read" if not write else kind, secret_path, None, token.name, "denied")
            raise VaultError(403, "permission denied")
        handler = getattr(self, f"_http_{kind}")
        return handler(method, secret_path, token, environ)

    def _token(self, environ: dict[str, Any]) -> _Token:
        value = environ.get("HTTP_X_VAULT_TOKEN", "")
        scheme, _, bearer = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if not value and scheme.lower() == "bearer":
            value = bearer.strip()
        with self._lock:
            token = self._tokens.get(value) if value else None
        if token is None:
            self._audit("auth", environ.get("PATH_INFO", ""), None, "anonymous", "denied")
            raise VaultError(403, "permission denied")
        return token

    def _http_data(self, method: str, path: str, token: _Token, environ: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            try:
                version = int(query.get("version", ["0"])[0])
            except ValueError:
                raise VaultError(400, "version must be an integer") from None
            secret = self.get(path, version or None, actor=token.name)
            return 200, {"data": {"data": secret.data, "metadata": {
                "version": secret.version, "created_time": secret.created_time, "deletion_time": "",
                "destroyed": False}}}
        if method not in ("POST", "PUT"):
            raise VaultError(405, f"{method} not allowed")
        data = _json_body(environ).get("data")
        if not isinstance(data, dict):
            raise VaultError(400, 'body must be {"data": {...}}')
        version = self.put(path, data)
        self._audit("write", path, version, token.name, "ok")
        return 200, {"data": {"version": version, "created_time": _rfc3339(self.now())}}

    def _http_metadata(self, method: str, path: str, token: _Token, environ: dict[str, Any]) -> tuple[int, Any]:
        if method != "GET":
            raise VaultError(405, f"{method} not allowed")
        with self._lock:
            stored = list(self._secrets.get(path, []))
        if not stored:
            raise SecretNotFound(path)
        versions = {str(i + 1): {"created_time": _rfc3339(v.created), "destroyed": v.revoked}
                    for i, v in enumerate(stored)}
        return 200, {"data": {"current_version": len(stored), "versions": versions}}

    def _http_destroy(self, method: str, path: str, token: _Token, environ: dict[str, Any]) -> tuple[int, Any]:
        if method not in ("POST", "PUT"):
            raise VaultError(405, f"{method} not allowed")
        numbers = _json_body(environ).get("versions")
        if not isinstance(numbers, list) or not all(isinstance(n, int) for n in numbers):
            raise VaultError(400, 'body must be {"versions": [1, 2]}')
        for number in numbers:
            self.revoke(path, number)
            self._audit("revoke", path, number, token.name, "ok")
        return 204, None

    def _http_rotate(self, method: str, path: str, token: _Token, environ: dict[str, Any]) -> tuple[int, Any]:
        if method != "POST":
            raise VaultError(405, f"{method} not allowed")
        version = self.rotate(path)
        self._audit("rotate", path, version, token.name, "ok")
        return 200, {"data": {"version": version}}


def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        stream, left = environ["wsgi.input"], min(length, MAX_DRAIN_BYTES)
        while left > 0 and (chunk := stream.read(min(left, 65536))):
            left -= len(chunk)
        raise VaultError(413, "request body too large")
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise VaultError(400, "body is not JSON") from None
    if not isinstance(body, dict):
        raise VaultError(400, "body must be a JSON object")
    return body


@dataclass
class VaultClient:
    """What an app uses to read its secrets: the vault's HTTP API with a token (httpx underneath)."""

    url: str
    token: str
    mount: str = "secret"
    timeout: float = CLIENT_TIMEOUT_S
    transport: httpx.BaseTransport | None = None
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.url.rstrip("/"), transport=self.transport, timeout=self.timeout,
                                  headers={"X-Vault-Token": self.token})

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400:
            errors = body.get("errors") if isinstance(body, dict) else None
            raise VaultError(response.status_code, "; ".join(map(str, errors or [response.reason_phrase])))
        return body

    def get(self, path: str, version: int | None = None) -> Secret:
        """A version of the secret (the latest when None)."""
        params = {"version": str(version)} if version else None
        body = self._call("GET", f"/v1/{self.mount}/data/{path.strip('/')}", params=params)
        meta = body["data"]["metadata"]
        return Secret(path.strip("/"), int(meta["version"]), dict(body["data"]["data"]), str(meta["created_time"]))

    def put(self, path: str, data: Mapping[str, Any]) -> int:
        body = self._call("POST", f"/v1/{self.mount}/data/{path.strip('/')}", json={"data": dict(data)})
        return int(body["data"]["version"])

    def rotate(self, path: str) -> int:
        body = self._call("POST", f"/v1/{self.mount}/rotate/{path.strip('/')}")
        return int(body["data"]["version"])

    def revoke(self, path: str, versions: Iterable[int]) -> None:
        self._call("POST", f"/v1/{self.mount}/destroy/{path.strip('/')}", json={"versions": list(versions)})

    def health(self) -> bool:
        """True when the vault answers its health endpoint."""
        return bool(self._call("GET", "/v1/sys/health").get("initialized"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VaultClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
