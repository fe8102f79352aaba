"""The movement's state machine and journey: steps are facts, the status is the furthest point they reach.

    accepted ─release→ released ─crossing→ in_transit ─arrival→ arrived ─control results / write-off→ closed
        └──────cancel (before any crossing)──→ cancelled

Steps can reach a node out of order (a crossing relayed faster than the record, two batches in flight); a step
never moves the status backwards, and a step already recorded is not recorded twice. The departure cancels only
before it knows of a crossing, but a crossing it had not heard of yet may follow: the status is then `cancelled`
whatever else the journey holds, so every node agrees however the two reached it (see `inbound.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from transit_window import bus, clock
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.db.session import TRANSACTION_SCOPED
from transit_window.declarations.events import StepRecorded
from transit_window.declarations.messages import StepRecord
from transit_window.declarations.models import Movement, MovementStep
from transit_window.protocol import outbox

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.node import Node

FINAL = frozenset({"closed", "cancelled"})  # no step moves a movement out of these: its journey is over
RANK = {"accepted": 0, "released": 1, "in_transit": 2, "arrived": 3, "closed": 4}
STATUS_OF_STEP = {
    "released": "released",
    "exit": "in_transit",
    "entry": "in_transit",
    "arrived": "arrived",
    "control-results": "arrived",
    "closed": "closed",
    "cancelled": "cancelled",
}


def advance(movement: Movement, kind: str) -> None:
    target = STATUS_OF_STEP[kind]
    if movement.status == "cancelled":
        return
    if target == "cancelled" or RANK[target] > RANK[movement.status]:
        movement.status = target
        movement.updated_at = clock.utcnow()


_LOCKED = TRANSACTION_SCOPED + "locked_movements"


def locked(session: AsyncSession, mrn: str) -> None:
    """Note that this transaction holds the lock on movement `mrn` (read FOR UPDATE, or inserted by it): its status,
    read then, is current, and `add_step` need not lock and read it again."""
    session.info.setdefault(_LOCKED, []).append(mrn)


async def add_step(
    session: AsyncSession,
    node: Node,
    movement: Movement,
    *,
    kind: str,
    office: str,
    country: str,
    at: datetime,
    signed_by: str,
    envelope_id: str | None,
    details: dict[str, Any] | None = None,
    here: bool = False,
) -> bool:
    """Record a step (once), advance the status and publish `StepRecorded`; False when the step was already recorded.
    `here`: this node's own customs recorded it."""
    # Lock the movement and read its status afresh first. Two transactions recording steps of one movement at once
    # (customs recording the arrival while a peer's exit message is applied) would otherwise each advance the status
    # they read before the other committed, and the later commit would move it backwards. Locking before the step
    # row is written keeps one order (movement, then steps) on every path, so two such transactions cannot deadlock.
    await session.flush()
    if movement.mrn not in session.info.get(_LOCKED, ()):
        await session.refresh(movement, attribute_names=["status"], with_for_update=True)
        locked(session, movement.mrn)
    result = await session.execute(
        dialect_of(session)
        .insert_ignore(table_of(MovementStep), index_elements=["mrn", "kind", "office"])
        .values(
            mrn=movement.mrn,
            kind=kind,
            office=office,
            country=country,
            at=at,
            recorded_at=clock.utcnow(),
            signed_by=signed_by,
            envelope_id=envelope_id,
            details=details or {},
        )
    )
    inserted = bool(result.rowcount)  # type: ignore[attr-defined]
    if inserted:
        advance(movement, kind)
        await bus.publish(
            session,
            StepRecorded(
                node=node,
                movement=movement,
                kind=kind,
                office=office,
                country=country,
                at=at,
                signed_by=signed_by,
                envelope_id=envelope_id,
                details=details or {},
                here=here,
            ),
        )
    return inserted


async def steps_of(session: AsyncSession, mrn: str) -> list[MovementStep]:
    rows = await session.scalars(
        select(MovementStep).where(MovementStep.mrn == mrn).order_by(MovementStep.at, MovementStep.id)
    )
    return list(rows.all())


async def steps_by_mrn(session: AsyncSession, mrns: list[str]) -> dict[str, list[MovementStep]]:
    """The journeys of a page of movements in one query."""
    found: dict[str, list[MovementStep]] = {mrn: [] for mrn in mrns}
    if mrns:
        rows = await session.scalars(
            select(MovementStep).where(MovementStep.mrn.in_(mrns)).order_by(MovementStep.at, MovementStep.id)
        )
        for step in rows:
            found[step.mrn].append(step)
    return found


def as_records(steps: list[MovementStep]) -> list[StepRecord]:
    return [
        StepRecord(
            kind=step.kind,
            office=step.office,
            country=step.country,
            at=step.at,
            signed_by=step.signed_by,
            envelope_id=step.envelope_id,
            details=step.details,
        )
        for step in steps
    ]


def others_on_route(movement: Movement, node: Node) -> list[str]:
    return [country for country in movement.countries if country != node.id and node.trust.member(country)]


def broadcast(
    session: AsyncSession,
    node: Node,
    movement: Movement,
    *,
    message_type: str,
    body: BaseModel,
    countries: Iterable[str] | None = None,
) -> str | None:
    """Send to every other country on the route, or to those of `countries` that are; returns the id of the first
    message (the step's envelope)."""
    first: str | None = None
    others = others_on_route(movement, node)
    chosen = set(countries) if countries is not None else None
    for country in others if chosen is None else [country for country in others if country in chosen]:
        message_id = outbox.enqueue(session, to=country, message_type=message_type, body=body, subject=movement.mrn)
        first = first or message_id
    return first


async def record_here(
    session: AsyncSession,
    node: Node,
    movement: Movement,
    *,
    kind: str,
    office: str,
    at: datetime,
    message_type: str | None,
    body: BaseModel | None,
    details: dict[str, Any] | None = None,
) -> None:
    """A step this node records: tell the rest of the route (when there is a message for it), then record the step
    signed by this node, with the id of the envelope that carried it."""
    message_id = None
    if message_type is not None and body is not None:
        message_id = broadcast(session, node, movement, message_type=message_type, body=body)
    await add_step(
        session,
        node,
        movement,
        kind=kind,
        office=office,
        country=node.id,
        at=at,
        signed_by=node.id,
        envelope_id=message_id,
        details=details,
        here=True,
    )
