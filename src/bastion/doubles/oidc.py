"""A real OpenID Connect provider for tests: discovery, JWKS with key rotation, authorization code (with
state, nonce and PKCE S256), client credentials, refresh-token rotation, userinfo, revocation, introspection.

    idp = OIDCProvider()
    idp.add_client("shop", secret="s3cret", redirect_uris=["http://127.0.0.1:5000/callback"])
    idp.add_user("alice", "alice-pw", email="alice@example.test")
    with idp.serve():                       # a real server on 127.0.0.1, stopped on exit
        requests.get(idp.issuer + "/.well-known/openid-configuration")

It is also a WSGI app (`idp` itself), for in-process use. Tokens are RS256 JWTs with a `kid`;
`rotate_keys()` signs with a new key and keeps the old one in the JWKS for `key_grace` seconds.
The clock is injectable (`now=`), so tests expire tokens without sleeping. RSA keys cannot be seeded:
they are generated per provider and must never end up in golden files.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from bastion.doubles.faults import FaultState
from bastion.doubles.serve import serve_wsgi

DEFAULT_ISSUER = "http://idp.bastion.test"
ACCESS_TTL_S = 300
REFRESH_TTL_S = 3600
CODE_TTL_S = 60
KEY_GRACE_S = 3600
KEY_SIZE = 2048
# Request bodies larger than this are refused: a double must not be the thing a hostile test exhausts.
MAX_BODY_BYTES = 64 * 1024
CSRF_COOKIE = "idp_csrf"
_AUTHORIZE_PARAMS = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
                     "code_challenge", "code_challenge_method")

WsgiApp = Callable[..., Iterable[bytes]]


class OIDCError(ValueError):
    """A protocol error (RFC 6749 `error` code plus a description)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error, self.description, self.status = error, description, status


@dataclass
class OIDCClient:
    """A registered relying party; `secret=None` makes it a public client (PKCE required)."""

    client_id: str
    secret: str | None = None
    redirect_uris: tuple[str, ...] = ()


@dataclass
class OIDCUser:
    """A user who can log in on the provider's form; `claims` go into ID tokens and userinfo."""

    username: str
    password: str
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass
class _SigningKey:
    kid: str
    private: rsa.RSAPrivateKey
    retired_at: float | None = None  # when it stopped signing; published until retired_at + grace

    def jwk(self) -> dict[str, Any]:
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "use": "sig", "alg": "RS256"}


@dataclass
class _Grant:
    """What an authorization code or a refresh token stands for."""

    client_id: str
    sub: str
    scope: str
    expires_at: float
    family: str = ""
    nonce: str | None = None
    redirect_uri: str | None = None
    code_challenge: str | None = None


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE code verifier (RFC 7636)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


