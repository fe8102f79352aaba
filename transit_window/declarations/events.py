"""The facts declarations publishes on the bus (`transit_window.bus`), for the features built on a movement.

Tracking subscribes (the consignment's parties, its tracking code, the EPCIS event of each step, the checks an arrival
starts) and, through tracking's own event, webhooks; declarations imports neither. Each event is published in the
transaction that wrote the fact, after it was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transit_window.declarations.models import Movement
    from transit_window.protocol.node import Node


@dataclass(frozen=True, slots=True)
class MovementHeld:
    """This node holds the movement's record for the first time: declared here, or its anticipated record received."""

    node: Node
    movement: Movement


@dataclass(frozen=True, slots=True)
class StepRecorded:
    """A step of the movement's journey was recorded here for the first time (a repeat publishes nothing).

    `here` is True when this node's own customs recorded it (the release, a crossing at one of its posts, the arrival
    at its office of destination), False when it came from another country."""

    node: Node
    movement: Movement
    kind: str
    office: str
    country: str
    at: datetime
    signed_by: str
    envelope_id: str | None
    details: dict[str, Any]
    here: bool
