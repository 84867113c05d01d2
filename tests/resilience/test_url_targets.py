"""Resilience checks against a service running on 127.0.0.1 (URL target), wired to doubles Bastion started."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.model import BastionConfig
from bastion.resilience import wire_dependencies
from bastion.session import discover
from bastion.target.target import Target
from bastion.testing import findings_of

sys.path.insert(0, str(Path(__file__).parents[1] / "checks"))
from deps_services import SHIPMENTS_DEPS, shipments_service  # noqa: E402 -- a shared third-party service

CHECKS = ["resilience.fail-open", "resilience.no-recovery"]


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app on a free 127.0.0.1 port (werkzeug, threaded), like a service started outside Bastion."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def scan_running(factory: Callable[[], Any], deps: dict[str, Any], *, destructive: bool) -> ScanResult:
    """Start the doubles, start the service with their settings, scan it by URL with the doubles attached."""
    wired = wire_dependencies(BastionConfig.model_validate({"target": {"app": "a:b"},
                                                            "dependencies": deps}).dependencies)
    assert wired is not None
    try:
        app = factory()  # reads the doubles' settings, like a service started with them in its environment
        wired.restore_environment()
        with served(app) as url:
            cfg = BastionConfig.model_validate({"target": {"url": url, "allow_destructive": destructive},
                                                "dependencies": deps})
            target = Target.from_url(url)
            wired.attach(target)
            # A running service's routes come from its OpenAPI document; here, from the app object.
            surface = discover(Target.from_app(app), crawl=False)
            return run_scan(target, surface,
                            ScanOptions(checks=CHECKS, config=cfg, secrets=wired.secrets))
    finally:
        wired.close()


def _skips(result: ScanResult) -> list[str]:
    return [u.skipped or "" for c in result.checks for u in c.unit_records]


def test_url_target_with_allow_destructive_is_faulted_through_the_idp_double() -> None:
    result = scan_running(lambda: shipments_service(fail_open=True, sticky=True), SHIPMENTS_DEPS, destructive=True)
    assert [f.location.path for f in findings_of(result, "resilience.fail-open")] == ["/v1/shipments"]
    assert [f.location.path for f in findings_of(result, "resilience.no-recovery")] == ["/v1/shipments"]


def test_safe_running_service_scans_clean() -> None:
    result = scan_running(lambda: shipments_service(), SHIPMENTS_DEPS, destructive=True)
    assert result.findings == []
    assert not any(_skips(result))


def test_url_target_without_allow_destructive_is_skipped() -> None:
    result = scan_running(lambda: shipments_service(fail_open=True), SHIPMENTS_DEPS, destructive=False)
    assert result.findings == []
    assert all("allow_destructive" in s for s in _skips(result))


def test_in_process_outages_are_skipped_for_url_targets(tmp_path: Path) -> None:
    deps = {"db": {"kind": "sqlite", "path": str(tmp_path / "x.db"), "protects": ["GET /v1/shipments"]},
            **SHIPMENTS_DEPS}
    result = scan_running(lambda: shipments_service(fail_open=True), deps, destructive=True)
    assert [f.location.path for f in findings_of(result, "resilience.fail-open")] == ["/v1/shipments"]
    assert all("db: its outage is injected inside Bastion's process" in s for s in _skips(result))
