"""An in-process app's log lines stay off Bastion's console during a scan (the log sensor still sees them)."""

from __future__ import annotations

import io
import logging
import sys
import threading
from typing import Any

import pytest
from click.testing import CliRunner

import bastion.engine.runner as runner
from bastion.cli import cli
from bastion.target.app_console import muted_app_console, writes_to_terminal

# The demo's job worker logs this warning (no handler configured: logging.lastResort prints it to stderr).
APP_LINE = "dropping undecodable job"


def test_app_records_skip_terminal_handlers_only_inside_the_block(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("thirdparty.orders")
    kept = io.StringIO()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr), logging.StreamHandler(kept)]
    for handler in handlers:
        log.addHandler(handler)
    original = logging.StreamHandler.emit
    try:
        with muted_app_console():
            log.warning("inside the scan")
            # A thread that does not carry the scan's context (e.g. the test runner's own) is not muted.
            other = threading.Thread(target=log.warning, args=("another thread",))
            other.start()
            other.join()
        log.warning("after the scan")
    finally:
        for handler in handlers:
            log.removeHandler(handler)
    err = capsys.readouterr().err
    assert "inside the scan" not in err
    assert "another thread" in err and "after the scan" in err
    assert kept.getvalue().splitlines() == ["inside the scan", "another thread", "after the scan"]
    assert logging.StreamHandler.emit is original  # restored


def test_the_last_resort_handler_is_muted_too(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("thirdparty.unconfigured")
    log.propagate = False  # no handler anywhere: logging.lastResort writes WARNING+ to stderr
    try:
        with muted_app_console():
            log.warning("inside the scan")
        log.warning("after the scan")
    finally:
        log.propagate = True
    err = capsys.readouterr().err
    assert "inside the scan" not in err and "after the scan" in err


def test_disabled_or_nested_blocks_restore_the_handler_class() -> None:
    original = logging.StreamHandler.emit
    with muted_app_console(enabled=False):
        assert logging.StreamHandler.emit is original
    with muted_app_console(), muted_app_console():
        assert logging.StreamHandler.emit is not original
    assert logging.StreamHandler.emit is original


def test_terminal_streams_are_recognised_through_proxies() -> None:
    class Proxy:
        def _get_current_object(self) -> Any:
            return sys.stderr

    assert writes_to_terminal(logging.StreamHandler(Proxy()))  # type: ignore[call-overload]
    assert writes_to_terminal(logging.StreamHandler())  # defaults to sys.stderr
    assert not writes_to_terminal(logging.StreamHandler(io.StringIO()))


def _scan_output(monkeypatch: pytest.MonkeyPatch, *, muted: bool) -> str:
    """The console of `bastion scan --demo` as a user sees it (stdout and stderr)."""
    # As in a real run, the root logger has no handler: pytest's own capture handlers would hide the line.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    if not muted:
        monkeypatch.setattr(runner, "muted_app_console_async", lambda enabled=True: _null_async())
    result = CliRunner().invoke(cli, ["scan", "--demo", "--no-history", "--checks", "queues.poison-lost",
                                      "--format", "console", "--fail-on", "none"])
    assert result.exit_code == 0, result.output
    return result.output


class _null_async:  # noqa: N801 - stands in for a context-manager function
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def test_demo_scan_console_has_no_app_log_line(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _scan_output(monkeypatch, muted=True)
    assert "queues.poison-lost" in out  # Bastion's own progress and summary are there
    assert APP_LINE not in out


def test_without_the_muting_the_app_line_would_reach_the_console(monkeypatch: pytest.MonkeyPatch) -> None:
    # The contrast that keeps the test above meaningful (the demo still logs the line during this scan).
    assert APP_LINE in _scan_output(monkeypatch, muted=False)
