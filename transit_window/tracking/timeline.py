"""Reading events: the merged timeline of one consignment, and EPCIS-style queries over many."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, tuple_

from transit_window import clock
from transit_window.codes import OfficeDirectory
from transit_window.dates import within_corridor
from transit_window.errors import FieldError, InvalidInput
from transit_window.protocol.models import InboxMessage
from transit_window.tracking.events import office_timezone
from transit_window.tracking.models import TrackingEvent
from transit_window.tracking.schemas import Event, Place

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def place(
    office_code: str | None,
    country: str,
    offices: OfficeDirectory,
    *,
    lat: float | None = None,
    lon: float | None = None,
) -> Place:
    office = offices.get(office_code) if office_code else None
    if office is None:
        return Place(office=office_code, country=country, lat=lat, lon=lon)
    return Place(
        office=office.code, name=office.name, country=office.country, lat=lat or office.lat, lon=lon or office.lon
    )


DESK_STEPS = frozenset({"closed", "cancelled"})  # recorded at the departure's desk, not where the truck is


async def verification_of(session: AsyncSession, events: list[TrackingEvent], *, node_id: str) -> dict[str, str]:
    """Per event: local (recorded here), verified (we hold the envelope the named country signed), relayed."""
    keys = [
        (event.signed_by, event.envelope_id) for event in events if event.envelope_id and event.signed_by != node_id
    ]
    held: set[tuple[str, str]] = set()
    for start in range(0, len(keys), 500):
        rows = await session.execute(
            select(InboxMessage.iss, InboxMessage.id).where(
                tuple_(InboxMessage.iss, InboxMessage.id).in_(keys[start : start + 500])
            )
        )
        held.update((row.iss, row.id) for row in rows)
    result = {}
    for event in events:
        if event.signed_by == node_id:
            result[event.id] = "local"
        elif event.envelope_id and (event.signed_by, event.envelope_id) in held:
            result[event.id] = "verified"
        else:
            result[event.id] = "relayed"
    return result


def to_event(
    event: TrackingEvent, *, offices: OfficeDirectory, verification: str, corrected_by: dict[str, TrackingEvent]
) -> Event:
    local = event.event_time.astimezone(office_timezone(event.country))
    error = corrected_by.get(event.id)
    return Event(
        event_id=f"urn:uuid:{event.id}",
        mrn=event.mrn,
        step=event.kind,
        event_time=local.isoformat(timespec="seconds"),
        event_time_zone_offset=event.event_time_zone_offset,
        record_time=event.record_time,
        biz_step=event.biz_step,
        disposition=event.disposition,
        biz_location=place(event.office, event.country, offices, lat=event.lat, lon=event.lon),
        dcsa_code=event.dcsa_code,
        rec24_code=event.rec24_code,
        what=event.containers,
        signed_by=event.signed_by,
        envelope_id=event.envelope_id,
        verification=verification,
        error_declaration=(
            {
                "declarationTime": error.record_time.isoformat(),
                "correctiveEventIDs": [f"urn:uuid:{error.id}"],
                "reason": error.details.get("reason", ""),
            }
            if error
            else None
        ),
        details=event.details,
    )


async def render(
    session: AsyncSession,
    events: list[TrackingEvent],
    *,
    node_id: str,
    offices: OfficeDirectory,
    each_as_recorded: bool = False,
) -> list[Event]:
    """The events as the timeline shows them. `each_as_recorded`: each as it was when recorded, whatever else is in
    the list (a correction among them marks nothing): what a webhook sends, the same bytes however it is batched."""
    verification = await verification_of(session, events, node_id=node_id)
    corrected_by = {} if each_as_recorded else {event.corrects: event for event in events if event.corrects}
    return [
        to_event(event, offices=offices, verification=verification[event.id], corrected_by=corrected_by)
        for event in events
    ]


async def timeline(session: AsyncSession, mrn: str) -> list[TrackingEvent]:
    rows = await session.scalars(
        select(TrackingEvent).where(TrackingEvent.mrn == mrn).order_by(TrackingEvent.event_time, TrackingEvent.id)
    )
    return list(rows.all())


async def last_events(session: AsyncSession, mrns: list[str]) -> dict[str, TrackingEvent]:
    """The latest event of each of a page of movements, in one query (those that have one)."""
    if not mrns:
        return {}
    latest_first = (TrackingEvent.event_time.desc(), TrackingEvent.id.desc())
    ranked = (
        select(
            TrackingEvent.id, func.row_number().over(partition_by=TrackingEvent.mrn, order_by=latest_first).label("n")
        )
        .where(TrackingEvent.mrn.in_(mrns))
        .subquery()
    )
    rows = await session.scalars(
        select(TrackingEvent).join(ranked, ranked.c.id == TrackingEvent.id).where(ranked.c.n == 1)
    )
    return {event.mrn: event for event in rows}


def encode_cursor(event: TrackingEvent) -> str:
    raw = f"{event.event_time.isoformat()}|{event.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, event_id = raw.split("|", 1)
        return within_corridor(clock.parse(moment)), event_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "the cursor is not one this API gave out", errors=[FieldError("/query/cursor", "bad cursor")]
        ) from exc


def apply_filters(
    statement: Any,
    *,
    ge_time: datetime | None,
    lt_time: datetime | None,
    biz_step: str | None,
    biz_location: str | None,
    mrn: str | None,
    cursor: str | None,
) -> Any:
    if ge_time is not None:
        statement = statement.where(TrackingEvent.event_time >= ge_time)
    if lt_time is not None:
        statement = statement.where(TrackingEvent.event_time < lt_time)
    if biz_step:
        statement = statement.where(TrackingEvent.biz_step == biz_step.rsplit(":", 1)[-1])
    if biz_location:
        statement = statement.where(TrackingEvent.office == biz_location)
    if mrn:
        statement = statement.where(TrackingEvent.mrn == mrn)
    if cursor:
        moment, event_id = decode_cursor(cursor)
        statement = statement.where(tuple_(TrackingEvent.event_time, TrackingEvent.id) > tuple_(moment, event_id))
    return statement.order_by(TrackingEvent.event_time, TrackingEvent.id)
