"""Redaction: secrets and the run's own credentials never leave Bastion in clear text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from bastion.findings.model import Finding, Proof

if TYPE_CHECKING:
    from bastion.target.target import Target

MASK = "***"

_SECRET_HEADERS = "authorization|proxy-authorization|x-api-key|api-key|x-auth-token"
_SECRET_WORDS = ("password|passwd|pwd|secret|token|api_?key|apikey|access_key|client_secret|private_key|"
                 "session")
_KEY_CHARS = r"[\w.%\[\]-]"


def _mask_header(m: re.Match[str]) -> str:
    """Keep the header name and the auth scheme (`Bearer`), mask the credential."""
    scheme = m.group("scheme")
    return m.group("head") + (scheme + " " if scheme else "") + MASK


# (pattern, replacement) pairs for secrets recognisable by shape, whoever they belong to. Values stop
# at quotes so masking inside a shell-quoted curl line or Python source never breaks the quoting.
_PATTERNS: list[tuple[re.Pattern[str], object]] = [
    # HTTP message text: `Authorization: Digest a=1, b=2` masks to the end of the line.
    (re.compile(rf"(?im)^(?P<head>(?:{_SECRET_HEADERS}):[ \t]*)"
                r"(?:(?P<scheme>[A-Za-z][\w-]*)[ \t]+)?[^\r\n]+"),
     _mask_header),
    # Quoted contexts: curl `-H 'authorization: Bearer x'`, Python/JSON `'authorization': 'Bearer x'`.
    (re.compile(rf"(?i)(?P<head>['\"](?:{_SECRET_HEADERS})['\"]?[ \t]*:[ \t]*['\"]?)"
                r"(?:(?P<scheme>[A-Za-z][\w-]*)[ \t]+)?[^'\"\r\n]+"), _mask_header),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK + "(jwt)"),
    # JSON members whose key names a secret (`password`, `new_password`, `api_key`), escapes included.
    (re.compile(rf'(?i)("[^"\\]{{0,40}}?(?:{_SECRET_WORDS})[^"\\]{{0,40}}"\s*:\s*")((?:[^"\\]|\\.)*)(")'),
     r"\1" + MASK + r"\3"),
    # Form bodies and query strings: `password=`, `user%5Bpassword%5D=`, `access_token=`.
    (re.compile(rf"(?i)(?<!{_KEY_CHARS})({_KEY_CHARS}*(?:{_SECRET_WORDS}){_KEY_CHARS}*=)[^&\s'\"]+"),
     r"\1" + MASK),
    (re.compile(r"(?i)\b(AKIA|ASIA)[0-9A-Z]{16}\b"), MASK + "(aws-key)"),
    (re.compile(r"(?i)(aws_secret_access_key\s*[=:]\s*['\"]?)[A-Za-z0-9/+=]{40}"), r"\1" + MASK),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
     MASK + "(private-key)"),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{10,})"),
     MASK + "(token)"),
]
_SESSION_COOKIE = re.compile(r"(?i)\b((?:set-)?cookie['\"]?:[ \t]*['\"]?)([^\r\n]*)")
_COOKIE_PAIR = re.compile(r"(?i)(^|;\s*)([^=;\s'\"]*(?:sess|sid|token|auth|jwt|remember)[^=;\s'\"]*)"
                          r"=([^;'\"\s]*)")
_SECRET_HEADER_NAMES = set(_SECRET_HEADERS.split("|"))


def _mask_cookie_line(m: re.Match[str]) -> str:
    return m.group(1) + _COOKIE_PAIR.sub(lambda c: f"{c.group(1)}{c.group(2)}={MASK}", m.group(2))


def _spellings(secret: str) -> set[str]:
    """The forms a secret takes on its way into reports: raw, URL-, JSON- and Python-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1], repr(secret.encode())[2:-1]}


class Redactor:
    """Masks known secrets (exact strings, in every encoding) and secret-shaped text (patterns)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first so a secret containing another is masked whole; ignore trivially short values.
        spellings = {form for s in secrets if s and len(s) >= 4 for form in _spellings(s)}
        self.secrets = sorted(spellings, key=len, reverse=True)

    def text(self, value: str) -> str:
        if not value:
            return value
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        for pattern, repl in _PATTERNS:
            value = pattern.sub(repl, value)  # type: ignore[call-overload]
        return _SESSION_COOKIE.sub(_mask_cookie_line, value)

    def proof(self, proof: Proof | None) -> Proof | None:
        """Redact a proof field by field, so code generated from it stays valid."""
        if proof is None:
            return None
        req = proof.request
        headers = {}
        for name, value in req.headers.items():
            if name.lower() in _SECRET_HEADER_NAMES:
                scheme, sep, _ = value.partition(" ")
                value = f"{scheme} {MASK}" if sep and scheme.isalpha() else MASK
            elif name.lower() == "cookie":
                value = _COOKIE_PAIR.sub(lambda c: f"{c.group(1)}{c.group(2)}={MASK}", value)
            headers[name] = self.text(value)
        request = req.model_copy(update={"url": self.text(req.url), "headers": headers,
                                         "body": self.text(req.body) if req.body else req.body})
        conditions = [c.model_copy(update={"value": self.text(c.value)}) for c in proof.conditions]
        return proof.model_copy(update={"request": request, "conditions": conditions})

    def finding(self, f: Finding) -> Finding:
        """Return a copy of `f` with every free-text field (and its proof) redacted."""
        data = f.model_dump(by_alias=True)
        return Finding.model_validate(self._walk(data)).model_copy(update={"proof": self.proof(f.proof)})

    def redact_with_reproduction(self, f: Finding, target: Target) -> Finding:
        """Redact `f`, building its reproduction from the redacted proof (never from the raw one)."""
        from bastion.findings.reproduce import build_reproduction

        proof = self.proof(f.proof)
        safe = f.model_copy(update={"proof": proof})
        return self.finding(safe.model_copy(update={"reproduction": build_reproduction(safe, target)}))

    def _walk(self, obj: object) -> object:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, list):
            return [self._walk(x) for x in obj]
        if isinstance(obj, dict):
            return {k: (v if k in ("fingerprint", "check_id", "threat_id") else self._walk(v))
                    for k, v in obj.items()}
        return obj
