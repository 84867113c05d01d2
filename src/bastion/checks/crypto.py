"""Cryptographic misuse seen from inside the process: nonce reuse, ECB, static IVs, small RSA keys, fast
password hashes and `random` used for secrets.

The crypto sensors (bastion/sensors/crypto.py) watch every call the app's own code makes while the
scan runs; these checks make the app work once more (the shared exercise pass: sign-up, create, save,
each encrypting request twice) and report what the sensors saw, at the app's file:line. Nothing shows
in a response, so every finding here is blind (sensor-only). Without sensors (URL targets) they do
nothing and say so in the coverage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from bastion.checks.registry import check
from bastion.engine.context import CheckContext
from bastion.findings.model import Finding
from bastion.sensors import crypto as sensed
from bastion.sensors.events import SensorEvent
from bastion.sensors.exercise import NO_SENSORS, exercise, sensor_finding, stable_order

# Cipher-misuse kinds: (title, CWE, severity).
_CIPHER_KINDS = {
    sensed.NONCE_REUSE: ("AEAD nonce reused with the same key", 323, "high"),
    sensed.STATIC_IV: ("Constant IV reused with the same key", 329, "medium"),
    sensed.ECB_MODE: ("Block cipher used in ECB mode", 327, "medium"),
    sensed.SMALL_RSA: ("RSA key shorter than 2048 bits generated", 326, "medium"),
}


async def sensed_events(ctx: CheckContext, kinds: set[str]) -> list[SensorEvent]:
    """Events of `kinds` after the exercise pass, one per call site (sorted), each a stable pick.

    A site's event names the route whose request got there: the pass's first one when the pass reached
    the site, so two runs with one seed report the same route whatever other checks' traffic did first.
    """
    if ctx.sensors is None:
        ctx.skip(NO_SENSORS)
        return []
    run = await exercise(ctx)
    by_site: dict[tuple[str, str, int], SensorEvent] = {}
    for e in stable_order(run, [e for e in list(ctx.sensors.events) if e.kind in kinds and e.file]):
        by_site.setdefault((e.kind, e.file or "", e.line or 0), e)
    return [by_site[k] for k in sorted(by_site)]


@check(id="crypto.cipher-misuse", threat="crypto.cipher-misuse", scope="target")
async def cipher_misuse(ctx: CheckContext) -> AsyncIterator[Finding]:
    """AEAD nonce reuse, ECB, a constant IV with one key, RSA keys under 2048 bits: one finding per call site."""
    for event in await sensed_events(ctx, set(_CIPHER_KINDS)):
        title, cwe, severity = _CIPHER_KINDS[event.kind]
        yield sensor_finding(ctx, event, title, cwe=cwe, severity=severity)


@check(id="crypto.weak-password-hash", threat="crypto.weak-password-hash", scope="target")
async def weak_password_hash(ctx: CheckContext) -> AsyncIterator[Finding]:
    """MD5/SHA-1 over a password, or one unsalted SHA-2 round: one finding per call site."""
    for event in await sensed_events(ctx, {sensed.PASSWORD_HASH}):
        yield sensor_finding(ctx, event, "Password hashed with a fast hash")


@check(id="crypto.insecure-random", threat="crypto.insecure-random", scope="target")
async def insecure_random(ctx: CheckContext) -> AsyncIterator[Finding]:
    """`random` output stored in, or returned as, a token/secret/reset/OTP value: one finding per call site."""
    for event in await sensed_events(ctx, {sensed.WEAK_RANDOM}):
        yield sensor_finding(ctx, event, "Secret value built with the random module")
