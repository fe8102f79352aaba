"""Alerts on a movement: raised by the e-seal rules (`seal_rules.py`), by the overdue-crossing check, or by an
arrival at destination without the route's border crossings recorded (both in `crossing_checks.py`), kept here,
shared as `tracking.alert` (with every other country on the route; an unrecorded-crossings alert with the departure
country and the countries whose crossings are missing), and worked by customs (acknowledge, close).

An alert is also a tracking event (`record_event`, kind `alert`, or `seal-opened` for a seal opened on the road), so
it sits on the consignment's timeline and reaches webhook subscribers like any step. One alert per movement and
rule is open at a time: a detour that lasts fifty pings is one alert, and after customs close it a detour still in
progress raises a new one. A node that already holds an open alert for the movement and rule (its own or one
received from another country) does not raise another.

Acknowledging and closing are this node's customs' work queue (`alert_endpoints.py`); they are not sent to the
other countries. A route country's alert arrives as `tracking.alert` (`inbound.py`, body in `messages.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select, update

from transit_window import clock
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.declarations import interface as declarations
from transit_window.declarations.interface import Movement
from transit_window.ids import new_id
from transit_window.tracking import events
from transit_window.tracking.messages import AlertBody, Rule
from transit_window.tracking.models import TrackingAlert

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.node import Node

logger = logging.getLogger(__name__)

AlertStatus = Literal["open", "acknowledged", "closed"]
WATCHED = ("released", "in_transit")  # the statuses in which a movement is on the road


def event_kind(rule: str) -> str:
    return "seal-opened" if rule == "seal-opened" else "alert"


# -- raising -----------------------------------------------------------------------------------------------------


async def open_rules(session: AsyncSession, mrns: list[str]) -> set[tuple[str, str]]:
    """(mrn, rule) of every alert not closed on these movements, whoever raised it."""
    found: set[tuple[str, str]] = set()
    for start in range(0, len(mrns), 500):
        rows = await session.execute(
            select(TrackingAlert.mrn, TrackingAlert.rule).where(
                TrackingAlert.mrn.in_(mrns[start : start + 500]), TrackingAlert.status != "closed"
            )
        )
        found.update((row.mrn, row.rule) for row in rows)
    return found


async def raise_alert(
    session: AsyncSession,
    node: Node,
    movement: Movement,
    *,
    rule: Rule,
    at: datetime,
    details: dict[str, Any],
    lat: float | None = None,
    lon: float | None = None,
    office: str | None = None,
    device_id: str | None = None,
    client_id: str | None = None,
    to: Iterable[str] | None = None,
) -> TrackingAlert | None:
    """Store the alert, record its event and send it to the route (or to the countries of it in `to`); None if one
    is already open (a race lost). `device_id` and `client_id` say which device and which of this node's clients
    reported the ping behind it."""
    alert_id = new_id()
    result = await session.execute(
        dialect_of(session)
        .insert_ignore(table_of(TrackingAlert))
        .values(
            id=alert_id,
            mrn=movement.mrn,
            rule=rule,
            status="open",
            raised_by=node.id,
            raised_at=at,
            recorded_at=clock.utcnow(),
            office=office,
            lat=lat,
            lon=lon,
            details=details,
            event_id=alert_id,
            open_key=f"{movement.mrn}|{rule}",
            device_id=device_id,
            client_id=client_id,
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    body = AlertBody(
        id=alert_id,
        mrn=movement.mrn,
        rule=rule,
        at=at,
        office=office,
        lat=lat,
        lon=lon,
        details=details,
        device_id=device_id,
        client_id=client_id,
    )
    envelope_id = declarations.broadcast(
        session, node, movement, message_type="tracking.alert", body=body, countries=to
    )
    await events.record_event(
        session,
        mrn=movement.mrn,
        kind=event_kind(rule),
        office=office,
        country=node.id,
        at=at,
        signed_by=node.id,
        envelope_id=envelope_id,
        record=movement.record,
        details={"rule": rule, "alert_id": alert_id, **details},
        lat=lat,
        lon=lon,
        event_id=alert_id,  # the same id on every node of the route
    )
    await session.execute(update(TrackingAlert).where(TrackingAlert.id == alert_id).values(envelope_id=envelope_id))
    logger.info("alert %s on %s", rule, movement.mrn, extra={"mrn": movement.mrn, "rule": rule, "node": node.id})
    return await session.get(TrackingAlert, alert_id)
