"""The release gate's question for road permits (`declarations.ports.ReleasePapers`): every permit the carrier needs
on this route (`PermitRules.needs`), present at this node, for this carrier and truck, not revoked or used up, and
valid when it will be used: at release for the country the truck leaves from, and over the whole time the truck may
enter each later country (`Window`), by one permit or by a year's permit and the next one's together. Not through
the limit date: a truck released on 20 December for a trip ending in January needs permits valid when it crosses,
which the year-end grace of `years.py` may or may not give.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from transit_window import clock
from transit_window.codes.geo import haversine_km
from transit_window.codes.of_node import offices_of, rules_of
from transit_window.declarations.ports import Missing, MovementPapers, PapersVerdict
from transit_window.permits.models import Permit
from transit_window.permits.service import effective_status, years_of
from transit_window.permits.years import local_text, local_today

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.node import Node


class PermitsCheck:
    """`ReleasePapers` for road permits; nothing to do at release (a permit is used when the truck crosses)."""

    async def check(self, session: AsyncSession, node: Node, movement: MovementPapers) -> PapersVerdict:
        missing: list[Missing] = []
        await _permits(session, node, movement, missing)
        return PapersVerdict(missing=missing)


@dataclass(frozen=True, slots=True)
class Window:
    """When the truck may enter a country: from the earliest (the great-circle distance along the itinerary at the
    fastest a loaded lorry goes, `TW_PERMIT_MAX_SPEED_KMH`, no stop) to the latest (at `TW_EXPECTED_SPEED_KMH` plus
    `TW_CROSSING_GRACE_MINUTES`, when the overdue-crossing alert would fire). Both are `now` for the country the
    truck leaves from."""

    earliest: datetime
    latest: datetime


def entry_windows(node: Node, movement: MovementPapers, *, now: datetime) -> dict[str, Window]:
    offices = offices_of(node)
    fastest = node.settings.permit_max_speed_kmh
    expected = node.settings.expected_speed_kmh
    grace = timedelta(minutes=node.settings.crossing_grace_minutes)
    codes = list(movement.offices)
    first = offices.get(codes[0]) if codes else None
    windows: dict[str, Window] = {first.country: Window(now, now)} if first else {}
    distance = 0.0
    previous = first
    for code in codes[1:]:
        office = offices.get(code)
        if office is None:
            continue
        if previous is not None:
            distance += haversine_km(previous.lat, previous.lon, office.lat, office.lon)
        windows.setdefault(
            office.country,
            Window(now + timedelta(hours=distance / fastest), now + timedelta(hours=distance / expected) + grace),
        )
        previous = office
    return windows


def _covering(permits: list[Permit], window: Window) -> list[Permit] | None:
    """Permits whose validity together covers the window without a gap (a year-Y permit, then the Y+1 one from
    midnight), fewest first; None when no combination does."""
    chosen: list[Permit] = []
    reached = window.earliest
    for permit in sorted(permits, key=lambda item: (item.valid_from, -item.expires_at.timestamp())):
        if permit.valid_from > reached:
            break  # a gap before this permit starts
        if permit.expires_at > reached:
            chosen.append(permit)
            reached = permit.expires_at
            if reached > window.latest:
                return chosen
    return None


async def _permits(session: AsyncSession, node: Node, movement: MovementPapers, missing: list[Missing]) -> list[Permit]:
    record: dict[str, Any] = movement.record
    carrier = record["carrier"]
    vehicle = record["vehicle"]
    plate = str(vehicle["plate"])
    carrier_country = str(carrier["country"])
    now = clock.utcnow()
    windows = entry_windows(node, movement, now=now)
    departure = next(iter(windows), None)
    years = years_of(node)
    cleared: list[Permit] = []
    for need in rules_of(node).needs(carrier_country=carrier_country, route=list(movement.countries)):
        if not need.required:
            continue
        window = windows.get(need.country, Window(now, now))
        if need.country == departure:
            when = "at release"
        else:
            when = (
                f"when the truck may enter {need.country}, from {local_text(need.country, window.earliest)} to "
                f"{local_text(need.country, window.latest)}"
            )
        candidates = (
            await session.scalars(
                select(Permit)
                .where(
                    Permit.issuer == need.country,
                    Permit.holder == carrier_country,
                    Permit.type == need.type,
                    Permit.carrier_id == str(carrier["id"]),
                )
                .order_by(Permit.valid_from)
            )
        ).all()
        problems: list[str] = []
        usable: list[Permit] = []
        for permit in candidates:
            status = effective_status(permit, now)
            if permit.plate != plate:
                problems.append(f"{permit.id} is for truck {permit.plate}, not {plate}")
            elif status in ("revoked", "consumed"):
                problems.append(f"{permit.id} is {status}")
            elif permit.entries >= permit.trips:
                problems.append(f"{permit.id} has no trip left ({permit.entries} of {permit.trips} entered)")
            elif permit.expires_at <= window.earliest or permit.valid_from > window.latest:
                problems.append(
                    f"{permit.id} is valid from {clock.isoformat(permit.valid_from)} until "
                    f"{clock.isoformat(permit.expires_at)}"
                )
            else:
                usable.append(permit)
        covering = _covering(usable, window)
        if covering is not None:
            cleared.extend(covering)
            continue
        if usable:
            spans = ", ".join(
                f"{permit.id} from {clock.isoformat(permit.valid_from)} until {clock.isoformat(permit.expires_at)}"
                for permit in usable
            )
            problems.append(f"{spans}: not the whole of that time")
        wanted = (
            f"a {need.type} permit of {need.country} for carrier {carrier['id']} ({carrier_country}) and truck {plate}"
            f", valid {when}"
        )
        detail = f"{wanted}: " + ("; ".join(problems) if problems else f"none is known at {node.id}")
        extra = {"needed_from": clock.isoformat(window.earliest), "needed_at": clock.isoformat(window.latest)}
        year = local_today(need.country, window.latest).year
        if year > local_today(need.country, now).year:
            terms = years.terms(issuer=need.country, type=need.type, year=year, quota=None)
            closed = years.why_closed(issuer=need.country, type=need.type, year=year, quota=None, now=now)
            detail += f"; the truck may enter in {year}: " + (
                closed if closed else f"{need.country}'s {year} quotas are open (since {terms.opens_on})"
            )
            extra |= {"next_year": str(year), "next_year_opens": terms.opens_on.isoformat()}
        missing.append(Missing("permit", need.type, need.country, detail, extra))
    return cleared