class OIDCProvider:
    """An OpenID Connect provider with users and clients registered in code."""

    def __init__(self, issuer: str = DEFAULT_ISSUER, *, access_ttl: float = ACCESS_TTL_S,
                 refresh_ttl: float = REFRESH_TTL_S, key_grace: float = KEY_GRACE_S,
                 now: Callable[[], float] = time.time, key_size: int = KEY_SIZE) -> None:
        self.issuer = issuer.rstrip("/")
        self.access_ttl, self.refresh_ttl, self.key_grace = access_ttl, refresh_ttl, key_grace
        self.now = now
        self.key_size = key_size
        self.clients: dict[str, OIDCClient] = {}
        self.users: dict[str, OIDCUser] = {}
        # Grant types the token endpoint served, in order (tests assert e.g. that a refresh happened).
        self.token_requests: list[str] = []
        # Faults switched on by bastion.doubles.faults reach the served provider through a proxy.
        self.fault_state = FaultState("oidc")
        self._keys: list[_SigningKey] = []
        self._codes: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._used_refresh: dict[str, str] = {}  # used refresh token -> its family (reuse detection)
        self._revoked_jti: set[str] = set()
        self._lock = threading.RLock()
        self.rotate_keys()

    # --- registration -------------------------------------------------------------------------

    def add_client(self, client_id: str, secret: str | None = None,
                   redirect_uris: Iterable[str] = ()) -> OIDCClient:
        """Register a relying party (confidential with a secret, public without)."""
        client = OIDCClient(client_id, secret, tuple(redirect_uris))
        self.clients[client_id] = client
        return client

    def add_user(self, username: str, password: str, **claims: Any) -> OIDCUser:
        """Register a user of the login form; `sub` is the username unless a claim says otherwise."""
        user = OIDCUser(username, password, dict(claims))
        self.users[username] = user
        return user

    # --- endpoints and keys ---------------------------------------------------------------------

    def endpoint(self, name: str) -> str:
        """URL of an endpoint: authorize, token, userinfo, revoke, introspect, jwks."""
        return f"{self.issuer}/{name}"

    def discovery(self) -> dict[str, Any]:
        """The `/.well-known/openid-configuration` document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "jwks_uri": self.endpoint("jwks"),
            "revocation_endpoint": self.endpoint("revoke"),
            "introspection_endpoint": self.endpoint("introspect"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
        }

    def rotate_keys(self) -> str:
        """Sign with a fresh key from now on; the previous key stays in the JWKS for `key_grace` seconds."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=self.key_size)
        modulus = private.public_key().public_numbers().n
        kid = _b64url(hashlib.sha256(modulus.to_bytes((modulus.bit_length() + 7) // 8, "big")).digest())[:16]
        with self._lock:
            now = self.now()
            for key in self._keys:
                if key.retired_at is None:
                    key.retired_at = now
            self._keys.append(_SigningKey(kid, private))
        return kid

    @property
    def active_kid(self) -> str:
        return self._keys[-1].kid

    def _published(self) -> list[_SigningKey]:
        now = self.now()
        return [k for k in self._keys if k.retired_at is None or now < k.retired_at + self.key_grace]

    def jwks(self) -> dict[str, Any]:
        """The public keys a relying party may verify with: the signing key and those still in grace."""
        with self._lock:
            return {"keys": [k.jwk() for k in self._published()]}

    # --- tokens -----------------------------------------------------------------------------------

    def _sign(self, claims: dict[str, Any]) -> str:
        key = self._keys[-1]
        return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})

    def _user_claims(self, sub: str) -> dict[str, Any]:
        user = self.users.get(sub)
        return dict(user.claims) if user is not None else {}

    def issue(self, sub: str, *, client_id: str | None = None, scope: str = "openid",
              ttl: float | None = None, audience: str | None = None, **claims: Any) -> str:
        """A signed access token for `sub` (the user's registered claims, then `claims`, on top)."""
        now = int(self.now())
        ttl = self.access_ttl if ttl is None else ttl
        body = {"iss": self.issuer, "sub": sub, "aud": audience or client_id or self.issuer, "iat": now,
                "nbf": now, "exp": now + int(ttl), "jti": secrets.token_urlsafe(12), "scope": scope,
                "client_id": client_id or "", **self._user_claims(sub), **claims}
        with self._lock:
            return self._sign(body)

    def id_token(self, sub: str, client_id: str, *, nonce: str | None = None, ttl: float | None = None,
                 **claims: Any) -> str:
        """A signed ID token for `sub`, audience `client_id`."""
        now = int(self.now())
        body: dict[str, Any] = {"iss": self.issuer, "sub": sub, "aud": client_id, "iat": now, "auth_time": now,
                                "exp": now + int(self.access_ttl if ttl is None else ttl),
                                **self._user_claims(sub), **claims}
        if nonce is not None:
            body["nonce"] = nonce
        with self._lock:
            return self._sign(body)

    def issue_tokens(self, sub: str, *, client_id: str = "", scope: str = "openid", nonce: str | None = None,
                     ttl: float | None = None, refresh: bool = True, family: str | None = None,
                     **claims: Any) -> dict[str, Any]:
        """A token response: access token, refresh token (unless `refresh=False`), ID token for `openid`."""
        ttl = self.access_ttl if ttl is None else ttl
        out: dict[str, Any] = {"access_token": self.issue(sub, client_id=client_id or None, scope=scope, ttl=ttl,
                                                          **claims),
                               "token_type": "Bearer", "expires_in": int(ttl), "scope": scope}
        if "openid" in scope.split() and client_id:
            out["id_token"] = self.id_token(sub, client_id, nonce=nonce, ttl=ttl)
        if refresh:
            token = secrets.token_urlsafe(32)
            with self._lock:
                self._refresh[token] = _Grant(client_id, sub, scope, self.now() + self.refresh_ttl,
                                              family=family or secrets.token_urlsafe(8))
            out["refresh_token"] = token
        return out

    def refresh(self, refresh_token: str, client_id: str | None = None) -> dict[str, Any]:
        """Rotate a refresh token: new tokens, and the old refresh token is dead (a reuse kills its family)."""
        with self._lock:
            grant = self._refresh.pop(refresh_token, None)
            if grant is None:
                family = self._used_refresh.get(refresh_token)
                if family is not None:  # replay of a rotated token: assume theft, end the whole family
                    self._refresh = {t: g for t, g in self._refresh.items() if g.family != family}
                raise OIDCError("invalid_grant", "unknown, used or revoked refresh token")
            self._used_refresh[refresh_token] = grant.family
        if client_id is not None and grant.client_id != client_id:
            raise OIDCError("invalid_grant", "refresh token was issued to another client")
        if self.now() >= grant.expires_at:
            raise OIDCError("invalid_grant", "refresh token expired")
        return self.issue_tokens(grant.sub, client_id=grant.client_id, scope=grant.scope, family=grant.family)

    def expire(self, token: str) -> str:
        """A copy of `token`, validly signed with the current key, whose `exp` has passed."""
        claims = jwt.decode(token, options={"verify_signature": False})
        now = int(self.now())
        lifetime = max(1, int(claims.get("exp", now)) - int(claims.get("iat", now)))
        claims.update(iat=now - lifetime - 60, nbf=now - lifetime - 60, exp=now - 60)
        with self._lock:
            return self._sign(claims)

    def revoke(self, token: str) -> None:
        """Revoke an access token (by its `jti`) or a refresh token."""
        with self._lock:
            if self._refresh.pop(token, None) is not None:
                return
        try:
            jti = jwt.decode(token, options={"verify_signature": False}).get("jti")
        except jwt.PyJWTError:
            return
        if jti:
            with self._lock:
                self._revoked_jti.add(jti)

    def verify(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """The claims of a token this provider signed and that is still valid by the provider's clock."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise OIDCError("invalid_token", f"not a JWT: {exc}", 401) from None
        with self._lock:
            key = next((k for k in self._published() if k.kid == header.get("kid")), None)
        if key is None:
            raise OIDCError("invalid_token", "unknown signing key", 401)
        try:
            # Time claims are checked below against the provider's (possibly fake) clock.
            claims = jwt.decode(token, key.private.public_key(), algorithms=["RS256"], issuer=self.issuer,
                                audience=audience, options={"verify_exp": False, "verify_iat": False,
                                                            "verify_nbf": False, "verify_aud": audience is not None})
        except jwt.PyJWTError as exc:
            raise OIDCError("invalid_token", str(exc), 401) from None
        if self.now() >= float(claims.get("exp", 0)):
            raise OIDCError("invalid_token", "token expired", 401)
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and self.now() < float(nbf):
            raise OIDCError("invalid_token", "token not yet valid", 401)
        if claims.get("jti") in self._revoked_jti:
            raise OIDCError("invalid_token", "token revoked", 401)
        return claims

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 view of a token: `{"active": false}` unless it is a live access or refresh token."""
        with self._lock:
            grant = self._refresh.get(token)
        if grant is not None:
            live = self.now() < grant.expires_at
            return {"active": live, "token_type": "refresh_token", "sub": grant.sub,
                    "client_id": grant.client_id, "scope": grant.scope} if live else {"active": False}
        try:
            return {"active": True, **self.verify(token)}
        except OIDCError:
            return {"active": False}

    # --- serving ----------------------------------------------------------------------------------

    @contextmanager
    def serve(self) -> Iterator[OIDCProvider]:
        """Serve on 127.0.0.1 (free port); `issuer` is the server's URL until the block ends."""
        before = self.issuer
        with serve_wsgi(self, faults=self.fault_state) as base_url:
            self.issuer = base_url + urlsplit(before).path.rstrip("/")
            try:
                yield self
            finally:
                self.issuer = before

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """WSGI entry point."""
        try:
            response = self._dispatch(environ)
        except OIDCError as exc:
            response = _json({"error": exc.error, "error_description": exc.description}, exc.status)
        reason = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                  405: "Method Not Allowed", 413: "Content Too Large"}.get(response.status, "Error")
        headers = [*response.headers, ("Content-Length", str(len(response.body))), ("Cache-Control", "no-store")]
        start_response(f"{response.status} {reason}", headers)
        return [response.body]

    def _dispatch(self, environ: dict[str, Any]) -> _Response:
        prefix = urlsplit(self.issuer).path.rstrip("/")
        path = environ.get("PATH_INFO", "") or "/"
        if prefix and path.startswith(prefix):
            path = path[len(prefix):] or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        routes: dict[str, Callable[[_Request], _Response]] = {
            "/.well-known/openid-configuration": lambda _r: _json(self.discovery()),
            "/jwks": lambda _r: _json(self.jwks()),
            "/authorize": self._authorize,
            "/token": self._token,
            "/userinfo": self._userinfo,
            "/revoke": self._revoke,
            "/introspect": self._introspect,
        }
        handler = routes.get(path)
        if handler is None:
            return _json({"error": "not_found"}, 404)
        if method not in ("GET", "POST") or (path in ("/token", "/revoke", "/introspect") and method != "POST"):
            return _json({"error": "method_not_allowed"}, 405)
        return handler(_Request.read(environ))

    # --- /authorize -------------------------------------------------------------------------------

    def _authorize(self, req: _Request) -> _Response:
        params = req.form if req.method == "POST" else req.query
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return _html("<h1>Unknown client</h1>", 400)
        redirect_uri = params.get("redirect_uri") or (client.redirect_uris[0] if len(client.redirect_uris) == 1
                                                      else "")
        if redirect_uri not in client.redirect_uris:
            # Never redirect to an unregistered URI: that is how codes get stolen.
            return _html("<h1>Invalid redirect_uri</h1>", 400)
        state = params.get("state")
        problem = self._authorize_problem(client, params)
        if problem is not None:
            return _redirect(redirect_uri, {"error": problem[0], "error_description": problem[1], "state": state})
        if req.method == "GET":
            return self._login_page({**{k: params.get(k, "") for k in _AUTHORIZE_PARAMS},
                                     "redirect_uri": redirect_uri})
        csrf = req.cookies.get(CSRF_COOKIE)
        if not csrf or not secrets.compare_digest(csrf, params.get("csrf", "")):
            return _html("<h1>Login form expired, start again</h1>", 400)
        user = self.users.get(params.get("username", ""))
        if user is None or not secrets.compare_digest(user.password.encode(), params.get("password", "").encode()):
            return self._login_page({**{k: params.get(k, "") for k in _AUTHORIZE_PARAMS},
                                     "redirect_uri": redirect_uri}, error="Invalid username or password.",
                                    status=401)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(client.client_id, user.claims.get("sub", user.username),
                                       params.get("scope") or "openid", self.now() + CODE_TTL_S,
                                       nonce=params.get("nonce") or None, redirect_uri=redirect_uri,
                                       code_challenge=params.get("code_challenge") or None)
        return _redirect(redirect_uri, {"code": code, "state": state})

    @staticmethod
    def _authorize_problem(client: OIDCClient, params: dict[str, str]) -> tuple[str, str] | None:
        if params.get("response_type") != "code":
            return "unsupported_response_type", "only response_type=code is supported"
        if params.get("code_challenge") and params.get("code_challenge_method", "plain") != "S256":
            return "invalid_request", "code_challenge_method must be S256"
        if client.secret is None and not params.get("code_challenge"):
            return "invalid_request", "public clients must use PKCE"
        return None

    def _login_page(self, params: dict[str, str], *, error: str = "", status: int = 200) -> _Response:
        csrf = secrets.token_urlsafe(16)
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in params.items() if v)
        note = f'<p class="error">{html.escape(error)}</p>' if error else ""
        page = (f"<!doctype html><html><head><title>Sign in</title></head><body><h1>Sign in</h1>{note}"
                f'<form method="post" action="{html.escape(self.endpoint("authorize"))}">{hidden}'
                f'<input type="hidden" name="csrf" value="{csrf}">'
                '<label>Username <input type="text" name="username" autocomplete="username"></label>'
                '<label>Password <input type="password" name="password"></label>'
                '<button type="submit">Sign in</button></form></body></html>')
        cookie = f"{CSRF_COOKIE}={csrf}; Path={urlsplit(self.issuer).path or '/'}; HttpOnly; SameSite=Lax"
        return _html(page, status, [("Set-Cookie", cookie)])

    # --- /token -------------------------------------------------------------------------------------

    def _client_auth(self, req: _Request) -> OIDCClient:
        client_id, secret = req.basic_auth() or (req.form.get("client_id", ""), req.form.get("client_secret"))
        client = self.clients.get(client_id)
        if client is None:
            raise OIDCError("invalid_client", "unknown client", 401)
        if client.secret is not None and not secrets.compare_digest(client.secret.encode(), (secret or "").encode()):
            raise OIDCError("invalid_client", "client authentication failed", 401)
        return client

    def _token(self, req: _Request) -> _Response:
        client = self._client_auth(req)
        grant_type = req.form.get("grant_type", "")
        self.token_requests.append(grant_type)
        if grant_type == "authorization_code":
            return _json(self._exchange_code(client, req.form))
        if grant_type == "client_credentials":
            if client.secret is None:
                raise OIDCError("unauthorized_client", "public clients cannot use client_credentials")
            scope = req.form.get("scope", "")
            return _json(self.issue_tokens(client.client_id, client_id=client.client_id, scope=scope,
                                           refresh=False))
        if grant_type == "refresh_token":
            return _json(self.refresh(req.form.get("refresh_token", ""), client.client_id))
        raise OIDCError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    def _exchange_code(self, client: OIDCClient, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # single use, whatever happens next
        if grant is None or self.now() >= grant.expires_at:
            raise OIDCError("invalid_grant", "unknown, used or expired authorization code")
        if grant.client_id != client.client_id:
            raise OIDCError("invalid_grant", "code was issued to another client")
        if form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            raise OIDCError("invalid_grant", "redirect_uri does not match the authorization request")
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            if not verifier or not secrets.compare_digest(pkce_challenge(verifier), grant.code_challenge):
                raise OIDCError("invalid_grant", "PKCE verification failed")
        return self.issue_tokens(grant.sub, client_id=client.client_id, scope=grant.scope, nonce=grant.nonce)

    # --- /userinfo, /revoke, /introspect ------------------------------------------------------------

    def _userinfo(self, req: _Request) -> _Response:
        scheme, _, token = (req.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _json({"error": "invalid_token"}, 401, [("WWW-Authenticate", 'Bearer realm="oidc"')])
        try:
            claims = self.verify(token.strip())
        except OIDCError as exc:
            return _json({"error": exc.error}, 401, [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        return _json({"sub": claims["sub"], **self._user_claims(claims["sub"])})

    def _revoke(self, req: _Request) -> _Response:
        self._client_auth(req)
        self.revoke(req.form.get("token", ""))
        return _Response(200)

    def _introspect(self, req: _Request) -> _Response:
        client = self._client_auth(req)
        if client.secret is None:
            raise OIDCError("invalid_client", "introspection needs a confidential client", 401)
        return _json(self.introspect(req.form.get("token", "")))


@dataclass
class _Request:
    method: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    cookies: dict[str, str]

    @classmethod
    def read(cls, environ: dict[str, Any]) -> _Request:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise OIDCError("invalid_request", "request body too large", 413)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        form: dict[str, str] = {}
        if "application/x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
            form = _first(parse_qs(body.decode("utf-8", "replace")))
        headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        cookies: dict[str, str] = {}
        for part in headers.get("cookie", "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep:
                cookies[name] = value
        return cls(environ.get("REQUEST_METHOD", "GET").upper(), _first(parse_qs(environ.get("QUERY_STRING", ""))),
                   form, headers, cookies)

    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, value = (self.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OIDCError("invalid_client", "malformed basic credentials", 401) from None
        # RFC 6749 2.3.1: client id and secret are form-encoded inside the basic credentials.
        return unquote_plus(user), unquote_plus(password)


def _first(values: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[0] for k, v in values.items() if v}


def _json(data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> _Response:
    return _Response(status, json.dumps(data).encode(), [("Content-Type", "application/json"), *(headers or [])])


def _html(page: str, status: int = 200, headers: list[tuple[str, str]] | None = None) -> _Response:
    return _Response(status, page.encode(), [("Content-Type", "text/html; charset=utf-8"), *(headers or [])])


def _redirect(uri: str, params: dict[str, str | None]) -> _Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return _Response(302, b"", [("Location", uri + ("&" if "?" in uri else "?") + query)])
