"""A recorded request/response pair, with the events that shaped it (cut body, timeout, loop)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SentRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


@dataclass
class Exchange:
    request: SentRequest
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    elapsed: float = 0.0
    # Events: "truncated" (body cut at the size cap), "timeout", "redirect-loop", "too-many-redirects",
    # "out-of-scope-redirect", "connect-error", "decode-error". Recorded, never raised.
    events: list[str] = field(default_factory=list)
    error: str | None = None
    # Redirect hops followed before this response (each one an Exchange), oldest first.
    history: list[Exchange] = field(default_factory=list)
    _text: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """A response arrived (any status)."""
        return self.error is None and self.status > 0

    @property
    def text(self) -> str:
        """Body decoded with the declared charset (default UTF-8); invalid bytes become U+FFFD."""
        if self._text is None:
            charset = "utf-8"
            ctype = self.header("content-type") or ""
            for part in ctype.split(";")[1:]:
                k, _, v = part.strip().partition("=")
                if k.lower() == "charset" and v:
                    charset = v.strip("\"' ")
            try:
                self._text = self.body.decode(charset, errors="replace")
            except LookupError:
                self._text = self.body.decode("utf-8", errors="replace")
        return self._text

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def headers_map(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in self.headers:
            out.setdefault(k.lower(), []).append(v)
        return out

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @property
    def is_html(self) -> bool:
        return self.content_type in ("text/html", "application/xhtml+xml")
