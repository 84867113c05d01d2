"""`bastion tls URL | --config FILE`: the TLS checks (and HSTS) on their own, without a full scan."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bastion.errors import BastionError, TargetError

if TYPE_CHECKING:
    from bastion.engine.runner import ScanResult

TLS_CHECKS = ["tls", "headers.hsts-missing"]


def _config(url: str | None, config: str | None, ca_file: str | None, pins: tuple[str, ...],
            server_name: str | None) -> Any:
    from bastion.model import BastionConfig, load_config

    if config is not None:
        if url or ca_file or pins or server_name:
            raise BastionError("give either a URL (with --ca-file/--pin/--server-name) or --config, not both")
        return load_config(config)
    if url is None:
        raise BastionError("give the https:// URL of a service you own, or --config bastion.yaml")
    tls = {k: v for k, v in {"ca_file": str(Path(ca_file).resolve()) if ca_file else None, "pin": list(pins),
                             "server_name": server_name}.items() if v}
    if not url.startswith("https://"):
        raise BastionError(f"{url}: TLS checks need an https:// URL")
    return BastionConfig.model_validate({"target": {"url": url}, **({"tls": tls} if tls else {})})


@click.command("tls")
@click.argument("url", required=False)
@click.option("--config", type=click.Path(exists=True, dir_okay=False), help="Threat-model file (its tls: section).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="PEM trust anchors of a private CA.")
@click.option("--pin", "pins", multiple=True, help="Expected SPKI pin 'sha256/BASE64' (repeatable).")
@click.option("--server-name", help="SNI / host name the certificate must match (default: the URL's host).")
@click.option("--format", "fmt", type=click.Choice(["console", "json"]), default="console", show_default=True)
@click.option("--fail-on", default="medium", show_default=True, help="Exit 1 at or above this severity ('none').")
def tls_command(url: str | None, config: str | None, ca_file: str | None, pins: tuple[str, ...],
                server_name: str | None, fmt: str, fail_on: str) -> None:
    """Protocol versions, cipher suites, certificate and pinning of a TLS endpoint, plus HSTS."""
    from bastion.report.gate import exit_code
    from bastion.report.json_report import findings_json
    from bastion.session import scan_from_options

    cfg = _config(url, config, ca_file, pins, server_name)
    try:
        result = scan_from_options(config=cfg, checks=TLS_CHECKS, crawl=False)
    except TargetError as exc:
        # The HTTP client trusts only the system store: behind a private CA (or a broken certificate) HSTS
        # cannot be fetched, but the TLS checks make their own connections.
        click.echo(f"note: {exc}; HSTS not tested", err=True)
        result = _tls_only(cfg)
    if fmt == "json":
        click.echo(findings_json(result, include_timings=False))
    else:
        _print(result)
    raise SystemExit(exit_code(result, fail_on))


def _tls_only(cfg: Any) -> ScanResult:
    from bastion.engine.runner import ScanOptions, run_scan
    from bastion.surface.model import Surface
    from bastion.target.target import Target

    target = Target.from_url(cfg.target.url)
    target.scope_hosts = list(cfg.scope.hosts)
    return run_scan(target, Surface(), ScanOptions(checks=["tls"], config=cfg, scope_hosts=list(cfg.scope.hosts)))


def _print(result: ScanResult) -> None:
    findings = result.findings
    skipped = [f"{c.check_id}: {u.skipped}" for c in result.checks for u in c.unit_records if u.skipped]
    for f in findings:
        click.echo(f"{f.severity.value.upper():8} {f.check_id:26} {f.title}")
        for ev in f.evidence:
            click.echo(f"           {ev.summary}")
            for line in ev.content.splitlines()[:12]:
                click.echo(f"             {line}")
    for line in skipped:
        click.echo(f"not tested  {line}")
    if not findings:
        click.echo("no TLS findings")
