"""The handler of `tracking.alert`: a route country's alert kept here, with its timeline event (once); an alert
that outran its movement's record is kept with the movement's early steps and handed back when the record comes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from transit_window import clock
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.declarations import interface as declarations
from transit_window.declarations.interface import Movement
from transit_window.protocol.registry import MessageTypes, Rejection
from transit_window.tracking import events
from transit_window.tracking.alerts import (
    event_kind,
)
from transit_window.tracking.messages import AlertBody
from transit_window.tracking.models import TrackingAlert

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.envelope import VerifiedEnvelope
    from transit_window.protocol.node import Node

MESSAGES = MessageTypes()  # registered by transit_window.catalogue


@MESSAGES.message_type(
    "tracking.alert",
    body=AlertBody,
    summary="An alert on a movement (route deviation, long stop, opened seal, overdue "
    "crossing, arrival with border crossings unrecorded), shared with the route.",
)
async def on_alert(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, AlertBody)
    sender = envelope.payload.iss
    movement = await session.get(Movement, body.mrn)
    if movement is None:
        if body.mrn[2:4] == node.id:
            raise Rejection("90", f"no movement {body.mrn} at {node.id}")
        # The alert outran the movement's record (batches travel in parallel): keep it like an early step, to be
        # applied when the record comes, instead of refusing it for good.
        if await declarations.park(
            session,
            node,
            mrn=body.mrn,
            source="message",
            message_type="tracking.alert",
            body=body.model_dump(mode="json"),
            signed_by=sender,
            envelope_id=envelope.payload.id,
        ):
            return
        movement = await session.get(Movement, body.mrn)  # the record came while we looked
        assert movement is not None
    await apply_alert(session, movement, body, sender=sender, envelope_id=envelope.payload.id)


async def apply_alert(
    session: AsyncSession, movement: Movement, body: AlertBody, *, sender: str, envelope_id: str | None
) -> None:
    """Keep a route country's alert on a movement this node holds, with its timeline event (once)."""
    if sender not in movement.countries:
        raise Rejection("15", f"{sender} is not on the route of {body.mrn}")
    result = await session.execute(
        dialect_of(session)
        .insert_ignore(table_of(TrackingAlert), index_elements=["id"])
        .values(
            id=body.id,
            mrn=body.mrn,
            rule=body.rule,
            status="open",
            raised_by=sender,
            raised_at=body.at,
            recorded_at=clock.utcnow(),
            office=body.office,
            lat=body.lat,
            lon=body.lon,
            details=body.details,
            event_id=body.id,
            envelope_id=envelope_id,
            open_key=None,  # the one-open-alert guard is for alerts this node raises
            device_id=body.device_id,
            client_id=body.client_id,
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return
    await events.record_event(
        session,
        mrn=body.mrn,
        kind=event_kind(body.rule),
        office=body.office,
        country=sender,
        at=body.at,
        signed_by=sender,
        envelope_id=envelope_id,
        record=movement.record,
        details={"rule": body.rule, "alert_id": body.id, **body.details},
        lat=body.lat,
        lon=body.lon,
        event_id=body.id,  # the alert's event has the alert's id on every node
    )
