"""Alerts on a movement: raised by the e-seal rules (`positions.py`), by the overdue-crossing check below, or by an
arrival at destination without the route's border crossings recorded (`unrecorded-crossings`, below), kept here,
shared as `tracking.alert` (with every other country on the route; an unrecorded-crossings alert with the departure
country and the countries whose crossings are missing), and worked by customs (acknowledge, close).

An alert is also a tracking event (`record_event`, kind `alert`, or `seal-opened` for a seal opened on the road), so
it sits on the consignment's timeline and reaches webhook subscribers like any step. One alert per movement and
rule is open at a time: a detour that lasts fifty pings is one alert, and after customs close it a detour still in
progress raises a new one. A node that already holds an open alert for the movement and rule (its own or one
received from another country) does not raise another.

Acknowledging and closing are this node's customs' work queue; they are not sent to the other countries.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from transit_window import clock
from transit_window.api.deps import Principal, SessionDep, require
from transit_window.api.pagination import Page
from transit_window.api.problems import responses
from transit_window.codes import geo
from transit_window.codes.of_node import offices_of
from transit_window.db.base import table_of
from transit_window.db.session import unit_of_work
from transit_window.db.upsert import insert_ignore
from transit_window.declarations import interface as declarations
from transit_window.declarations.interface import MRN, Movement, MovementStep, StatusRequestBody
from transit_window.errors import Conflict, NotFound
from transit_window.ids import new_id
from transit_window.protocol import outbox
from transit_window.protocol.registry import MessageTypes, Rejection
from transit_window.text import Printable
from transit_window.tracking import events
from transit_window.tracking.models import TrackingAlert

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.codes import OfficeDirectory
    from transit_window.protocol.envelope import VerifiedEnvelope
    from transit_window.protocol.node import Node

logger = logging.getLogger(__name__)
MESSAGES = MessageTypes()  # registered by transit_window.catalogue

Rule = Literal["route-deviation", "long-stop", "seal-opened", "overdue-crossing", "unrecorded-crossings"]
RULES: tuple[Rule, ...] = ("route-deviation", "long-stop", "seal-opened", "overdue-crossing", "unrecorded-crossings")
AlertStatus = Literal["open", "acknowledged", "closed"]
WATCHED = ("released", "in_transit")  # the statuses in which a movement is on the road
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
OVERDUE_PAGE = 500
UNRECORDED_LOOKBACK = timedelta(days=7)  # arrivals older than this (a node down a week) are not looked at


def event_kind(rule: str) -> str:
    return "seal-opened" if rule == "seal-opened" else "alert"


# -- the message -------------------------------------------------------------------------------------------------


class AlertBody(BaseModel):
    """An alert raised by the sending country on a movement of the route (an event of its timeline)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=UUID_PATTERN)
    mrn: str = MRN
    rule: Rule
    at: datetime
    office: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    details: dict[str, Any] = {}
    device_id: str | None = Field(
        default=None, max_length=64, description="The e-seal device whose ping raised the alert (e-seal rules)"
    )
    client_id: str | None = Field(
        default=None, max_length=36, description="The sending node's API client that reported that ping"
    )


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
    dialect = session.get_bind().dialect.name
    result = await session.execute(
        insert_ignore(table_of(TrackingAlert), dialect, index_elements=["id"]).values(
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
    dialect = session.get_bind().dialect.name
    result = await session.execute(
        insert_ignore(table_of(TrackingAlert), dialect).values(
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


# -- overdue crossings -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overdue:
    mrn: str
    last_office: str
    last_at: datetime
    next_office: str
    distance_km: float
    expected_by: datetime


def next_crossing(
    mrn: str,
    itinerary: list[str],
    steps: list[tuple[str, datetime]],
    offices: OfficeDirectory,
    *,
    speed_kmh: float,
    grace: timedelta,
) -> Overdue | None:
    """The next border office of the itinerary after the furthest office with a recorded step, and when it is due:
    the time of that step + the distance between the two offices / `speed_kmh` + `grace`."""
    reached = [(itinerary.index(office), at) for office, at in steps if office in itinerary]
    if not reached:
        return None
    last_index = max(index for index, _ in reached)
    last_at = max(at for index, at in reached if index == last_index)
    recorded = {office for office, _ in steps}
    last = offices.get(itinerary[last_index])
    for office_code in itinerary[last_index + 1 :]:
        office = offices.get(office_code)
        if office is None or office.role != "border" or office_code in recorded:
            continue
        distance = geo.haversine_km(last.lat, last.lon, office.lat, office.lon) if last else 0.0
        expected_by = last_at + timedelta(hours=distance / speed_kmh) + grace
        return Overdue(mrn, itinerary[last_index], last_at, office_code, round(distance, 1), expected_by)
    return None


async def check_overdue(node: Node, *, now: datetime | None = None) -> list[TrackingAlert]:
    """Raise an `overdue-crossing` alert for every movement on the road whose next border crossing has not been
    recorded in time, and ask the country of that crossing for its status (`transit.status-request`). Runs in the
    maintenance loop every `overdue_check_seconds`; `now` is injectable for tests."""
    now = now or clock.utcnow()
    settings = node.settings
    offices = offices_of(node)
    grace = timedelta(minutes=settings.crossing_grace_minutes)
    raised: list[TrackingAlert] = []
    after = ""
    while True:
        async with unit_of_work(node) as session:
            page = (
                await session.execute(
                    select(Movement.mrn, Movement.offices)
                    .where(Movement.status.in_(WATCHED), Movement.mrn > after)
                    .order_by(Movement.mrn)
                    .limit(OVERDUE_PAGE)
                )
            ).all()
            if not page:
                break
            after = page[-1].mrn
            mrns = [row.mrn for row in page]
            steps: dict[str, list[tuple[str, datetime]]] = {}
            for step in await session.execute(
                select(MovementStep.mrn, MovementStep.office, MovementStep.at).where(MovementStep.mrn.in_(mrns))
            ):
                steps.setdefault(step.mrn, []).append((step.office, step.at))
            already = await open_rules(session, mrns)
            for row in page:
                due = next_crossing(
                    row.mrn,
                    list(row.offices),
                    steps.get(row.mrn, []),
                    offices,
                    speed_kmh=settings.expected_speed_kmh,
                    grace=grace,
                )
                if due is None or now <= due.expected_by or (row.mrn, "overdue-crossing") in already:
                    continue
                raised_alert = await _raise_overdue(session, node, due, now=now, offices=offices)
                if raised_alert is not None:
                    raised.append(raised_alert)
        if len(page) < OVERDUE_PAGE:
            break
    return raised


async def _raise_overdue(
    session: AsyncSession, node: Node, due: Overdue, *, now: datetime, offices: OfficeDirectory
) -> TrackingAlert | None:
    movement = await session.get(Movement, due.mrn)
    assert movement is not None
    office = offices.get(due.next_office)
    ask = office.country if office else due.next_office[:2]
    asked = ask != node.id and node.trust.member(ask) is not None
    alert = await raise_alert(
        session,
        node,
        movement,
        rule="overdue-crossing",
        at=now,
        details={
            "last_office": due.last_office,
            "last_step_at": clock.isoformat(due.last_at),
            "next_office": due.next_office,
            "distance_km": due.distance_km,
            "expected_by": clock.isoformat(due.expected_by),
            "status_requested_from": ask if asked else None,
        },
    )
    if alert is not None and asked:
        outbox.enqueue(
            session, to=ask, message_type="transit.status-request", body=StatusRequestBody(mrn=due.mrn), subject=due.mrn
        )
    return alert


# -- an arrival without its border crossings ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Crossing:
    country: str
    direction: Literal["exit", "entry"]
    office: str


def route_crossings(itinerary: Sequence[str], offices: OfficeDirectory) -> list[Crossing]:
    """The border crossings an itinerary makes, in order: at each change of country, the exit at the office before
    it and the entry at the office after it."""
    crossings: list[Crossing] = []
    for here, there in itertools.pairwise(itinerary):
        leaving, entering = _country_of(here, offices), _country_of(there, offices)
        if leaving != entering:
            crossings += [Crossing(leaving, "exit", here), Crossing(entering, "entry", there)]
    return crossings


def _country_of(office_code: str, offices: OfficeDirectory) -> str:
    office = offices.get(office_code)
    return office.country if office else office_code[:2]


async def _recorded_crossings(session: AsyncSession, mrns: Sequence[str]) -> dict[str, set[tuple[str, str]]]:
    """(direction, office) of every exit and entry this node holds, per movement: one query per 500 movements."""
    recorded: dict[str, set[tuple[str, str]]] = {mrn: set() for mrn in mrns}
    for start in range(0, len(mrns), OVERDUE_PAGE):
        rows = await session.execute(
            select(MovementStep.mrn, MovementStep.kind, MovementStep.office).where(
                MovementStep.mrn.in_(mrns[start : start + OVERDUE_PAGE]), MovementStep.kind.in_(("exit", "entry"))
            )
        )
        for row in rows:
            recorded[row.mrn].add((row.kind, row.office))
    return recorded


def _missing(movement: Movement, recorded: set[tuple[str, str]], offices: OfficeDirectory) -> list[Crossing]:
    return [c for c in route_crossings(movement.offices, offices) if (c.direction, c.office) not in recorded]


def _ask_for_status(session: AsyncSession, node: Node, movement: Movement, countries: Iterable[str]) -> None:
    for country in countries:
        if country != node.id and node.trust.member(country) is not None:
            outbox.enqueue(
                session,
                to=country,
                message_type="transit.status-request",
                body=StatusRequestBody(mrn=movement.mrn),
                subject=movement.mrn,
            )


async def ask_for_missing_crossings(session: AsyncSession, node: Node, movement: Movement) -> None:
    """When the arrival at destination is recorded here: ask each country whose crossing this node does not hold
    what it holds (`transit.status-request`, as an overdue crossing does). Nothing is raised yet: a crossing
    recorded minutes ago may still be on its way (a node down, a retry), and an alert is a customs officer's time.
    `check_unrecorded_crossings` raises the alert for what is still missing once the answers had time to come."""
    recorded = await _recorded_crossings(session, [movement.mrn])
    missing = _missing(movement, recorded[movement.mrn], offices_of(node))
    _ask_for_status(session, node, movement, dict.fromkeys(crossing.country for crossing in missing))


async def check_unrecorded_crossings(node: Node, *, now: datetime | None = None) -> list[TrackingAlert]:
    """Raise an `unrecorded-crossings` alert for every arrival recorded here `unrecorded_crossings_wait_minutes`
    ago or more (within the last `UNRECORDED_LOOKBACK`) whose journey still lacks crossings of the route, naming
    them, addressed to the departure country and the countries whose crossings are missing; once per movement. The
    arrival stands and the movement ends as it would have (NCTS accepts an arrival with transit records missing):
    the alert is for customs to find out why, and stays open until they close it. Runs with the overdue check;
    `now` is injectable for tests."""
    now = now or clock.utcnow()
    offices = offices_of(node)
    until = now - timedelta(minutes=node.settings.unrecorded_crossings_wait_minutes)
    raised: list[TrackingAlert] = []
    async with unit_of_work(node) as session:
        already = select(TrackingAlert.mrn).where(TrackingAlert.rule == "unrecorded-crossings")
        arrivals = (
            await session.execute(
                select(MovementStep.mrn, MovementStep.office, MovementStep.at)
                .where(
                    MovementStep.kind == "arrived",
                    MovementStep.signed_by == node.id,
                    MovementStep.recorded_at <= until,
                    MovementStep.recorded_at > until - UNRECORDED_LOOKBACK,
                    MovementStep.mrn.not_in(already),
                )
                .order_by(MovementStep.mrn)
            )
        ).all()
        # Arrivals with nothing missing come back every run until they leave the lookback: a constant three
        # queries per run for them all (arrivals, their movements, their crossings), never one per movement.
        mrns = [arrival.mrn for arrival in arrivals]
        movements = {
            movement.mrn: movement
            for start in range(0, len(mrns), OVERDUE_PAGE)
            for movement in await session.scalars(
                select(Movement).where(Movement.mrn.in_(mrns[start : start + OVERDUE_PAGE]))
            )
        }
        recorded = await _recorded_crossings(session, mrns)
        for arrival in arrivals:
            movement = movements.get(arrival.mrn)
            missing = _missing(movement, recorded[arrival.mrn], offices) if movement is not None else []
            if movement is None or not missing:
                continue
            alert = await _raise_unrecorded(session, node, movement, missing, office=arrival.office, at=arrival.at)
            if alert is not None:
                raised.append(alert)
    return raised


async def _raise_unrecorded(
    session: AsyncSession, node: Node, movement: Movement, missing: list[Crossing], *, office: str, at: datetime
) -> TrackingAlert | None:
    offices = offices_of(node)
    countries = list(dict.fromkeys(crossing.country for crossing in missing))
    addressed = list(dict.fromkeys([movement.departure_country, *countries]))
    named = []
    for crossing in missing:
        known = offices.get(crossing.office)
        named.append(
            {
                "country": crossing.country,
                "direction": crossing.direction,
                "office": crossing.office,
                "name": known.name if known else None,
            }
        )
    summary = "; ".join(
        f"{item['country']} {item['direction']} at {item['name'] or item['office']} ({item['office']})"
        for item in named
    )
    # Never dated before the arrival (which may be up to the corridor's clock skew ahead of this clock), so the
    # alert follows it on the timeline.
    alert = await raise_alert(
        session,
        node,
        movement,
        rule="unrecorded-crossings",
        at=max(clock.utcnow(), at + timedelta(milliseconds=1)),
        office=office,
        details={
            "arrival_office": office,
            "arrived_at": clock.isoformat(at),
            "missing": named,
            "addressed_to": addressed,
            "summary": f"arrived at {office} with no record of: {summary}",
        },
        to=addressed,
    )
    return alert


# -- the customs API ---------------------------------------------------------------------------------------------

router = APIRouter(tags=["alerts"])
Customs = Annotated[Principal, Depends(require("customs"))]
AlertId = Annotated[str, Path(pattern=UUID_PATTERN)]


class AlertOut(BaseModel):
    id: str
    mrn: str
    rule: Rule
    status: AlertStatus
    raised_by: str = Field(description="The country whose node raised the alert")
    raised_at: datetime = Field(
        description="When it happened (the ping's time, when the crossing was overdue, or when the arrival without "
        "the route's crossings was recorded)"
    )
    recorded_at: datetime
    office: str | None
    lat: float | None
    lon: float | None
    details: dict[str, Any] = Field(
        description="What the rule found; for `unrecorded-crossings`: `missing` (each crossing's country, "
        "direction, office and its name), `addressed_to` (the departure country and the countries whose crossings "
        "are missing) and a `summary` naming them"
    )
    device_id: str | None = Field(
        description="The e-seal device whose ping raised the alert (null for overdue and unrecorded crossings)"
    )
    client_id: str | None = Field(
        description="The API client (of the raising node) that reported that ping; null for overdue and unrecorded "
        "crossings"
    )
    event_id: str | None = Field(description="The tracking event of this alert on the consignment's timeline")
    acknowledged_at: datetime | None
    acknowledged_note: str | None
    closed_at: datetime | None
    closed_note: str | None

    model_config = ConfigDict(from_attributes=True)


class AlertPage(Page[AlertOut]):
    pass


class AlertNote(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "Driver called: diverted around road works near Taraz."}]},
    )

    note: Annotated[str, Printable] = Field(min_length=1, max_length=2000)


@router.get(
    "/v1/alerts",
    operation_id="alerts_list",
    summary="Alerts held by this node (its own and those shared by the route), oldest first",
    response_model=AlertPage,
    responses=responses(401, 403, 422),
)
async def list_alerts(
    principal: Customs,
    session: SessionDep,
    status: AlertStatus | None = None,
    mrn: Annotated[str | None, Query(pattern=r"^[0-9]{2}[A-Z]{2}[A-Z0-9]{12}[JKL][0-9]$")] = None,
    cursor: Annotated[str | None, Query(pattern=UUID_PATTERN, description="`next` of the page before")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertPage:
    statement = select(TrackingAlert).order_by(TrackingAlert.id).limit(limit + 1)
    if status:
        statement = statement.where(TrackingAlert.status == status)
    if mrn:
        statement = statement.where(TrackingAlert.mrn == mrn)
    if cursor:
        statement = statement.where(TrackingAlert.id > cursor)
    rows = list((await session.scalars(statement)).all())
    page = rows[:limit]
    return AlertPage(
        items=[AlertOut.model_validate(row) for row in page],
        next=page[-1].id if len(rows) > limit else None,
    )


async def _alert(session: AsyncSession, alert_id: str) -> TrackingAlert:
    alert = await session.get(TrackingAlert, alert_id, with_for_update=session.get_bind().dialect.name == "postgresql")
    if alert is None:
        raise NotFound(f"no alert {alert_id} at this node")
    return alert


@router.post(
    "/v1/alerts/{alert_id}/acknowledge",
    operation_id="alerts_acknowledge",
    summary="Customs have seen the alert and are dealing with it",
    response_model=AlertOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def acknowledge(alert_id: AlertId, request: AlertNote, principal: Customs, session: SessionDep) -> AlertOut:
    alert = await _alert(session, alert_id)
    if alert.status != "open":
        raise Conflict(f"alert {alert_id} is {alert.status}; only an open alert can be acknowledged")
    alert.status = "acknowledged"
    alert.acknowledged_at = clock.utcnow()
    alert.acknowledged_by = principal.client_id
    alert.acknowledged_note = request.note
    await session.flush()
    return AlertOut.model_validate(alert)


@router.post(
    "/v1/alerts/{alert_id}/close",
    operation_id="alerts_close",
    summary="Close the alert with a note; the same rule may then raise a new alert on this movement",
    response_model=AlertOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def close(alert_id: AlertId, request: AlertNote, principal: Customs, session: SessionDep) -> AlertOut:
    alert = await _alert(session, alert_id)
    if alert.status == "closed":
        raise Conflict(f"alert {alert_id} is already closed")
    alert.status = "closed"
    alert.closed_at = clock.utcnow()
    alert.closed_by = principal.client_id
    alert.closed_note = request.note
    alert.open_key = None
    await session.flush()
    return AlertOut.model_validate(alert)
