"""Targets: an in-process WSGI/ASGI app or a live URL, turned into an httpx transport."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from bastion.errors import TargetError
from bastion.target.transports import AsyncASGITransport, AsyncWSGITransport

IN_PROCESS_BASE_URL = "http://bastion.local"
# An app that never answers lifespan startup/shutdown must not hang the scan.
LIFESPAN_TIMEOUT = 60.0


@dataclass
class Target:
    kind: Literal["wsgi", "asgi", "url"]
    base_url: str
    app: Any = None
    # How the target was named (app spec or URL); used in reports and reproductions.
    spec: str = ""
    # Extra hosts the scope allows besides the base URL's.
    scope_hosts: list[str] = field(default_factory=list)
    # What the history tracks runs of; defaults to `spec`. The demo names itself without its flaw
    # selection, so toggling a flaw between two runs shows it as fixed.
    name: str = ""
    # Restores the target's data after state-changing probes: called with the app (in-process)
    # or the base URL; may be async.
    reset_hook: Callable[[Any], Any] | None = field(default=None, repr=False)

    @property
    def identity(self) -> str:
        return self.name or self.spec or self.base_url

    async def reset(self) -> bool:
        """Run the reset hook (if any); False when the target has none."""
        if self.reset_hook is None:
            return False
        outcome = self.reset_hook(self.app if self.in_process else self.base_url)
        if inspect.isawaitable(outcome):
            await outcome
        return True

    @property
    def in_process(self) -> bool:
        return self.kind != "url"

    @property
    def is_https(self) -> bool:
        return self.base_url.startswith("https://")

    def transport(self, max_bytes: int) -> httpx.AsyncBaseTransport:
        if self.kind == "wsgi":
            return AsyncWSGITransport(self.app, max_bytes)
        if self.kind == "asgi":
            return AsyncASGITransport(self.app, max_bytes)
        return httpx.AsyncHTTPTransport(retries=0)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run ASGI lifespan startup/shutdown around the scan when the app supports it."""
        if self.kind != "asgi":
            yield
            return
        async with _asgi_lifespan(self.app):
            yield

    @classmethod
    def from_app(cls, app: Any, *, spec: str = "", base_url: str = IN_PROCESS_BASE_URL) -> Target:
        target = cls(kind=detect_app_kind(app, spec), base_url=base_url.rstrip("/"), app=app, spec=spec)
        from bastion.target.django_app import check_allowed_hosts  # no Django import unless already loaded

        check_allowed_hosts(app, target.base_url, spec)
        return target

    @classmethod
    def from_url(cls, url: str) -> Target:
        try:
            u = httpx.URL(url)
        except Exception as exc:  # httpx.InvalidURL and friends
            raise TargetError(f"{url}: not a valid URL ({exc})") from None
        if u.scheme not in ("http", "https") or not u.host:
            raise TargetError(f"{url}: target URL must be http:// or https:// with a host")
        return cls(kind="url", base_url=str(u).rstrip("/"), spec=str(u))

    @classmethod
    def from_spec(cls, spec: str, *, base_url: str = IN_PROCESS_BASE_URL) -> Target:
        return cls.from_app(load_app(spec), spec=spec, base_url=base_url)


def detect_app_kind(app: Any, spec: str = "") -> Literal["wsgi", "asgi"]:
    if not callable(app):
        raise TargetError(f"{spec or app!r}: not a WSGI or ASGI application (not callable)")
    if hasattr(app, "wsgi_app"):  # Flask and friends
        return "wsgi"
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else app.__call__
    if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(app):
        return "asgi"
    try:
        params = [p for p in inspect.signature(call).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) == 3:
        return "asgi"
    if len(params) == 2:
        return "wsgi"
    raise TargetError(f"{spec or app!r}: cannot tell whether this is a WSGI or an ASGI application")


def load_app(spec: str) -> Any:
    """Import `module:attr` or `module:factory(args)`; call arguments must be literals."""
    module_name, sep, expr = spec.partition(":")
    if not sep or not module_name or not expr:
        raise TargetError(f"{spec}: app must be given as 'module:app' or 'module:factory()'")
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise TargetError(f"{spec}: cannot parse {expr[:80]!r}") from None
    call_args: tuple[list[Any], dict[str, Any]] | None = None
    if isinstance(node, ast.Call):
        if any(k.arg is None for k in node.keywords):  # `**mapping` would be dropped silently otherwise
            raise TargetError(f"{spec}: factory arguments must be literals (no *args or **kwargs)")
        try:
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {str(k.arg): ast.literal_eval(k.value) for k in node.keywords}
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            raise TargetError(f"{spec}: factory arguments must be literals") from None
        call_args = (args, kwargs)
        node = node.func
    attr_path: list[str] = []
    while isinstance(node, ast.Attribute):
        attr_path.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise TargetError(f"{spec}: expected a name like 'module:app' or 'module:create_app()'")
    attr_path.insert(0, node.id)
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, ".")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetError(f"{spec}: cannot import module {module_name!r} ({exc})") from None
    except Exception as exc:  # the user's module failed while importing: their bug, told as such
        raise TargetError(f"{spec}: importing module {module_name!r} raised "
                          f"{type(exc).__name__}: {exc}") from None
    for name in attr_path:
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise TargetError(f"{spec}: module {module_name!r} has no attribute {name!r}") from None
    if call_args is not None:
        try:
            obj = obj(*call_args[0], **call_args[1])
        except Exception as exc:
            raise TargetError(f"{spec}: factory raised {type(exc).__name__}: {exc}") from None
    return obj


_LIFESPAN_REPLIES = {"lifespan.startup.complete", "lifespan.startup.failed", "lifespan.shutdown.complete",
                     "lifespan.shutdown.failed"}


@asynccontextmanager
async def _asgi_lifespan(app: Any) -> AsyncIterator[None]:
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await to_app.get()

    async def send(message: dict[str, Any]) -> None:
        # An app that ignores the scope type answers lifespan with HTTP messages; stop it like a
        # server would, or an endless response would spin here forever.
        if message.get("type") not in _LIFESPAN_REPLIES:
            raise RuntimeError(f"unexpected ASGI message {message.get('type')!r} during lifespan")
        await from_app.put(message)

    async def run() -> None:
        try:
            await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
        except Exception:  # noqa: S110 - raising on lifespan is how apps say "not supported"
            pass
        # Returning (or raising) without answering means "no lifespan support": never leave us waiting.
        await from_app.put({"type": "lifespan.unsupported"})

    task = asyncio.ensure_future(run())
    await to_app.put({"type": "lifespan.startup"})
    try:
        first = await asyncio.wait_for(from_app.get(), timeout=LIFESPAN_TIMEOUT)
    except TimeoutError:
        task.cancel()
        raise TargetError(f"ASGI app did not finish lifespan startup within {LIFESPAN_TIMEOUT:g}s") from None
    if first["type"] == "lifespan.startup.failed":
        task.cancel()
        raise TargetError(f"ASGI app failed to start: {first.get('message', '')}")
    supported = first["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        if supported:
            await to_app.put({"type": "lifespan.shutdown"})
            try:
                await asyncio.wait_for(from_app.get(), timeout=LIFESPAN_TIMEOUT)
            except TimeoutError:
                pass
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: S110 - shutdown errors cannot change results
            pass
