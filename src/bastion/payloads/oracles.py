"""Oracles that turn responses into proof: markers hidden behind an encoding, and provoked delays.

Shared by the injection checks (a check never imports another check).
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import markupsafe

from bastion.findings.evidence import exchange_evidence, note
from bastion.findings.model import Evidence
from bastion.target.exchange import Exchange


def encodings(text: str) -> list[str]:
    """`text` as it may appear in a body: raw, HTML-escaped (three styles), JSON-escaped (two styles).

    Always the same number of forms in the same order, so two texts' forms can be zipped.
    """
    return [text, str(markupsafe.escape(text)), html.escape(text), html.escape(text, quote=False),
            json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]]


def body_views(text: str) -> list[str]:
    """The body as sent plus its HTML-unescaped and JSON-unescaped readings (error text hides there)."""
    views = [text, html.unescape(text), text.replace('\\"', '"').replace("\\'", "'").replace("\\\\", "\\")]
    return list(dict.fromkeys(views))


def find_marker(pattern: re.Pattern[str], text: str) -> str | None:
    """A fragment of the raw body proving `pattern` matched in some reading of it, or None.

    The fragment is literal text of the body, so `body_contains(fragment)` holds on the same response.
    """
    for view in body_views(text):
        m = pattern.search(view)
        if m is None:
            continue
        for form in encodings(m.group(0)):
            if form and form in text:
                return form
    return None


def timing_lock(memo: dict[str, Any]) -> asyncio.Lock:
    """One lock per check run: delay probes of different units must not overlap and slow each other."""
    lock = memo.get("bastion.timing-lock")
    if lock is None:
        lock = memo["bastion.timing-lock"] = asyncio.Lock()
    return lock


@dataclass
class DelayProof:
    """Each (seconds, delayed exchange, zero-delay exchange) round that held."""

    rounds: list[tuple[int, Exchange, Exchange]]

    @property
    def slowest(self) -> tuple[int, Exchange]:
        seconds, ex, _ = self.rounds[-1]
        return seconds, ex


def delay_evidence(proof: DelayProof, summary: str, round_text: Callable[[int], str],
                   prefix: str = "") -> list[Evidence]:
    """The slowest delayed exchange plus one note over every round that held.

    Texts state thresholds, never measured times: findings must be identical between equal runs.
    """
    _seconds, slow = proof.slowest
    return [*exchange_evidence(slow, summary),
            note("timing", prefix + "; ".join(round_text(n) for n, _, _ in proof.rounds))]


async def prove_delay(send: Callable[[int], Awaitable[Exchange]], delays: tuple[int, ...] = (2, 3),
                      fast_below: float = 1.0) -> DelayProof | None:
    """Prove that the payload controls the response time, once per entry of `delays`.

    Each round sends the n-second payload (must take at least n s) and the same payload with a zero
    delay (must answer within `fast_below` s). Stops at the first round that fails, so an input that
    never sleeps costs one request.
    """
    rounds: list[tuple[int, Exchange, Exchange]] = []
    for seconds in delays:
        slow = await send(seconds)
        if not slow.ok or slow.elapsed < seconds:
            return None
        fast = await send(0)
        if not fast.ok or fast.elapsed >= fast_below:
            return None
        rounds.append((seconds, slow, fast))
    return DelayProof(rounds)


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, tie-corrected).

    Rank-based, so one slow outlier (a GC pause, a busy neighbour) cannot decide the outcome.
    """
    import math

    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    rank_a = sum(r for r, (_, group) in zip(ranks, pooled, strict=True) if group == 0)
    u = rank_a - n1 * (n1 + 1) / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(variance)
    return math.erfc(max(z, 0.0) / math.sqrt(2))


def timing_differs(a: list[float], b: list[float], *, alpha: float = 0.01, min_effect: float = 0.02,
                   min_ratio: float = 1.5) -> bool:
    """Whether samples `a` are consistently slower or faster than `b`, judged over many samples.

    Needs a significant rank test *and* a minimum effect: the medians must differ by at least
    `min_effect` seconds and by the factor `min_ratio`, so jitter on a fast endpoint never counts.
    Never decide from one sample: fewer than 8 per side is always "no difference".
    """
    import statistics

    if min(len(a), len(b)) < 8:
        return False
    med_a, med_b = statistics.median(a), statistics.median(b)
    low, high = sorted((med_a, med_b))
    if high - low < min_effect or high < low * min_ratio:
        return False
    return mann_whitney_p(a, b) < alpha
