"""What declarations asks of the features it does not import, as ports the composition fills.

- `ReleasePapers`: which papers a movement lacks for release. Documents answers for certificates, permits for road
  permits (`documents/release_check.py`, `permits/release_check.py`); `release_gate.py` asks each in turn and refuses
  the release with one list of everything missing.
- `TrackingCodes`: the departure's answer to a declaration shows the consignment's public tracking code, which
  tracking keeps.
- `ParkedMessage`: a message of another feature (tracking's `tracking.alert`) that outran its movement's record is
  kept with the movement's early steps (`service.park`) and handed back to its feature when the record comes.

`PORTS` is filled once per process by `transit_window.catalogue` (the app factory and the worker import it), like the
message registry and the event bus; asking a port nobody provided is a `RuntimeError` naming it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.declarations.models import Movement
    from transit_window.protocol.node import Node


@dataclass(frozen=True, slots=True)
class Missing:
    """One paper the release lacks, as the 409 problem's `missing` lists it."""

    kind: str  # certificate | permit
    type: str
    country: str
    detail: str
    extra: dict[str, str] = field(default_factory=dict)  # for permits: needed_at, next_year, next_year_opens

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "type": self.type, "country": self.country, "detail": self.detail, **self.extra}


@dataclass(frozen=True, slots=True)
class MovementPapers:
    """What a paper check sees of the movement: the declaration and the route (no ORM row crosses the port)."""

    mrn: str
    record: dict[str, Any]
    offices: list[str]
    countries: list[str]
    destination_office: str


@dataclass(slots=True)
class PapersVerdict:
    """A check's answer: what is missing, and what to do once the release goes ahead (certificates are shared with
    the route then); `on_release` runs only when no check found anything missing."""

    missing: list[Missing]
    on_release: Callable[[], Awaitable[None]] | None = None


class ReleasePapers(Protocol):
    async def check(self, session: AsyncSession, node: Node, movement: MovementPapers) -> PapersVerdict: ...


class TrackingCodes(Protocol):
    async def active_codes(self, session: AsyncSession, *, mrns: list[str]) -> dict[str, str]: ...


class ParkedMessage(Protocol):
    async def __call__(
        self,
        session: AsyncSession,
        node: Node,
        movement: Movement,
        *,
        body: dict[str, Any],
        sender: str,
        envelope_id: str | None,
    ) -> None: ...


@dataclass(slots=True)
class Ports:
    papers: list[ReleasePapers] = field(default_factory=list)
    tracking_codes: TrackingCodes | None = None
    parked: dict[str, ParkedMessage] = field(default_factory=dict)
    wired: bool = False  # set by the composition once every port is provided

    def release_papers(self) -> list[ReleasePapers]:
        """Refuses to answer before the wiring: an empty list would release every movement unchecked."""
        if not self.wired:
            raise RuntimeError("the release checks were never wired: import transit_window.catalogue in this process")
        return list(self.papers)

    def codes(self) -> TrackingCodes:
        if self.tracking_codes is None:
            raise RuntimeError("no TrackingCodes port provided: import transit_window.catalogue in this process")
        return self.tracking_codes

    def parked_handler(self, message_type: str) -> ParkedMessage:
        try:
            return self.parked[message_type]
        except KeyError:
            raise RuntimeError(
                f"no feature takes back a kept {message_type}: wired in transit_window.catalogue"
            ) from None


PORTS = Ports()
