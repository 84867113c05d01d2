"""Log sensor: every record the app's own code logs while a session is active, with its file:line.

Records below a logger's level are captured too (the level is deployment configuration: a password
logged at INFO is in the logs of every deployment that runs at INFO), but they are never passed on
to the app's handlers, so the app's log output is exactly what it would be without the sensor.
`classify_log` finds secrets and personal data in a record's text for the privacy check.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bastion.privacy.detectors import luhn_valid
from bastion.sensors import hook
from bastion.sensors.events import SensorEvent, SensorSession, clip

# Log records kept per session (the app's own records only; a chatty app must not evict other events).
MAX_LOG_EVENTS = 2_000
_installed = False


def install() -> None:
    """Wrap `Logger.isEnabledFor` and `Logger.handle` (once per process; pass-through without a session)."""
    global _installed
    if _installed:
        return
    _installed = True
    enabled = logging.Logger.isEnabledFor
    handle = logging.Logger.handle

    def is_enabled_for(self: logging.Logger, level: int) -> bool:
        if enabled(self, level):
            return True
        # While sensing, records below the level are built too (and dropped again in `handle`).
        return hook.active_session() is not None and not self.disabled and self.manager.disable < level

    def handle_record(self: logging.Logger, record: logging.LogRecord) -> Any:
        session = hook.active_session()
        if session is None:
            return handle(self, record)
        written = enabled(self, record.levelno)
        if not hook.busy():
            _capture(session, record, written)
        return handle(self, record) if written else None

    is_enabled_for.__wrapped__ = enabled  # type: ignore[attr-defined]
    handle_record.__wrapped__ = handle  # type: ignore[attr-defined]
    logging.Logger.isEnabledFor = is_enabled_for  # type: ignore[method-assign]
    logging.Logger.handle = handle_record  # type: ignore[assignment,method-assign]


def _capture(session: SensorSession, record: logging.LogRecord, written: bool) -> None:
    if session.app_roots and not session.is_app_file(record.pathname or ""):
        return  # a library's own record (the framework's access log...): not what the app chose to log
    try:
        message = record.getMessage()
    except Exception:  # a broken format string is the app's bug, not the sensor's
        message = str(record.msg)
    where = "" if written else " (below the logger's level here: written wherever the level allows it)"
    detail = f"{record.levelname} {record.name}{where}: {message}"
    # Located at the record's call site (the app line that logged it), not at the sensor's stack.
    event = SensorEvent("log", clip(detail), record.pathname or None, record.lineno or None, hook.current_probe())
    session.record(event, kind_cap=MAX_LOG_EVENTS)


# --- classification ---------------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_MASKED = re.compile(r"^\*+$|^<?redacted>?$|^\[?filtered\]?$|^x{3,}$", re.IGNORECASE)
DEFAULT_SECRET_FIELDS = ("password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "otp",
                         "totp", "pin", "cvv", "ssn")
DEFAULT_PII_FIELDS = ("email", "phone", "iban", "card_number", "ssn", "date_of_birth", "address")


@dataclass(frozen=True)
class LogLeak:
    """What a log record gave away: `kind` is `secret` or `pii`, `what` names it (never its value)."""

    kind: str
    what: str
    value: str  # the leaked value, for redaction only: never shown


def _field_values(message: str, fields: Iterable[str]) -> list[tuple[str, str]]:
    """`name=value` / `name: value` / `"name": "value"` pairs whose name contains one of `fields`."""
    fields = tuple(fields)  # read twice below
    names = "|".join(re.escape(f) for f in sorted(set(fields), key=len, reverse=True) if f)
    if not names or not _may_mention(message, fields):
        return []
    pattern = re.compile(rf"(?i)([\w.-]*(?:{names})[\w.-]*)['\"]?\s*[=:]\s*['\"]?([^\s'\",;&}}]+)")
    return [(m.group(1), m.group(2)) for m in pattern.finditer(message)]


def _may_mention(message: str, fields: Iterable[str]) -> bool:
    """False only when no field name occurs in `message`, even case-insensitively (True when unsure).

    The `name=value` pattern is slow on long records (its leading name-character run is retried at every position);
    most records name no field at all. Casefolding maps every character `(?i)` matches to an ASCII
    letter onto that letter, except the Turkish dotted and dotless i, which are mapped here.
    """
    wanted = [f.lower() for f in fields if f]
    if not all(f.isascii() for f in wanted):
        return True
    folded = message.casefold().replace("i\u0307", "i").replace("\u0131", "i")
    return any(f in folded for f in wanted)


def classify_log(message: str, *, secrets: Iterable[str] = (), secret_fields: Iterable[str] = (),
                 pii_fields: Iterable[str] = ()) -> list[LogLeak]:
    """Secrets (known values, `password=...` fields) and PII (e-mails, card numbers, PII fields) in a record."""
    leaks: list[LogLeak] = []
    for value in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        if value in message:
            leaks.append(LogLeak("secret", "a credential the scan used", value))
    for name, value in _field_values(message, secret_fields or DEFAULT_SECRET_FIELDS):
        if not _MASKED.match(value) and len(value) >= 3:
            leaks.append(LogLeak("secret", f"the value of {name!r}", value))
    for match in _CARD.finditer(message):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits) and len(set(digits)) > 1:
            leaks.append(LogLeak("pii", "a payment card number", match.group()))
    for match in _EMAIL.finditer(message):
        leaks.append(LogLeak("pii", "an e-mail address", match.group()))
    for name, value in _field_values(message, pii_fields or DEFAULT_PII_FIELDS):
        if not _MASKED.match(value) and len(value) >= 3 and not any(value in k.value for k in leaks):
            leaks.append(LogLeak("pii", f"the value of {name!r}", value))
    return leaks
