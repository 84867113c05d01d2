"""Secrets and personal data in the application log, seen by the in-process log sensor.

The check logs every configured role in once more (a fresh, separate login: the app's login code
logs what it logs), relies on the shared exercise pass (sign-up, failed logins with a canary
password, every form once), then reads every record the app's own code emitted during the scan.
A record holding one of the scan's credentials or canary passwords, a `data_classes` secret field
with a value, a Luhn-valid card number or an e-mail address is a finding at the logging line.
Findings are blind (no response shows them); evidence is masked (never the value itself).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Iterable

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.model import Finding
from bastion.findings.redact import Redactor
from bastion.identity.jwt import JWT_IN_TEXT
from bastion.identity.probe import fresh_login
from bastion.sensors.events import SensorEvent
from bastion.sensors.exercise import NO_SENSORS, exercise, sensor_finding, stable_order
from bastion.sensors.logs import LogLeak, classify_log

_SECRET_KEY = re.compile(r"passw|pwd|secret|token|api_?key|otp|pin", re.IGNORECASE)
# data_classes names whose fields are secrets / personal data.
_SECRET_CLASSES = ("secret", "secrets", "credential", "credentials")
_PII_CLASSES = ("pii", "personal", "personal_data")


def _configured_secrets(ctx: CheckContext) -> set[str]:
    """Credential values of the configured roles (login fields named like secrets) and their sessions."""
    values: set[str] = set()
    for name, config in ctx.role_configs.items():
        login = getattr(config, "login", None)
        if login is not None:
            for fields in (login.form or {}, login.json_body or {}, login.params or {}):
                values |= {str(v) for k, v in fields.items() if _SECRET_KEY.search(str(k)) and v}
        if name in ctx.roles:
            values |= ctx.roles[name].secret_values()
    return {v for v in values if len(v) >= 4}


def _fields(ctx: CheckContext, classes: Iterable[str]) -> list[str]:
    return [f for c in classes for f in ctx.data_classes.get(c, [])]


async def _log_in_again(ctx: CheckContext) -> None:
    for role in ctx.roles:
        await fresh_login(ctx, role)


@check(id="privacy.secrets-in-logs", threat="privacy.secrets-in-logs", scope="target")
async def secrets_in_logs(ctx: CheckContext) -> AsyncIterator[Finding]:
    """Each logging line (file:line) that wrote a secret, and each that wrote personal data: one finding each."""
    if ctx.sensors is None:
        ctx.skip(NO_SENSORS)
        return
    run = await exercise(ctx)
    await _log_in_again(ctx)
    secrets = _configured_secrets(ctx) | {run.identity.password}
    secret_fields, pii_fields = _fields(ctx, _SECRET_CLASSES), _fields(ctx, _PII_CLASSES)
    by_site: dict[tuple[str, int, str], tuple[SensorEvent, list[LogLeak]]] = {}
    # A stable order: the record kept per site (its route, the masked text shown) must not follow timing.
    for event in stable_order(run, ctx.sensors.of_kind("log")):
        if not event.file:
            continue
        for leak in classify_log(event.raw_detail, secrets=secrets, secret_fields=secret_fields,
                                 pii_fields=pii_fields):
            if JWT_IN_TEXT.search(leak.value):
                continue  # tokens are jwt.token-in-logs' findings: one record, one finding
            site = (event.file, event.line or 0, leak.kind)
            by_site.setdefault(site, (event, []))[1].append(leak)
    for site in sorted(by_site):
        event, leaks = by_site[site]
        yield _finding(ctx, event, site[2], leaks, secrets)


def _finding(ctx: CheckContext, event: SensorEvent, kind: str, leaks: list[LogLeak], secrets: set[str]) -> Finding:
    what = sorted({leak.what for leak in leaks})
    # The record is shown masked: the leaked values, the scan's credentials and secret-shaped text.
    masked = Redactor([*secrets, *(leak.value for leak in leaks)]).text(event.raw_detail)
    shown = SensorEvent(event.kind, masked, event.file, event.line, event.probe)
    title = ("Secret written to the log" if kind == "secret" else "Personal data written to the log") + \
        f" ({', '.join(what)})"
    f = sensor_finding(ctx, shown, title, severity=None if kind == "secret" else "medium")
    # Secret and personal-data findings at one logging line are two findings.
    fingerprint = hashlib.sha256(f"{f.fingerprint}\x1f{kind}".encode()).hexdigest()[:24]
    return f.model_copy(update={"fingerprint": fingerprint})
