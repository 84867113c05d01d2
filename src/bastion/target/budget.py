"""Budgets a run can never exceed: requests, time, bytes per response, concurrency."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bastion.errors import BudgetExhausted


@dataclass(frozen=True)
class Limits:
    max_requests: int = 100_000
    request_timeout: float = 10.0  # whole request, slow drips included
    total_time: float = 900.0
    max_response_bytes: int = 2 * 1024 * 1024
    concurrency: int = 8
    max_redirects: int = 10


class Budget:
    """Counts requests and watches the clock; `spend()` raises BudgetExhausted when either runs out."""

    def __init__(self, limits: Limits, clock=time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self.started = clock()
        self.requests = 0
        self.exhausted: str | None = None

    def spend(self) -> None:
        if self.requests >= self.limits.max_requests:
            self.exhausted = f"request budget of {self.limits.max_requests} spent"
        elif self.elapsed() >= self.limits.total_time:
            self.exhausted = f"time budget of {self.limits.total_time:g}s spent"
        if self.exhausted:
            raise BudgetExhausted(self.exhausted)
        self.requests += 1

    def elapsed(self) -> float:
        return self._clock() - self.started

    def remaining_time(self) -> float:
        return max(0.0, self.limits.total_time - self.elapsed())
