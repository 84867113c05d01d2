"""ProbeClient: every request Bastion sends goes through here.

It enforces the scope (redirects included), the budgets (requests, total time, per-request time,
response bytes, concurrency) and records what happened as events instead of raising: a gzip bomb is
cut at the size cap, a slow drip ends at the request timeout, a redirect loop is noted and stopped.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import time
import zlib
from collections.abc import Mapping
from typing import Any

import httpx

from bastion.errors import BudgetExhausted, ScopeError
from bastion.target.budget import Budget, Limits
from bastion.target.exchange import Exchange, SentRequest
from bastion.target.scope import Scope
from bastion.target.target import Target

USER_AGENT = "bastion-security/0.1 (+security test; authorised scan)"
MULTIPART_BOUNDARY = "bastion-boundary-5f0c2a9e71d4b38c"


class _BoundedDecoder:
    """Decode gzip/deflate bodies without ever producing more than `limit + 1` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        encoding = encoding.strip().lower()
        self.limit = limit
        self.produced = 0
        if encoding in ("gzip", "x-gzip"):
            self._z: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj()
            self._raw_deflate_fallback = True
        else:
            self._z = None
        self._first = True

    def feed(self, data: bytes) -> bytes:
        if self._z is None:
            return data
        room = self.limit + 1 - self.produced
        if room <= 0:
            return b""
        try:
            out = self._z.decompress(self._z.unconsumed_tail + data, room)
        except zlib.error:
            if self._first and getattr(self, "_raw_deflate_fallback", False):
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._z.decompress(data, room)
            else:
                raise
        self._first = False
        self.produced += len(out)
        return out


class _RecordingClient(httpx.AsyncClient):
    """httpx client that records a 3xx whose Location it cannot parse instead of raising.

    httpx builds the next request even when not following redirects, and a Location carrying CR/LF
    or other junk (exactly what CRLF and redirect probes provoke) would lose the whole response.
    ProbeClient follows redirects itself, so `next_request` is not needed.
    """

    def _build_redirect_request(self, request: httpx.Request, response: httpx.Response) -> httpx.Request:
        try:
            return super()._build_redirect_request(request, response)
        except (httpx.RemoteProtocolError, httpx.InvalidURL, ValueError):  # e.g. `Location: https:host`
            return request


