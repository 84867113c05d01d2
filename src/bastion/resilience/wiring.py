"""Start the doubles a threat model declares (`dependencies:` with `double: true`) and wire an in-process app
to them through the environment its factory reads, like production configuration.

    wired = wire_dependencies(cfg.dependencies)      # doubles started, settings in os.environ
    target = Target.from_spec(cfg.target.app)        # the factory reads OIDC_ISSUER, QUEUE_URL, VAULT_ADDR...
    wired.attach(target)                             # environment restored; doubles live as long as the target

Settings per kind (renamed by the dependency's `env:` map): oidc → OIDC_ISSUER, OIDC_CLIENT_ID,
OIDC_CLIENT_SECRET (a confidential client registered for the app, e.g. for token introspection),
OIDC_AUDIENCE; queue → QUEUE_URL, QUEUE_TOPIC, QUEUE_SIGNING_KEY (with `signing:`); vault → VAULT_ADDR,
VAULT_TOKEN; smtp → SMTP_HOST, SMTP_PORT, SMTP_URL (the mail outbox);
cache → CACHE_URL (redis://, a redis-server behind a fault proxy). Dependencies without a double
but with `fault_hook`, a sqlite `path` or a postgresql/cache `url` get an in-process outage
(bastion/resilience/outage.py) instead, with no settings. An in-process app gets the in-memory queue
through `bastion-memory://<id>`, which `queue_from_setting` resolves to the very broker the checks publish to.
"""

from __future__ import annotations

import os
import secrets
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bastion.doubles.queue import InMemoryQueue, MessageQueue, queue_from_url

MEMORY_SCHEME = "bastion-memory"
# The confidential client the app uses at the IdP double (introspection needs one).
TARGET_CLIENT_ID = "bastion-target"

_QUEUES: dict[str, InMemoryQueue] = {}
_WIRED: dict[int, WiredDoubles] = {}
_LOCK = threading.Lock()


@dataclass
class Wired:
    """One running double: its config name, kind, the object faults are switched on, and its settings."""

    name: str
    kind: str
    double: Any
    settings: dict[str, str]
    # Strings that must never reach a client: the double's URL and host:port.
    addresses: list[str] = field(default_factory=list)
    # The settings under Bastion's own names (before the dependency's `env:` renames them).
    raw: dict[str, str] = field(default_factory=dict)


