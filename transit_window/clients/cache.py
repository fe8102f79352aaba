"""Authenticated clients remembered for a few seconds, so a request says who sent it without a database round trip.

Keyed by the token's SHA-256 (the token itself is never kept). Only clients found and unrevoked are remembered: an
unknown token always goes to the database, and to the bad-token throttle. On PostgreSQL a revocation is a `NOTIFY
tw_clients` at its commit, and every serving process of the node forgets the client when it hears it (the listener
of `tasks.listen`; after a reconnect it forgets everyone, having perhaps missed one). A SQLite node whose client the
CLI revoked while it ran stops accepting the token within `TW_AUTH_CACHE_SECONDS`.

Hand-written: a dict with an expiry per entry is all it needs; cachetools' TTLCache would add a dependency for the
same dozen lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

CHANNEL = "tw_clients"


@dataclass(frozen=True, slots=True)
class KnownClient:
    id: str
    name: str
    role: str
    party_id: str | None


class ClientCache:
    def __init__(
        self, *, seconds: float, capacity: int = 10_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.capacity = capacity
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, KnownClient]] = {}

    def get(self, token_hash: str) -> KnownClient | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        expires, client = entry
        if self._monotonic() >= expires:
            del self._entries[token_hash]
            return None
        return client

    def put(self, token_hash: str, client: KnownClient) -> None:
        if self.seconds <= 0:
            return
        if len(self._entries) >= self.capacity:
            self._entries.clear()  # rare (10,000 live clients in a few seconds): start over rather than track age
        self._entries[token_hash] = (self._monotonic() + self.seconds, client)

    def forget(self, client_id: str | None = None) -> None:
        """Forget one client (all its tokens), or everyone (`None`: a notification we could not read)."""
        if client_id is None:
            self._entries.clear()
            return
        for token_hash in [key for key, (_, client) in self._entries.items() if client.id == client_id]:
            del self._entries[token_hash]
