"""An SMTP outbox for tests: a real SMTP server (aiosmtpd) on 127.0.0.1 that captures every message.

    with SMTPOutbox().serve() as outbox:
        with smtplib.SMTP(outbox.host, outbox.port) as smtp:      # what the app under test does
            smtp.send_message(msg)
        outbox.wait_for(1)
        reset = outbox.find(to="alice@example.test", subject="Reset")[0]
        assert outbox.links(reset) == ["http://app.test/reset?token=..."]

The server accepts any sender and recipient, and AUTH with any credentials (over the plain loopback
connection, as many apps are configured in test), so nothing is ever delivered anywhere. Clients reach it
through a FaultProxy: `faults.outage(outbox)` and friends work on it (bastion.doubles.faults).
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from bastion.doubles.faults import FaultState, fronted

WAIT_TIMEOUT_S = 5.0
# A message larger than this is refused (552): a double must not be what a hostile test exhausts.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
# URLs in text bodies, and href/src values in HTML bodies.
_URL = re.compile(r"""https?://[^\s<>"'()\[\]{}]+""")
_TRAILING = ".,;:!?"


@dataclass(frozen=True)
class MailMessage:
    """A captured message: envelope, parsed headers and bodies, and the raw bytes."""

    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str
    raw: bytes
    headers: dict[str, str] = field(default_factory=dict)
    login: str = ""  # the SMTP AUTH user name the sender logged in with, if any

    @property
    def body(self) -> str:
        """The text body, or the HTML body when the message has no text part."""
        return self.text or self.html

    def links(self) -> list[str]:
        """URLs in the message bodies, in order, without duplicates (HTML entities decoded)."""
        found: list[str] = []
        for chunk in (self.text, html.unescape(self.html)):
            for match in _URL.finditer(chunk):
                url = match.group(0).rstrip(_TRAILING)
                if url not in found:
                    found.append(url)
        return found


def parse_message(sender: str, recipients: list[str], raw: bytes, login: str = "") -> MailMessage:
    """A MailMessage from an SMTP envelope and the DATA bytes."""
    parsed = message_from_bytes(raw, policy=email_policy.default)
    text = html_body = ""
    if isinstance(parsed, EmailMessage):
        text = _part_content(parsed, "plain")
        html_body = _part_content(parsed, "html")
    headers = {name.lower(): str(value) for name, value in parsed.items()}
    return MailMessage(sender, tuple(recipients), str(parsed.get("subject", "")), text, html_body, raw, headers,
                       login)


def _part_content(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # unknown charset or broken encoding: keep what can be read
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)


class _Capture:
    """aiosmtpd handler: every accepted message lands in the outbox."""

    def __init__(self, outbox: SMTPOutbox) -> None:
        self.outbox = outbox

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        login = session.auth_data if isinstance(session.auth_data, str) else ""
        self.outbox._deliver(parse_message(str(envelope.mail_from or ""), list(envelope.rcpt_tos), raw, login))
        return "250 2.0.0 Message accepted for delivery"


def _accept_any_login(server: Any, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
    """Any credentials log in; the user name is kept (never the password) so tests can see who sent."""
    login = auth_data.login.decode("utf-8", "replace") if isinstance(auth_data, LoginPassword) else ""
    return AuthResult(success=True, handled=True, auth_data=login)


class _Controller(Controller):
    """aiosmtpd's Controller, bound to a free port (it insists on knowing the port to wake its server)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            server: Any = self.server
            self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SMTPOutbox:
    """Captures the mail an app sends; assertions: messages, find, links, wait_for."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.fault_state = FaultState("smtp")
        self._messages: list[MailMessage] = []
        self._arrived = threading.Condition()

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def env(self, prefix: str = "SMTP_") -> dict[str, str]:
        """Settings for an app under test (`SMTP_HOST`, `SMTP_PORT`, `SMTP_URL`)."""
        return {f"{prefix}HOST": self.host, f"{prefix}PORT": str(self.port), f"{prefix}URL": self.url}

    @contextmanager
    def serve(self) -> Iterator[SMTPOutbox]:
        """Serve on 127.0.0.1 (free port) until the block ends; `host`/`port` are where apps send."""
        controller = _Controller(_Capture(self), hostname="127.0.0.1", port=0, data_size_limit=MAX_MESSAGE_BYTES,
                                 authenticator=_accept_any_login, auth_require_tls=False, ready_timeout=10.0)
        controller.start()
        try:
            with fronted(("127.0.0.1", controller.port), "smtp", self.fault_state) as proxy:
                self.port = proxy.port
                yield self
        finally:
            self.port = 0
            controller.stop()

    # --- capture ----------------------------------------------------------------------------------

    def _deliver(self, message: MailMessage) -> None:
        with self._arrived:
            self._messages.append(message)
            self._arrived.notify_all()

    @property
    def messages(self) -> list[MailMessage]:
        """Every message captured so far, in arrival order."""
        with self._arrived:
            return list(self._messages)

    def clear(self) -> None:
        with self._arrived:
            self._messages.clear()

    def find(self, to: str | None = None, subject: str | None = None, sender: str | None = None,
             contains: str | None = None) -> list[MailMessage]:
        """Messages to `to` (any recipient, case-insensitive), whose subject contains `subject`, and so on."""
        found = []
        for message in self.messages:
            if to is not None and to.lower() not in {r.lower() for r in message.recipients}:
                continue
            if subject is not None and subject not in message.subject:
                continue
            if sender is not None and sender.lower() != message.sender.lower():
                continue
            if contains is not None and contains not in message.text and contains not in message.html:
                continue
            found.append(message)
        return found

    def links(self, message: MailMessage | None = None) -> list[str]:
        """URLs in the bodies of `message`, or of every captured message (e.g. password-reset links)."""
        found: list[str] = []
        for msg in [message] if message is not None else self.messages:
            found.extend(url for url in msg.links() if url not in found)
        return found

    def wait_for(self, count: int = 1, timeout: float = WAIT_TIMEOUT_S) -> list[MailMessage]:
        """Block until at least `count` messages arrived (bounded by `timeout`); returns them all."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"SMTP outbox: expected {count} message(s) within {timeout}s, "
                                   f"got {len(self._messages)}")
            return list(self._messages)
