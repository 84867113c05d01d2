"""Latency outliers: a fuzzed input that is slow every time it is sent while the valid request stays fast.

Statistics, never one sample. The fuzz pass records the elapsed time of every answered example; one
whose time exceeds a robust threshold over those samples (median + K_MAD·MAD, at least MIN_FACTOR ×
the median and at least FLOOR_S) is a suspect. A suspect is then re-sent RETIMES times, each time
followed by the valid request: every re-send must stay above the threshold computed from the valid
request's own samples, and every interleaved valid request below it. A slow machine slows both; a
pause of the process (GC, another test) hits one sample, not six in a row.

Times come only from `Exchange.elapsed`, so tests inject a virtual clock at the client and never
depend on real time.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bastion.target.exchange import Exchange

# Robust outlier rule: median + K_MAD · MAD, and at least MIN_FACTOR × the median and FLOOR_S seconds
# (a 3 ms handler taking 40 ms is noise, not algorithmic complexity).
K_MAD = 6.0
MIN_FACTOR = 10.0
FLOOR_S = 0.5
# Fresh samples of the valid request before re-timing, and how often a suspect is re-sent.
BASELINE_SAMPLES = 3
RETIMES = 3
# At most this many suspects per entry point are re-timed (the slowest first).
MAX_SUSPECTS = 2

T = TypeVar("T")


def median_absolute_deviation(samples: Sequence[float]) -> float:
    """MAD: the median distance from the median (robust to the outliers we look for)."""
    mid = statistics.median(samples)
    return statistics.median(abs(s - mid) for s in samples)


def slow_threshold(samples: Sequence[float]) -> float:
    """Elapsed seconds above which a request is an outlier among `samples` (non-empty)."""
    mid = statistics.median(samples)
    return max(mid + K_MAD * median_absolute_deviation(samples), MIN_FACTOR * mid, FLOOR_S)


def suspects(timings: Sequence[tuple[T, float]]) -> list[tuple[T, float]]:
    """The examples (slowest first, at most MAX_SUSPECTS) whose time is an outlier among all timings."""
    if len(timings) < 2:
        return []
    limit = slow_threshold([t for _, t in timings])
    slow = sorted((item for item in timings if item[1] >= limit), key=lambda item: -item[1])
    return slow[:MAX_SUSPECTS]


@dataclass
class Verdict(Generic[T]):
    """A suspect re-timed against the valid request: slow every time, the valid request fast every time."""

    example: T
    threshold: float
    baseline_s: list[float]
    suspect_s: list[float]
    exchanges: list[Exchange] = field(default_factory=list)  # the suspect's re-sends

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline_s)


async def retime(send: Callable[[T], Awaitable[Exchange]], suspect: T, valid: T,
                 prior: Sequence[float] = ()) -> Verdict[T] | None:
    """Re-send `suspect` RETIMES times interleaved with `valid`; a Verdict if it is slow each time."""
    baseline = list(prior)
    for _ in range(BASELINE_SAMPLES):
        ex = await send(valid)
        if not ex.ok:
            return None
        baseline.append(ex.elapsed)
    limit = slow_threshold(baseline)
    verdict = Verdict(suspect, limit, baseline, [])
    for _ in range(RETIMES):
        slow = await send(suspect)  # a timeout is slow too: its elapsed is the timeout
        fast = await send(valid)
        if slow.elapsed < limit or not fast.ok or fast.elapsed >= limit:
            return None
        verdict.suspect_s.append(slow.elapsed)
        verdict.baseline_s.append(fast.elapsed)
        verdict.exchanges.append(slow)
    return verdict
