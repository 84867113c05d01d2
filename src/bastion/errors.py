"""Errors a user can cause. Each names the file, key or URL at fault; the CLI maps them to exit 2."""

from __future__ import annotations


class BastionError(Exception):
    """Base for user-facing errors: printed as one line, exit code 2."""

    exit_code = 2


class ConfigError(BastionError):
    """A threat-model file (or another input file) is invalid."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.file, self.line, self.key, self.reason = file, line, key, message
        where = file or "<config>"
        if line is not None:
            where += f":{line}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")


class InputFileError(ConfigError):
    """An OpenAPI document, SARIF file or other input document is invalid or hostile."""


class TargetError(BastionError):
    """The target cannot be reached or loaded (bad URL, import error, not a WSGI/ASGI app)."""


class ScopeError(BastionError):
    """A request would leave the allowlisted scope."""


class BudgetExhausted(Exception):
    """The run's request or time budget is spent; checks stop, the scan reports what it has."""
