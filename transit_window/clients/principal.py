"""Who is calling: the authenticated client a request acts as. Here, below the features, so their services can take
it as an argument without knowing HTTP (`api.deps.require` builds one from the bearer token)."""

from __future__ import annotations

from dataclasses import dataclass

from transit_window.clients.service import Role


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    name: str
    role: Role
    party_id: str | None
    country: str
