"""The e-seal rules over a movement's new pings (route-deviation, long-stop, seal-opened), with the movement's last
known state (last position, the stop in progress) read from and written back to `tracking_position_states`, so a
long stop that spans batches is seen and a repeated batch raises nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from transit_window import clock
from transit_window.codes import geo
from transit_window.codes.of_node import offices_of
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.declarations.interface import Movement
from transit_window.tracking import alerts
from transit_window.tracking.messages import RULES, Rule
from transit_window.tracking.models import TrackingAlert, TrackingPositionState
from transit_window.tracking.positions import OPENED, Ping, Vector

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.codes import OfficeDirectory
    from transit_window.protocol.node import Node
    from transit_window.settings import Settings

# -- rules -------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class State:
    last_time: datetime
    lat: float
    lon: float
    seal_state: str
    segment: int
    still_since: datetime
    still_lat: float
    still_lon: float
    stop_alerted: bool


STATE_COLUMNS = tuple(field.name for field in fields(State))


async def _states(session: AsyncSession, mrns: list[str]) -> dict[str, State]:
    found: dict[str, State] = {}
    for start in range(0, len(mrns), 500):
        rows = await session.scalars(
            select(TrackingPositionState).where(TrackingPositionState.mrn.in_(mrns[start : start + 500]))
        )
        for row in rows:
            found[row.mrn] = State(**{name: getattr(row, name) for name in STATE_COLUMNS})
    return found


async def _save_states(session: AsyncSession, states: dict[str, State]) -> None:
    if not states:
        return
    now = clock.utcnow()
    rows = [
        {"mrn": mrn, **{name: getattr(state, name) for name in STATE_COLUMNS}, "updated_at": now}
        for mrn, state in states.items()
    ]
    table = table_of(TrackingPositionState)
    statement: Any = dialect_of(session).insert(table).values(rows)  # one statement for the batch's movements
    statement = statement.on_conflict_do_update(
        index_elements=["mrn"], set_={name: statement.excluded[name] for name in (*STATE_COLUMNS, "updated_at")}
    )
    await session.execute(statement)


class Places:
    """The offices as unit vectors, for "is this point at an office", trying the last office found first."""

    def __init__(self, offices: OfficeDirectory, radius_km: float) -> None:
        self.codes = [office.code for office in offices]
        self.vectors = [geo.unit(office.lat, office.lon) for office in offices]
        self.chord2 = geo.chord_squared(radius_km)
        self.last = 0

    def office_near(self, p: Vector) -> str | None:
        count = len(self.vectors)
        x, y, z = p
        for step in range(count):
            index = (self.last + step) % count
            office = self.vectors[index]
            if (x - office[0]) ** 2 + (y - office[1]) ** 2 + (z - office[2]) ** 2 <= self.chord2:
                self.last = index
                return self.codes[index]
        return None


@lru_cache(maxsize=1024)
def _route(codes: tuple[str, ...], limit_km: float, offices: OfficeDirectory) -> geo.Route:
    points: list[geo.Point] = []
    for code in codes:
        office = offices.get(code)
        if office is not None and (not points or points[-1] != (office.lat, office.lon)):
            points.append((office.lat, office.lon))
    return geo.Route(points, limit_km)


def route_of(movement: Movement, offices: OfficeDirectory, limit_km: float) -> geo.Route:
    """The line through the itinerary's offices (partner offices of one crossing share a point)."""
    return _route(tuple(movement.offices), limit_km, offices)


@dataclass(slots=True)
class Finding:
    rule: Rule
    ping: Ping
    lat: float
    lon: float
    office: str | None
    details: dict[str, Any]


