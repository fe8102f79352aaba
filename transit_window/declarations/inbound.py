"""Handlers of the `transit.*` messages: how a node applies what other countries tell it about a movement.

A refusal here is a signed `rejected` receipt (`Rejection`), never an exception the sender would retry:
90 unknown MRN, 92 out of sequence (e.g. a record request before release), 14 rule violation, 15 not allowed.

A cancellation and a route country's crossing or arrival can cross on the wire: the departure cancels before it
hears that the goods were seen, the border records them before it hears of the cancellation. Both are facts and every
node records both; the departure's cancellation decides the status (as an NCTS invalidation does: a cancelled MRN no
longer carries the goods, which the border then holds), so every node of the route ends `cancelled` with the same
journey. Refusing either fact instead left the departure `cancelled` and the route `arrived` for good.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import delete, select

from transit_window import bus, clock
from transit_window.declarations import journey, service
from transit_window.declarations.events import MovementHeld
from transit_window.declarations.messages import (
    AnticipatedBody,
    ArrivedBody,
    CancelledBody,
    ClosedBody,
    ControlResultsBody,
    CrossedBody,
    RecordRequestBody,
    StatusRequestBody,
    StatusResponseBody,
    StepRecord,
)
from transit_window.declarations.models import Movement, PendingStep
from transit_window.declarations.ports import PORTS
from transit_window.declarations.schemas import CrossingIn
from transit_window.errors import DomainError
from transit_window.protocol import outbox
from transit_window.protocol.registry import MessageTypes, Rejection

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.envelope import VerifiedEnvelope
    from transit_window.protocol.node import Node

logger = logging.getLogger(__name__)
MESSAGES = MessageTypes()  # registered by transit_window.catalogue

STEP_BODIES: dict[str, type[BaseModel]] = {
    "transit.crossed": CrossedBody,
    "transit.arrived": ArrivedBody,
    "transit.control-results": ControlResultsBody,
    "transit.closed": ClosedBody,
    "transit.cancelled": CancelledBody,
}


async def _movement(session: AsyncSession, mrn: str, *, lock: bool = False) -> Movement | None:
    return await service.find_movement(session, mrn, lock=lock)


async def merge_journey(session: AsyncSession, node: Node, movement: Movement, steps: list[StepRecord]) -> None:
    for step in steps:
        await journey.add_step(
            session,
            node,
            movement,
            kind=step.kind,
            office=step.office,
            country=step.country,
            at=step.at,
            signed_by=step.signed_by,
            envelope_id=step.envelope_id,
            details=step.details,
        )


@MESSAGES.message_type(
    "transit.anticipated", body=AnticipatedBody, summary="The released movement, for each country on the route."
)
async def on_anticipated(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    await on_record(session, envelope, node)


@MESSAGES.message_type("transit.record-response", body=AnticipatedBody, summary="A movement record sent on request.")
async def on_record_response(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    await on_record(session, envelope, node)


async def on_record(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, AnticipatedBody)
    if envelope.payload.iss != body.mrn[2:4]:
        raise Rejection("15", f"only {body.mrn[2:4]}, the country of departure, sends the record of {body.mrn}")
    if node.id not in body.countries:
        raise Rejection("15", f"{node.id} is not on the route of {body.mrn} ({' → '.join(body.countries)})")
    await service.lock_record(session, body.mrn)  # a step being kept for it now is committed first, or waits
    movement = await _movement(session, body.mrn)
    if movement is None:
        now = clock.utcnow()
        declaration = body.declaration
        guarantee = declaration.get("guarantee") or {}
        declarant = declaration.get("declarant") or {}
        movement = Movement(
            mrn=body.mrn,
            role="route",
            status="accepted",
            departure_country=envelope.payload.iss,
            departure_office=body.departure_office,
            destination_office=body.destination_office,
            countries=body.countries,
            offices=body.itinerary,
            record=declaration,
            grn=None,
            guarantee_amount=None,
            guarantee_currency=guarantee.get("currency"),
            limit_date=body.limit_date,
            client_id=None,
            declarant_id=str(declarant.get("id", "")),
            created_at=now,
            updated_at=now,
        )
        session.add(movement)
        await session.flush()
        journey.locked(session, body.mrn)  # inserted by this transaction: nobody else writes it before we commit
        await service.index_offices(session, mrn=body.mrn, offices=body.itinerary)
        await bus.publish(session, MovementHeld(node=node, movement=movement))
    journey_steps = body.journey or [
        StepRecord(
            kind="released",
            office=body.departure_office,
            country=envelope.payload.iss,
            at=envelope.payload.iat,
            signed_by=envelope.payload.iss,
        )
    ]
    for step in journey_steps:
        if step.kind == "released" and step.envelope_id is None:
            step.envelope_id = envelope.payload.id
    await merge_journey(session, node, movement, journey_steps)
    await session.flush()
    await apply_pending(session, node, movement)


async def apply_pending(session: AsyncSession, node: Node, movement: Movement) -> None:
    """Steps kept while the record was missing, applied now in the order they came."""
    pending = list(
        (
            await session.scalars(select(PendingStep).where(PendingStep.mrn == movement.mrn).order_by(PendingStep.id))
        ).all()
    )
    for item in pending:
        try:
            if item.source == "local":
                await service.apply_crossing(session, node, movement, CrossingIn.model_validate(item.body))
            elif item.message_type not in STEP_BODIES:  # another feature's message (tracking.alert): handed back
                handler = PORTS.parked_handler(item.message_type)
                await handler(
                    session, node, movement, body=item.body, sender=item.signed_by, envelope_id=item.envelope_id
                )
            else:
                model = STEP_BODIES[item.message_type].model_validate(item.body)
                await apply_step(
                    session,
                    node,
                    movement,
                    message_type=item.message_type,
                    body=model,
                    iss=item.signed_by,
                    envelope_id=item.envelope_id,
                )
        except (DomainError, Rejection) as exc:
            logger.warning(
                "kept step for %s could not be applied once its record came: %s",
                movement.mrn,
                exc,
                extra={"mrn": movement.mrn, "node": node.id},
            )
    if pending:
        await session.execute(delete(PendingStep).where(PendingStep.mrn == movement.mrn))


@MESSAGES.message_type("transit.crossed", body=CrossedBody, summary="Goods crossed a border post (exit or entry).")
async def on_crossed(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    await on_step(session, envelope, node)


@MESSAGES.message_type("transit.arrived", body=ArrivedBody, summary="Goods arrived at the office of destination.")
async def on_arrived(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    await on_step(session, envelope, node)


@MESSAGES.message_type("transit.control-results", body=ControlResultsBody, summary="Control results at destination.")
async def on_control_results(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    await on_step(session, envelope, node)


@MESSAGES.message_type(
    "transit.closed", body=ClosedBody, summary="Written off at departure; the guarantee is released."
)
async def on_closed(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    await on_step(session, envelope, node)


@MESSAGES.message_type("transit.cancelled", body=CancelledBody, summary="Cancelled at departure before the goods left.")
async def on_cancelled(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    await on_step(session, envelope, node)


async def on_step(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    mrn = str(body.model_dump()["mrn"])
    movement = await _movement(session, mrn, lock=True)
    if movement is None:
        if mrn[2:4] == node.id:
            raise Rejection("90", f"no movement {mrn} was declared here")
        if await service.park(
            session,
            node,
            mrn=mrn,
            source="message",
            message_type=envelope.payload.type,
            body=body.model_dump(mode="json"),
            signed_by=envelope.payload.iss,
            envelope_id=envelope.payload.id,
        ):
            return
        movement = await _movement(session, mrn, lock=True)  # the record came while we looked
        assert movement is not None
    await apply_step(
        session,
        node,
        movement,
        message_type=envelope.payload.type,
        body=body,
        iss=envelope.payload.iss,
        envelope_id=envelope.payload.id,
    )


async def apply_step(
    session: AsyncSession,
    node: Node,
    movement: Movement,
    *,
    message_type: str,
    body: BaseModel,
    iss: str,
    envelope_id: str | None,
) -> None:
    if movement.status == "cancelled" and message_type != "transit.cancelled":
        # Sent before the sender heard of the cancellation (its own desk refuses steps once it knows): kept as a
        # fact of the journey; `journey.advance` leaves the status cancelled.
        logger.warning("%s: %s from %s after the movement was cancelled", movement.mrn, message_type, iss)
    if isinstance(body, CrossedBody):
        if body.office not in movement.offices:
            raise Rejection("14", f"{body.office} is not on the itinerary of {movement.mrn}")
        if body.country != iss or not body.office.startswith(iss):
            raise Rejection("15", f"{iss} may report crossings only at its own offices, not {body.office}")
        await journey.add_step(
            session,
            node,
            movement,
            kind=body.direction,
            office=body.office,
            country=iss,
            at=body.at,
            signed_by=iss,
            envelope_id=envelope_id,
            details={"seals_intact": body.seals_intact, "remarks": body.remarks},
        )
    elif isinstance(body, ArrivedBody):
        if body.office != movement.destination_office or not body.office.startswith(iss):
            raise Rejection("14", f"{movement.mrn} is bound for {movement.destination_office}, not {body.office}")
        await journey.add_step(
            session,
            node,
            movement,
            kind="arrived",
            office=body.office,
            country=iss,
            at=body.at,
            signed_by=iss,
            envelope_id=envelope_id,
            details={"remarks": body.remarks},
        )
    elif isinstance(body, ControlResultsBody):
        if body.office != movement.destination_office or not body.office.startswith(iss):
            raise Rejection("15", f"control results for {movement.mrn} come from {movement.destination_office}")
        await journey.add_step(
            session,
            node,
            movement,
            kind="control-results",
            office=body.office,
            country=iss,
            at=body.at,
            signed_by=iss,
            envelope_id=envelope_id,
            details={"code": body.code, "discrepancies": body.discrepancies},
        )
        if movement.role == "departure":
            await service.write_off(session, node, movement, outcome=body.code)
    elif isinstance(body, ClosedBody | CancelledBody):
        if iss != movement.departure_country:
            raise Rejection("15", f"only {movement.departure_country} closes or cancels {movement.mrn}")
        if isinstance(body, CancelledBody) and movement.status in ("in_transit", "arrived"):
            logger.warning("%s: cancelled by %s after the goods were recorded %s", movement.mrn, iss, movement.status)
        kind = "closed" if isinstance(body, ClosedBody) else "cancelled"
        details = {"outcome": body.outcome} if isinstance(body, ClosedBody) else {"reason": body.reason}
        await journey.add_step(
            session,
            node,
            movement,
            kind=kind,
            office=body.office,
            country=iss,
            at=body.at,
            signed_by=iss,
            envelope_id=envelope_id,
            details=details,
        )
    await session.flush()


@MESSAGES.message_type(
    "transit.record-request", body=RecordRequestBody, summary="Ask the country of departure for a record."
)
async def on_record_request(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, RecordRequestBody)
    movement = await _movement(session, body.mrn)
    if movement is None or movement.role != "departure":
        raise Rejection("90", f"{body.mrn} was not declared here")
    if envelope.payload.iss not in movement.countries:
        raise Rejection("15", f"{envelope.payload.iss} is not on the route of {body.mrn}")
    if movement.status == "accepted":
        raise Rejection("92", f"{body.mrn} has not been released yet")
    steps = journey.as_records(await journey.steps_of(session, body.mrn))
    outbox.enqueue(
        session,
        to=envelope.payload.iss,
        message_type="transit.record-response",
        body=service.anticipated_body(movement, steps),
        subject=body.mrn,
    )


@MESSAGES.message_type(
    "transit.status-request", body=StatusRequestBody, summary="Ask a country what it holds on a movement."
)
async def on_status_request(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, StatusRequestBody)
    movement = await _movement(session, body.mrn)
    if movement is None:
        raise Rejection("90", f"no movement {body.mrn} at {node.id}")
    steps = journey.as_records(await journey.steps_of(session, body.mrn))
    outbox.enqueue(
        session,
        to=envelope.payload.iss,
        message_type="transit.status-response",
        body=StatusResponseBody(mrn=body.mrn, status=movement.status, journey=steps),
        subject=body.mrn,
    )


@MESSAGES.message_type("transit.status-response", body=StatusResponseBody, summary="Status and journey, to reconcile.")
async def on_status_response(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, StatusResponseBody)
    movement = await _movement(session, body.mrn)
    if movement is None:
        raise Rejection("90", f"no movement {body.mrn} at {node.id}")
    await merge_journey(session, node, movement, body.journey)
    await session.flush()
