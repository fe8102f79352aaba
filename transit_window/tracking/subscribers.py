"""What tracking does when declarations records a fact (subscribed on the bus by `transit_window.catalogue`).

- a node holds a movement: index the consignment's parties (who may follow it);
- a step is recorded: its EPCIS event, with the same id on every node (`step_event_id`); at the departure's release
  the consignment's public tracking code; at an arrival recorded here, the status request for the crossings this
  node lacks (the `unrecorded-crossings` check raises the alert later if they stay missing);
- a kept `tracking.alert` handed back when its movement's record came (`declarations.ports.ParkedMessage`).

All of it runs in the transaction that recorded the fact, as when declarations called these functions itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transit_window.tracking import access, codes, crossing_checks, events, inbound
from transit_window.tracking.messages import AlertBody

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.declarations.events import MovementHeld, StepRecorded
    from transit_window.declarations.interface import Movement
    from transit_window.protocol.node import Node


async def on_movement_held(session: AsyncSession, event: MovementHeld) -> None:
    await access.register_parties(session, event.movement)


async def on_step_recorded(session: AsyncSession, event: StepRecorded) -> None:
    movement = event.movement
    await events.record_event(
        session,
        mrn=movement.mrn,
        kind=event.kind,
        office=event.office,
        country=event.country,
        at=event.at,
        signed_by=event.signed_by,
        envelope_id=event.envelope_id,
        record=movement.record,
        details=event.details,
        event_id=events.step_event_id(movement.mrn, event.kind, event.office),
    )
    if not event.here:
        return
    if event.kind == "released":
        await codes.issue(session, mrn=movement.mrn)
    elif event.kind == "arrived":
        await crossing_checks.ask_for_missing_crossings(session, event.node, movement)


async def on_parked_alert(
    session: AsyncSession,
    node: Node,
    movement: Movement,
    *,
    body: dict[str, Any],
    sender: str,
    envelope_id: str | None,
) -> None:
    alert = AlertBody.model_validate(body)
    await inbound.apply_alert(session, movement, alert, sender=sender, envelope_id=envelope_id)