@dataclass
class WiredDoubles:
    """The doubles started for one scan; `close()` stops them (also when the target is garbage-collected)."""

    deps: dict[str, Wired] = field(default_factory=dict)
    _stack: ExitStack = field(default_factory=ExitStack)
    _saved_env: dict[str, str | None] = field(default_factory=dict)
    _closed: bool = False

    @property
    def env(self) -> dict[str, str]:
        return {k: v for w in self.deps.values() for k, v in w.settings.items()}

    @property
    def secrets(self) -> list[str]:
        """Setting values that are credentials (client secret, signing key, vault token): reports mask them."""
        return [v for w in self.deps.values() for k, v in w.settings.items()
                if k.endswith(("_SECRET", "_KEY", "_TOKEN")) or "SECRET" in k]

    def get(self, name: str) -> Wired | None:
        return self.deps.get(name)

    def set_environment(self) -> None:
        """Put the doubles' settings in os.environ (the app factory reads them); `attach` restores it."""
        for key, value in self.env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def restore_environment(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    @contextmanager
    def environment(self) -> Iterator[dict[str, str]]:
        """The settings in os.environ while the block builds the app."""
        self.set_environment()
        try:
            yield self.env
        finally:
            self.restore_environment()

    def attach(self, target: Any) -> None:
        """Restore the environment and tie the doubles to `target`: checks find them with `doubles_for`."""
        self.restore_environment()
        for wired in self.deps.values():
            if hasattr(wired.double, "in_process_only"):
                wired.double.app = getattr(target, "app", target)  # a fault_hook is called with the app
        with _LOCK:
            _WIRED[id(target)] = self
        weakref.finalize(target, self._detach, id(target))

    def _detach(self, key: int) -> None:
        with _LOCK:
            if _WIRED.get(key) is self:
                del _WIRED[key]
        self.close()

    def close(self) -> None:
        """Stop every double (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.restore_environment()
        for wired in self.deps.values():
            state = getattr(wired.double, "fault_state", None)
            if state is not None:
                state.set(None)  # a fault left on must not hold a serving thread
        with _LOCK:
            for key in [k for k, q in _QUEUES.items() if any(w.double is q for w in self.deps.values())]:
                del _QUEUES[key]
        self._stack.close()


def doubles_for(target: Any) -> WiredDoubles | None:
    """The doubles wired to this target by the scan, if any."""
    with _LOCK:
        return _WIRED.get(id(target))


def release(target: Any) -> None:
    """Stop the doubles wired to `target` now (a scan's end); else they stop when the target is collected."""
    wired = doubles_for(target)
    if wired is not None:
        wired._detach(id(target))


def queue_from_setting(url: str) -> MessageQueue:
    """What an app calls with its QUEUE_URL: the scan's in-memory broker for `bastion-memory://`, else
    `bastion.doubles.queue.queue_from_url` (memory://, redis://)."""
    parts = urlsplit(url)
    if parts.scheme == MEMORY_SCHEME:
        with _LOCK:
            queue = _QUEUES.get(parts.netloc)
        if queue is None:
            raise ValueError(f"queue URL {url!r}: no such in-memory broker (its scan has ended)")
        return queue
    return queue_from_url(url)


def wire_dependencies(dependencies: Mapping[str, Any]) -> WiredDoubles | None:
    """Start a double for each dependency with `double: true`; None when there is none.

    The settings are put in os.environ at once (the caller builds the app next, then calls `attach`).
    """
    wired = WiredDoubles()
    try:
        for name, dep in dependencies.items():
            if not dep.double:
                outage = _declared_outage(name, dep)
                if outage is not None:
                    wired.deps[name] = outage
                continue
            starter = _STARTERS[dep.kind]
            item = starter(wired._stack, name, dep)
            item.raw = dict(item.settings)
            item.settings = {dep.env.get(k, k): v for k, v in item.settings.items()}
            wired.deps[name] = item
    except BaseException:
        wired.close()
        raise
    if not wired.deps:
        return None
    wired.set_environment()
    return wired


def _addresses(url: str) -> list[str]:
    parts = urlsplit(url)
    return [url.rstrip("/"), f"{parts.hostname}:{parts.port}"] if parts.port else [url.rstrip("/")]


def _start_oidc(stack: ExitStack, name: str, dep: Any) -> Wired:
    from bastion.doubles.oidc import OIDCProvider

    # 2048-bit keys cost ~0.1 s; nothing here needs more than a test-strength key.
    idp = OIDCProvider(key_size=2048)
    secret = secrets.token_urlsafe(18)
    idp.add_client(TARGET_CLIENT_ID, secret=secret)
    stack.enter_context(idp.serve())
    settings = {"OIDC_ISSUER": idp.issuer, "OIDC_CLIENT_ID": TARGET_CLIENT_ID, "OIDC_CLIENT_SECRET": secret}
    if dep.audience:
        settings["OIDC_AUDIENCE"] = dep.audience
    return Wired(name, "oidc", idp, settings, _addresses(idp.issuer))


def _start_queue(stack: ExitStack, name: str, dep: Any) -> Wired:
    queue = InMemoryQueue()
    key = secrets.token_hex(8)
    with _LOCK:
        _QUEUES[key] = queue
    settings = {"QUEUE_URL": f"{MEMORY_SCHEME}://{key}"}
    if dep.topic:
        settings["QUEUE_TOPIC"] = dep.topic
    if dep.signing is not None:
        settings["QUEUE_SIGNING_KEY"] = secrets.token_hex(16)
    return Wired(name, "queue", queue, settings, [settings["QUEUE_URL"]])


def _start_vault(stack: ExitStack, name: str, dep: Any) -> Wired:
    from bastion.doubles.vault import SecretsVault

    vault = stack.enter_context(SecretsVault().serve())
    return Wired(name, "vault", vault, vault.env(), _addresses(vault.url))


def _start_cache(stack: ExitStack, name: str, dep: Any) -> Wired:
    """A throw-away redis-server behind a fault proxy: an outage closes its port and cuts pooled connections."""
    from bastion.doubles.faults import FaultState, fronted
    from bastion.doubles.queue import RedisServer

    server = stack.enter_context(RedisServer())
    proxy = stack.enter_context(fronted((server.host, server.port), "resp", FaultState(name)))
    url = f"redis://{proxy.host}:{proxy.port}/0"
    return Wired(name, "cache", proxy, {"CACHE_URL": url}, _addresses(url))


def _declared_outage(name: str, dep: Any) -> Wired | None:
    """A store that is not a double but can be broken in-process (bastion/resilience/outage.py)."""
    from bastion.resilience.outage import outage_for

    outage = outage_for(name, dep)
    if outage is None:
        return None
    # What must not reach a client: the store's address, or its file's path.
    addresses = _addresses(dep.url) if dep.url else [dep.path] if dep.path else []
    return Wired(name, dep.kind, outage, {}, addresses)


def _start_smtp(stack: ExitStack, name: str, dep: Any) -> Wired:
    """The SMTP outbox double (aiosmtpd): the app sends to SMTP_HOST:SMTP_PORT, checks read what it sent."""
    from bastion.doubles.smtp import SMTPOutbox

    outbox = stack.enter_context(SMTPOutbox().serve())
    return Wired(name, "smtp", outbox, outbox.env(), _addresses(outbox.url))


_STARTERS = {"oidc": _start_oidc, "queue": _start_queue, "vault": _start_vault, "cache": _start_cache,
             "smtp": _start_smtp}