class ProbeClient:
    """Async HTTP client bound to one target, scope and budget."""

    def __init__(self, target: Target, scope: Scope | None = None, limits: Limits | None = None,
                 budget: Budget | None = None, *, default_headers: Mapping[str, str] | None = None) -> None:
        self.target = target
        self.limits = limits or Limits()
        self.scope = scope or Scope.for_base_url(target.base_url, target.scope_hosts)
        self.budget = budget or Budget(self.limits)
        self._sem = asyncio.Semaphore(self.limits.concurrency)
        self._default_headers = {"user-agent": USER_AGENT, "accept-encoding": "gzip, deflate",
                                 **{k.lower(): v for k, v in (default_headers or {}).items()}}
        self._client = _RecordingClient(
            transport=target.transport(self.limits.max_response_bytes),
            base_url=target.base_url, follow_redirects=False, trust_env=False,
            timeout=httpx.Timeout(self.limits.request_timeout),
        )
        # Probes must not share cookies: state set by one probe would change another's outcome.
        self._client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> ProbeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.target.base_url + ("" if path_or_url.startswith("/") else "/") + path_or_url

    async def request(self, method: str, path_or_url: str, *, params: Any = None,
                      headers: Mapping[str, str] | None = None, cookies: Mapping[str, str] | None = None,
                      data: Mapping[str, Any] | None = None, json: Any = None, files: Any = None,
                      content: bytes | str | None = None, follow_redirects: bool = False) -> Exchange:
        """Send one request (plus redirect hops when asked). Raises only BudgetExhausted/ScopeError."""
        url = self.url(path_or_url)
        self.scope.require(url)
        if self.scope.path_excluded(url):
            # The user fenced this path off (e.g. /admin/delete-all): never send, whoever asks.
            return Exchange(SentRequest(method, url, []), error=f"{url}: path excluded by the scope",
                            events=["excluded-path"])
        hdrs: dict[str, str | bytes] = dict(self._default_headers)
        for k, v in (headers or {}).items():
            hdrs[k.lower()] = v.encode("utf-8") if isinstance(v, str) else v
        if files and "content-type" not in hdrs:
            # httpx picks a random boundary; a fixed one keeps evidence identical across runs.
            hdrs["content-type"] = f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"
        if cookies:
            hdrs["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items()).encode("utf-8")
        try:
            # httpx accepts str and bytes values in one mapping (it normalises each); its HeaderTypes do not say so
            request = self._client.build_request(method, url, params=params, headers=hdrs,  # type: ignore[arg-type]
                                                 data=data, json=json, files=files, content=content)
        except (httpx.InvalidURL, UnicodeError, ValueError, TypeError) as exc:
            sent = SentRequest(method, url, [(k, v if isinstance(v, str) else v.decode("utf-8", "replace"))
                                             for k, v in hdrs.items()])
            return Exchange(sent, error=f"request not sendable: {exc}", events=["invalid-request"])
        exchange = await self._send(request)
        if not follow_redirects:
            return exchange
        seen = {str(request.url)}
        history: list[Exchange] = []
        while exchange.status in (301, 302, 303, 307, 308) and exchange.header("location"):
            if len(history) >= self.limits.max_redirects:
                exchange.events.append("too-many-redirects")
                break
            try:
                next_url = str(httpx.URL(exchange.request.url).join(exchange.header("location") or ""))
            except (httpx.InvalidURL, ValueError, UnicodeError):
                exchange.events.append("invalid-redirect")
                break
            if not self.scope.allows(next_url):
                exchange.events.append("out-of-scope-redirect")
                exchange.error = f"redirect to {next_url} refused: outside the scope"
                break
            if self.scope.path_excluded(next_url):
                exchange.events.append("excluded-path")
                break
            if next_url in seen:
                exchange.events.append("redirect-loop")
                break
            seen.add(next_url)
            history.append(exchange)
            next_method = "GET" if exchange.status in (301, 302, 303) and method != "HEAD" else method
            request = self._client.build_request(
                next_method, next_url,
                headers={k: v for k, v in hdrs.items() if k != "content-type"},  # type: ignore[arg-type]  # as above
                content=request.content if next_method == method else None)
            exchange = await self._send(request)
        exchange.history = history
        return exchange

    async def _send(self, request: httpx.Request) -> Exchange:
        self.budget.spend()
        body = request.content if isinstance(request.stream, httpx.ByteStream) else b""
        headers = [(k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in request.headers.raw]
        sent = SentRequest(request.method, str(request.url), headers, body)
        exchange = Exchange(sent)
        timeout = min(self.limits.request_timeout, max(self.budget.remaining_time(), 0.001))
        async with self._sem:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    await self._receive(request, exchange)
            except (TimeoutError, httpx.TimeoutException):
                # httpx's own read/connect timeouts race the deadline: both mean the same to a check.
                exchange.events.append("timeout")
                exchange.error = f"no complete response within {timeout:g}s"
            except httpx.HTTPError as exc:
                exchange.events.append("connect-error" if isinstance(exc, httpx.TransportError)
                                       else "http-error")
                exchange.error = f"{type(exc).__name__}: {exc}"
            except zlib.error as exc:
                exchange.events.append("decode-error")
                exchange.error = f"cannot decode body: {exc}"
            except (BudgetExhausted, ScopeError):
                raise
            except Exception as exc:  # the in-process app itself raised: a server would send 500
                if not exchange.status:
                    exchange.status = 500
                exchange.events.append("app-exception")
                exchange.error = f"{type(exc).__name__}: {exc}"
            exchange.elapsed = time.perf_counter() - started
        return exchange

    async def _receive(self, request: httpx.Request, exchange: Exchange) -> None:
        limit = self.limits.max_response_bytes
        response = await self._client.send(request, stream=True)
        try:
            exchange.status = response.status_code
            exchange.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
            decoder = _BoundedDecoder(response.headers.get("content-encoding", ""), limit)
            parts: list[bytes] = []
            size = 0
            async for raw in response.aiter_raw():
                chunk = decoder.feed(raw)
                parts.append(chunk)
                size += len(chunk)
                if size > limit:
                    exchange.events.append("truncated")
                    break
            exchange.body = b"".join(parts)[:limit]
        finally:
            await response.aclose()
