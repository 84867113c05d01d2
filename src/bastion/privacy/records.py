"""Split what a store or an audit trail returns into records, and tell which records are new.

A store answers JSON (a list of objects, or an object holding one), an HTML page (one table row per
record) or text (one line per record); a hook's records arrive as lines (bastion.privacy.hooks.as_text).
Comparing the records of two reads as multisets gives the records written in between, whatever order
the trail lists them in (newest first is common) and even when older records drop off a paged view.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from typing import Any

_ROW = re.compile(r"(?is)<tr\b[^>]*>(.*?)(?:</tr>|(?=<tr\b)|$)")
_HEADER_CELL = re.compile(r"(?is)<th\b")
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
# Keys of a JSON object that hold the list of records ({"events": [...]}).
_LIST_KEYS = ("records", "events", "entries", "items", "logs", "log", "audit", "data", "results", "rows")
MAX_RECORDS = 5000


def _json_records(value: Any) -> list[str] | None:
    if isinstance(value, dict):
        lists = [value[k] for k in _LIST_KEYS if isinstance(value.get(k), list)]
        lists = lists or [v for v in value.values() if isinstance(v, list)]
        value = lists[0] if lists else None
    if not isinstance(value, list):
        return None
    return [json.dumps(item, sort_keys=True) if not isinstance(item, str) else item for item in value]


def _html_records(text: str) -> list[str]:
    rows = []
    for match in _ROW.finditer(text):
        if _HEADER_CELL.search(match.group(1)):
            continue  # the header row is not a record
        cells = _TAG.sub(" ", match.group(1))
        rows.append(_SPACE.sub(" ", html.unescape(cells)).strip())
    return [r for r in rows if r]


def split_records(text: str) -> list[str]:
    """The records of a store's or a trail's answer: JSON items, HTML table rows or non-empty lines."""
    stripped = text.strip()
    if stripped[:1] in "[{":
        try:
            records = _json_records(json.loads(stripped))
        except ValueError:
            records = None
        if records is not None:
            return records[:MAX_RECORDS]
    if re.search(r"(?i)<tr\b", text):
        return _html_records(text)[:MAX_RECORDS]
    return [line.strip() for line in text.splitlines() if line.strip()][:MAX_RECORDS]


def new_records(before: list[str], after: list[str]) -> list[str]:
    """Records in `after` that `before` did not have (as multisets: a repeated record counts twice)."""
    added = Counter(after) - Counter(before)
    out = []
    for record in after:
        if added[record] > 0:
            added[record] -= 1
            out.append(record)
    return out


def record_fields(record: str) -> dict[str, Any] | None:
    """The record as an object when it is one (JSON trails), else None."""
    try:
        value = json.loads(record)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def mentions(record: str, value: str) -> bool:
    """Whether `value` appears in `record` as a whole word (an e-mail, a user name), case-sensitively."""
    return re.search(rf"(?<![\w@.+-]){re.escape(value)}(?![\w@-])", record) is not None


_IDENTITY_FIELD = re.compile(r"(?i)user|login|e_?mail|account|ident|name")
_SECRET_FIELD = re.compile(r"(?i)passw|passphrase|pwd|secret|token|otp|code|csrf")
MIN_IDENTITY_LEN = 3


def role_identity(config: Any) -> list[str]:
    """The account names a role logs in with (user name / e-mail fields of its login, basic or OIDC user)."""
    values: list[str] = []
    login = getattr(config, "login", None)
    if login is not None:
        body = login.json_body if login.json_body is not None else (login.form or {})
        values += [str(v) for k, v in body.items()
                   if isinstance(v, str) and _IDENTITY_FIELD.search(str(k)) and not _SECRET_FIELD.search(str(k))]
    for section in ("basic", "oidc"):
        user = getattr(getattr(config, section, None), "username", None)
        if user:
            values.append(str(user))
    return [v for v in dict.fromkeys(values) if len(v) >= MIN_IDENTITY_LEN]
