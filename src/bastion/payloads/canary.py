"""Canary tokens: unique per probe, deterministic per seed, easy to spot in any output."""

from __future__ import annotations

import hashlib
import random


def seeded_rng(seed: int, *parts: str) -> random.Random:
    """A Random seeded from the run seed and a stable key (check id, unit), independent of order."""
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class CanaryFactory:
    """Makes tokens like `bst7f3a9c21e4` (lower-case alphanumerics: survive most filters and case folding)."""

    ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"

    def __init__(self, rng: random.Random, prefix: str = "bst") -> None:
        self._rng = rng
        self.prefix = prefix

    def new(self, length: int = 10) -> str:
        return self.prefix + "".join(self._rng.choice(self.ALPHABET) for _ in range(length))

    def number(self, low: int = 1000, high: int = 9999) -> int:
        return self._rng.randint(low, high)