def evaluate(
    pings: Sequence[Ping],
    state: State | None,
    *,
    route: geo.Route | None,
    places: Places,
    settings: Settings,
    skip: set[str],
) -> tuple[list[Finding], State]:
    """The rules over one movement's new pings (in time order), pure: the findings (at most one per rule, none
    for a rule in `skip`) and the movement's new state."""
    findings: list[Finding] = []
    found: set[str] = set(skip)
    ordered = sorted(pings, key=lambda ping: ping.time)
    segment = state.segment if state else 0
    long_stop = timedelta(minutes=settings.long_stop_minutes)
    still_chord2 = geo.chord_squared(settings.stop_radius_km)
    still = geo.unit(state.still_lat, state.still_lon) if state else (0.0, 0.0, 0.0)
    for ping in ordered:
        p = geo.unit(ping.lat, ping.lon)
        if route is not None and route.segments:
            inside, segment = route.within(p, segment)
            if not inside and "route-deviation" not in found:
                found.add("route-deviation")
                details = {
                    "distance_km": round(route.distance_km(ping.lat, ping.lon), 1),
                    "corridor_km": settings.route_corridor_km,
                    "device_id": ping.device_id,
                }
                findings.append(Finding("route-deviation", ping, ping.lat, ping.lon, None, details))
        if ping.seal_state in OPENED and "seal-opened" not in found and places.office_near(p) is None:
            found.add("seal-opened")
            details = {"seal_state": ping.seal_state, "device_id": ping.device_id}
            findings.append(Finding("seal-opened", ping, ping.lat, ping.lon, None, details))
        if state is not None and ping.time <= state.last_time:
            continue  # a late ping: checked above, but it does not move the truck back in time
        if state is None or (p[0] - still[0]) ** 2 + (p[1] - still[1]) ** 2 + (p[2] - still[2]) ** 2 > still_chord2:
            # moving: this ping is where a stop would start
            state = State(ping.time, ping.lat, ping.lon, ping.seal_state, segment, ping.time, ping.lat, ping.lon, False)
            still = p
            continue
        state.last_time, state.lat, state.lon, state.seal_state = ping.time, ping.lat, ping.lon, ping.seal_state
        if not state.stop_alerted and ping.time - state.still_since >= long_stop:
            state.stop_alerted = True  # this stop is judged once
            if places.office_near(still) is None and "long-stop" not in found:
                found.add("long-stop")
                minutes = (ping.time - state.still_since).total_seconds() / 60
                details = {
                    "minutes": round(minutes),
                    "since": clock.isoformat(state.still_since),
                    "device_id": ping.device_id,
                }
                findings.append(Finding("long-stop", ping, state.still_lat, state.still_lon, None, details))
    assert state is not None
    state.segment = segment
    return findings, state


async def apply_rules(
    session: AsyncSession, node: Node, movements: dict[str, Movement], pings: list[Ping], *, client_id: str
) -> list[TrackingAlert]:
    """Run the rules on the new pings, movement by movement; raise what they find (each alert naming the device of
    the ping that raised it and `client_id`, who sent it: customs can tell a real detour from a bad device); keep
    each movement's state."""
    if not pings:
        return []
    by_mrn: dict[str, list[Ping]] = {}
    for ping in pings:
        by_mrn.setdefault(ping.mrn, []).append(ping)
    mrns = sorted(by_mrn)
    states = await _states(session, mrns)
    already = await alerts.open_rules(session, mrns)
    offices = offices_of(node)
    places = Places(offices, node.settings.office_radius_km)
    raised: list[TrackingAlert] = []
    for mrn in mrns:
        movement = movements[mrn]
        watched = movement.status in alerts.WATCHED
        skip: set[str] = {rule for key, rule in already if key == mrn} if watched else set(RULES)
        findings, states[mrn] = evaluate(
            by_mrn[mrn],
            states.get(mrn),
            route=route_of(movement, offices, node.settings.route_corridor_km) if watched else None,
            places=places,
            settings=node.settings,
            skip=skip,
        )
        for finding in findings:
            alert = await alerts.raise_alert(
                session,
                node,
                movement,
                rule=finding.rule,
                at=finding.ping.time,
                lat=finding.lat,
                lon=finding.lon,
                office=finding.office,
                details=finding.details,
                device_id=finding.ping.device_id,
                client_id=client_id,
            )
            if alert is not None:
                raised.append(alert)
    await _save_states(session, states)
    return raised
