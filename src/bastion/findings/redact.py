"""Redaction: secrets and the run's own credentials never leave Bastion in clear text."""

from __future__ import annotations

import re
from collections.abc import Iterable

from bastion.findings.model import Finding

MASK = "***"

# (pattern, replacement) pairs for secrets recognisable by shape, whoever they belong to.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?im)^(authorization|proxy-authorization|x-api-key|api-key|x-auth-token):[ \t]*(\S+[ \t]+)?\S+"),
     r"\1: \2" + MASK),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK + "(jwt)"),
    (re.compile(r"(?i)(\"(?:password|passwd|pwd|secret|token|api_key|apikey|access_token|refresh_token|"
                r"client_secret|private_key)\"\s*:\s*\")[^\"]*(\")"), r"\1" + MASK + r"\2"),
    (re.compile(r"(?i)\b((?:password|passwd|pwd|secret|token|api_key|apikey|access_token|refresh_token|"
                r"client_secret)=)[^&\s'\"]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(AKIA|ASIA)[0-9A-Z]{16}\b"), MASK + "(aws-key)"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
     MASK + "(private-key)"),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{10,})"),
     MASK + "(token)"),
]
_SESSION_COOKIE = re.compile(r"(?i)\b((?:set-)?cookie:[ \t]*)([^\r\n]*)")
_COOKIE_PAIR = re.compile(r"(?i)(^|;\s*)([^=;\s]*(?:sess|sid|token|auth|jwt|remember)[^=;\s]*)=([^;]*)")


def _mask_cookie_line(m: re.Match[str]) -> str:
    return m.group(1) + _COOKIE_PAIR.sub(lambda c: f"{c.group(1)}{c.group(2)}={MASK}", m.group(2))


class Redactor:
    """Masks known secrets (exact strings) and secret-shaped text (patterns)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first so a secret containing another is masked whole; ignore trivially short values.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, value: str) -> str:
        if not value:
            return value
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        for pattern, repl in _PATTERNS:
            value = pattern.sub(repl, value)
        return _SESSION_COOKIE.sub(_mask_cookie_line, value)

    def finding(self, f: Finding) -> Finding:
        """Return a copy of `f` with every free-text field redacted."""
        data = f.model_dump(by_alias=True)
        return Finding.model_validate(self._walk(data))

    def _walk(self, obj: object) -> object:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, list):
            return [self._walk(x) for x in obj]
        if isinstance(obj, dict):
            return {k: (v if k in ("fingerprint", "check_id", "threat_id") else self._walk(v))
                    for k, v in obj.items()}
        return obj
