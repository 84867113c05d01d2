"""The alert channels the model's `alerts:` section names, watched during each drill step.

- log: a handler on the named logger keeps records whose message matches the pattern (in-process targets;
  a URL target's logs are out of reach, so there the channel is "not observable").
- webhook: a loopback HTTP listener; its URL reaches the service through the named environment variable,
  set while an in-process app is built (`start_alert_sinks` before the factory runs, `attach` after), or
  on the configured port for a URL target started with that URL.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Alert texts kept per channel (a chatty alerter must not grow memory without bound).
MAX_ALERTS = 500
MAX_BODY = 2_000
ALERT_PATH = "/alert"

_SINKS: dict[int, AlertSinks] = {}
_LOCK = threading.Lock()


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _WebhookServer

    def _answer(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        body = self.rfile.read(length).decode("utf-8", "replace") if length > 0 else ""
        self.server.record(f"{self.command} {self.path.split('?', 1)[0]} {body}".strip())
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _answer  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        return


class _WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _WebhookHandler)
        self.hits: list[str] = []
        self._lock = threading.Lock()

    def record(self, text: str) -> None:
        with self._lock:
            if len(self.hits) < MAX_ALERTS:
                self.hits.append(text)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.hits)


@dataclass
class AlertSinks:
    """The webhook listener of one target; `url` is what the service posts its alerts to."""

    env: str
    server: _WebhookServer
    _saved: str | None = None
    _closed: bool = False
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{ALERT_PATH}"

    def hits(self) -> list[str]:
        return self.server.snapshot()

    def set_environment(self) -> None:
        self._saved = os.environ.get(self.env)
        os.environ[self.env] = self.url

    def restore_environment(self) -> None:
        if self._saved is None:
            os.environ.pop(self.env, None)
        else:
            os.environ[self.env] = self._saved

    def attach(self, target: Any) -> None:
        """Restore the environment; the listener lives as long as `target` (`sinks_for(target)`)."""
        self.restore_environment()
        with _LOCK:
            _SINKS[id(target)] = self
        weakref.finalize(target, self._detach, id(target))

    def _detach(self, key: int) -> None:
        with _LOCK:
            if _SINKS.get(key) is self:
                del _SINKS[key]
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread is not None and self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


def start_alert_sinks(alerts: Any, *, in_process: bool) -> AlertSinks | None:
    """Start the webhook listener of `alerts.webhook` (None without one); in-process: its URL in os.environ."""
    hook = getattr(alerts, "webhook", None)
    if hook is None or (not in_process and hook.port is None):
        return None
    server = _WebhookServer(hook.port or 0)
    sinks = AlertSinks(env=hook.env, server=server)
    sinks._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                     name="bastion-alert-webhook", daemon=True)
    sinks._thread.start()
    if in_process:
        sinks.set_environment()
    return sinks


def sinks_for(target: Any) -> AlertSinks | None:
    """The webhook listener attached to this target, if any."""
    with _LOCK:
        return _SINKS.get(id(target))


def release_sinks(target: Any) -> None:
    """Stop the listener attached to `target` now."""
    sinks = sinks_for(target)
    if sinks is not None:
        sinks._detach(id(target))


class _PatternHandler(logging.Handler):
    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__(logging.NOTSET)
        self.pattern = pattern
        self.matched: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # the app's broken format string: keep the raw text
            message = str(record.msg)
        if self.pattern.search(message) and len(self.matched) < MAX_ALERTS:
            self.matched.append(f"{record.levelname} {record.name}: {message[:MAX_BODY]}")


@dataclass(frozen=True)
class Mark:
    """Where the channels stood when a step began."""

    logs: int
    hooks: int


class AlertWatch:
    """`with AlertWatch(cfg.alerts, target):` then `mark = watch.mark()` ... `watch.since(mark)`."""

    def __init__(self, alerts: Any, target: Any) -> None:
        self.log_cfg = getattr(alerts, "log", None) if target.in_process else None
        self.sinks = sinks_for(target) if getattr(alerts, "webhook", None) is not None else None
        self._handler: _PatternHandler | None = None
        self.configured = alerts is not None

    @property
    def observable(self) -> bool:
        """Whether any channel can be watched here (a URL target's logs cannot)."""
        return self.log_cfg is not None or self.sinks is not None

    def channels(self) -> list[str]:
        out = []
        if self.log_cfg is not None:
            out.append(f"log {self.log_cfg.logger} /{self.log_cfg.pattern}/")
        if self.sinks is not None:
            out.append(f"webhook ${self.sinks.env}")
        return out

    def __enter__(self) -> AlertWatch:
        if self.log_cfg is not None:
            self._handler = _PatternHandler(re.compile(self.log_cfg.pattern, re.IGNORECASE))
            logging.getLogger(self.log_cfg.logger).addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handler is not None and self.log_cfg is not None:
            logging.getLogger(self.log_cfg.logger).removeHandler(self._handler)

    def _logs(self) -> list[str]:
        return list(self._handler.matched) if self._handler is not None else []

    def _hooks(self) -> list[str]:
        return self.sinks.hits() if self.sinks is not None else []

    def mark(self) -> Mark:
        return Mark(len(self._logs()), len(self._hooks()))

    def since(self, mark: Mark) -> list[str]:
        """Alerts raised after `mark`: 'log ...' and 'webhook ...' lines."""
        return ([f"log: {m}" for m in self._logs()[mark.logs:]]
                + [f"webhook: {h}" for h in self._hooks()[mark.hooks:]])
