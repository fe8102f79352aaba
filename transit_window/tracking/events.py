"""Turning movement steps (and alerts) into EPCIS-style tracking events, in the step's own transaction.

A new event is published on the bus (`EventRecorded`): webhooks subscribes to it and queues its deliveries in the
same transaction, so tracking does not know webhooks exist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from transit_window import bus, clock
from transit_window.codes import InvalidCode, time_zone
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.ids import new_id
from transit_window.tracking import vocabulary
from transit_window.tracking.models import TrackingEvent

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class EventRecorded:
    """A tracking event was recorded here for the first time (a step's or an alert's)."""

    event_id: str
    mrn: str
    kind: str
    event: TrackingEvent | None = None  # the row as inserted (not attached to the session): shown without a read


def office_timezone(country: str) -> tzinfo:
    """The civil time zone of an office's country (`codes.countries.TIME_ZONES`: Asia/Tashkent, Asia/Kabul at
    +04:30, ...), so every event is shown in the time of the place it happened (times are stored in UTC); UTC for a
    country the corridor keeps no zone for."""
    try:
        return time_zone(country)
    except InvalidCode:
        return UTC


def offset_text(country: str, at: datetime) -> str:
    """The UTC offset of `country` at the instant `at`, as EPCIS writes it: "+05:00", "+04:30"."""
    offset = at.astimezone(office_timezone(country)).strftime("%z")
    return f"{offset[:3]}:{offset[3:5]}"


_STEP_NAMESPACE = uuid.UUID("6f1c9a52-3a55-4f0e-9a8e-0d3c7c1e2b11")


def step_event_id(mrn: str, kind: str, office: str) -> str:
    """The same id for the same step on every node (the step's natural key), so timelines compare event for event
    while each node still records which envelope carried the step to it."""
    return str(uuid.uuid5(_STEP_NAMESPACE, f"{mrn}|{kind}|{office}"))


def what_of(record: dict[str, Any]) -> dict[str, Any]:
    vehicle = record.get("vehicle") or {}
    return {
        "containers": list(record.get("containers") or []),
        "vehicle": vehicle.get("plate"),
        "trailer": vehicle.get("trailer_plate"),
    }


async def record_event(
    session: AsyncSession,
    *,
    mrn: str,
    kind: str,
    office: str | None,
    country: str,
    at: datetime,
    signed_by: str,
    envelope_id: str | None,
    record: dict[str, Any],
    details: dict[str, Any] | None = None,
    lat: float | None = None,
    lon: float | None = None,
    corrects: str | None = None,
    event_id: str | None = None,
) -> str:
    words = vocabulary.of(kind)
    event_id = event_id or new_id()
    values: dict[str, Any] = dict(
        id=event_id,
        mrn=mrn,
        kind=kind,
        event_time=at,
        event_time_zone_offset=offset_text(country, at),
        record_time=clock.utcnow(),
        office=office,
        country=country,
        lat=lat,
        lon=lon,
        biz_step=words.biz_step,
        disposition=words.disposition,
        dcsa_code=words.dcsa,
        rec24_code=words.rec24,
        signed_by=signed_by,
        envelope_id=envelope_id,
        containers=what_of(record),
        corrects=corrects,
        details=details or {},
    )
    inserted = await session.execute(  # ignore a repeat: a step's event id is the same wherever it is recorded
        dialect_of(session).insert_ignore(table_of(TrackingEvent), index_elements=["id"]).values(**values)
    )
    if inserted.rowcount:  # type: ignore[attr-defined]
        shown = TrackingEvent(**values)
        await bus.publish(session, EventRecorded(event_id=event_id, mrn=mrn, kind=kind, event=shown))  # same txn
    return event_id
