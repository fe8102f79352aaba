"""Throttling of repeated bad bearer tokens, per client address: guessing tokens gets a 429, not unlimited tries.

In-process and in memory (a sliding window per address): enough to make online guessing of 256-bit tokens pointless
and to keep a misconfigured client from hammering the database. Several API processes each keep their own window.
"""

from __future__ import annotations

import time
from collections import deque

from transit_window.errors import TooManyRequests


class BadTokenThrottle:
    def __init__(self, *, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and now - failures[0] > self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return deque()
        return failures

    def check(self, address: str) -> None:
        """Refuse (429) an address that sent `limit` bad tokens within the window."""
        now = time.monotonic()
        failures = self._recent(address, now)
        if len(failures) >= self.limit:
            retry = max(1, int(self.window - (now - failures[0])) + 1)
            raise TooManyRequests(
                f"too many requests with an unknown or revoked token from this address; retry in {retry} s",
                retry_after=retry,
            )

    def failed(self, address: str) -> None:
        now = time.monotonic()
        self._recent(address, now)
        self._failures.setdefault(address, deque()).append(now)
        if len(self._failures) > 100_000:  # bound the memory an address scan could take
            self._failures.pop(next(iter(self._failures)))
