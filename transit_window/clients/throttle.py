"""Throttling of unknown bearer tokens: guessing tokens gets a 429, not unlimited tries; a valid token never does.

Only requests whose token turned out unknown (or revoked) are counted and refused, so a client holding a valid token
is answered whatever its address and whatever others sent from it (several clients behind one NAT or container
proxy share an address). Two sliding windows: one per client address, so one misbehaving client is slowed, and one
for the whole node, so spreading guesses over many addresses (or forged `X-Forwarded-For` values) does not help.
The address is the one the ASGI server reports: a forwarded-client header only counts when it came from one of the
operator's `TW_TRUSTED_PROXIES` (see `transit_window.app`).

In-process and in memory: enough to make online guessing of 256-bit tokens pointless. It does not spare the database:
a token is looked up (one indexed query) before it is known to be unknown, and only then counted. Several API
processes each keep their own windows. Memory is bounded by the global limit: a refused request is not recorded, so
at most `global_limit` failures are held at once, and an address is forgotten when its last failure leaves the
node-wide window.
"""

from __future__ import annotations

import time
from collections import deque

from transit_window.errors import TooManyRequests


class BadTokenThrottle:
    def __init__(self, *, limit: int, window_seconds: float, global_limit: int) -> None:
        self.limit = limit
        self.global_limit = global_limit
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[tuple[float, str]] = deque()  # (when, from which address), oldest first

    def _expire(self, failures: deque[float], now: float) -> None:
        while failures and now - failures[0] > self.window:
            failures.popleft()

    def _expire_all(self, now: float) -> None:
        while self._all and now - self._all[0][0] > self.window:
            _, address = self._all.popleft()
            self._recent(address, now)  # drops the address once none of its failures is left

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.get(address)
        if failures is None:
            return deque()
        self._expire(failures, now)
        if not failures:
            del self._failures[address]
        return failures

    def _retry(self, oldest: float, now: float) -> int:
        return max(1, int(self.window - (now - oldest)) + 1)

    def check(self, address: str) -> None:
        """Refuse (429) an unknown token from an address that sent `limit` of them within the window, or from anywhere
        once the node as a whole received `global_limit` of them."""
        now = time.monotonic()
        failures = self._recent(address, now)
        if len(failures) >= self.limit:
            retry = self._retry(failures[0], now)
            raise TooManyRequests(
                f"too many requests with an unknown or revoked token from this address; retry in {retry} s",
                retry_after=retry,
            )
        self._expire_all(now)
        if len(self._all) >= self.global_limit:
            retry = self._retry(self._all[0][0], now)
            raise TooManyRequests(
                f"too many requests with an unknown or revoked token to this node; retry in {retry} s",
                retry_after=retry,
            )

    def failed(self, address: str) -> None:
        """Count one unknown token from `address` (call after `check` let it through)."""
        now = time.monotonic()
        self._recent(address, now)
        self._failures.setdefault(address, deque()).append(now)
        self._all.append((now, address))

    def refuse_unknown(self, address: str) -> None:
        """An unknown token from `address`: 429 when a window is full, else counted (the caller answers 401)."""
        self.check(address)
        self.failed(address)
