"""URL mode: the same checks fire against the demo served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion.cli import cli
from bastion.demo.serve import start_background_server

# HSTS only applies to https targets; the served demo speaks plain http.
HTTPS_ONLY = {"headers.hsts-missing"}
# Checks that need the demo's built-in roles (--demo logs in alice, bob and admin; --url has none).
NEEDS_ROLES = {"authz.bfla", "authz.bola", "authz.policy-drift"}


@pytest.fixture(scope="module")
def served_demo() -> Iterator[str]:
    base_url, stop = start_background_server("all", "flask")
    try:
        yield base_url
    finally:
        stop()


def _scan(args: list[str], out: Path) -> tuple[int, set[str]]:
    result = CliRunner().invoke(cli, ["scan", *args, "-q", "--seed", "3", "--format", "json", "--out", str(out)],
                                catch_exceptions=False)
    doc = json.loads((out / "findings.json").read_text())
    return result.exit_code, {f["check_id"] for f in doc["findings"]}


def test_url_mode_finds_the_same_checks_as_in_process(served_demo: str, tmp_path: Path) -> None:
    assert served_demo.startswith("http://127.0.0.1:")
    code_url, url_ids = _scan(["--url", served_demo], tmp_path / "url")
    code_app, app_ids = _scan(["--demo"], tmp_path / "app")
    assert code_url == code_app == 1
    expected = app_ids - HTTPS_ONLY - NEEDS_ROLES
    assert expected <= url_ids, f"missing in URL mode: {sorted(expected - url_ids)}"
