"""The two checks on a movement's border crossings, run by the periodic loop (`tasks.py`) and at an arrival:

- overdue: a released movement not seen at its next border post by when a lorry at `TW_EXPECTED_SPEED_KMH` plus
  `TW_CROSSING_GRACE_MINUTES` would have reached it raises `overdue-crossing`;
- unrecorded: an arrival recorded here whose journey lacks crossings of the route asks their countries at once and,
  after `TW_UNRECORDED_CROSSINGS_WAIT_MINUTES`, raises `unrecorded-crossings` for what is still missing.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select

from transit_window import clock
from transit_window.codes import geo
from transit_window.codes.of_node import offices_of
from transit_window.db.session import unit_of_work
from transit_window.declarations.interface import Movement, MovementStep, StatusRequestBody
from transit_window.protocol import outbox
from transit_window.tracking.alerts import (
    WATCHED,
    open_rules,
    raise_alert,
)
from transit_window.tracking.models import TrackingAlert

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.codes import OfficeDirectory
    from transit_window.protocol.node import Node

logger = logging.getLogger(__name__)
OVERDUE_PAGE = 500
UNRECORDED_LOOKBACK = timedelta(days=7)  # arrivals older than this (a node down a week) are not looked at


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
