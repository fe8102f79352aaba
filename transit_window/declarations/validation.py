"""The rules of a transit declaration that need reference data, as NCTS-style functional errors.

Each problem is a `FieldError` with a JSON pointer into the request body, an NCTS code (12 code-list violation,
13 missing, 14 rule violation, 15 not allowed) and a sentence a clerk can act on. All problems are collected, not
just the first, so one correction round is enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from itertools import pairwise

from transit_window.codes import (
    HsNomenclature,
    InvalidCode,
    Office,
    OfficeDirectory,
    decimals_beyond,
    is_country,
    is_currency,
    normalise_plate,
    plate_warnings,
    time_zone,
    validate_container,
    validate_grn,
    validate_hs6,
    validate_trader_id,
)
from transit_window.codes.geo import haversine_km
from transit_window.declarations.schemas import DeclarationIn
from transit_window.errors import FieldError

MAX_TRANSIT_DAYS = 90
CROSSING_ROLES = ("border", "port")


@dataclass(slots=True)
class Checked:
    """The outcome: problems, warnings, and the normalised values derived on the way."""

    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    offices: list[Office] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    plate: str = ""
    trailer_plate: str | None = None

    def fail(self, pointer: str, detail: str, code: str = "14") -> None:
        self.errors.append(FieldError(pointer=f"/body{pointer}", detail=detail, code=code))


def check_declaration(
    declaration: DeclarationIn, *, node_country: str, offices: OfficeDirectory, hs: HsNomenclature, today: date
) -> Checked:
    checked = Checked()
    _parties(declaration, checked)
    _vehicle(declaration, checked)
    for index, container in enumerate(declaration.containers):
        reason = validate_container(container)
        if reason:
            checked.fail(f"/containers/{index}", reason, "12")
    if len(set(declaration.containers)) != len(declaration.containers):
        checked.fail("/containers", "a container is listed twice", "14")
    _goods(declaration, checked, hs)
    _itinerary(declaration, checked, node_country=node_country, offices=offices)
    _guarantee(declaration, checked)
    for index, document in enumerate(declaration.documents):
        if not is_country(document.country):
            checked.fail(f"/documents/{index}/country", f"{document.country!r} is not an ISO 3166-1 country", "12")
    if declaration.limit_date is None:
        pass  # the office of departure sets it (`default_limit_date`)
    elif declaration.limit_date < today:
        checked.fail("/limit_date", f"the limit date {declaration.limit_date} is in the past (today is {today})")
    elif declaration.limit_date > today + timedelta(days=MAX_TRANSIT_DAYS):
        checked.fail("/limit_date", f"the limit date may be at most {MAX_TRANSIT_DAYS} days ahead")
    return checked


def default_limit_date(offices: list[Office], *, now: datetime, speed_kmh: float, grace: timedelta) -> date:
    """The limit date the office of departure sets when the declaration names none (NCTS: the office of departure
    prescribes the time limit from the itinerary). The truck is due at destination after the great-circle distance
    along the itinerary at `speed_kmh` plus `grace` — when the overdue-crossing alert would reckon it late — and has
    to the end of the next day of the destination's calendar to present the goods. Never past `MAX_TRANSIT_DAYS`."""
    distance = sum(haversine_km(here.lat, here.lon, there.lat, there.lon) for here, there in pairwise(offices))
    due = now + timedelta(hours=distance / speed_kmh) + grace
    try:
        zone: tzinfo = time_zone(offices[-1].country)
    except InvalidCode:  # an operator's office in a country the corridor keeps no calendar for
        zone = UTC
    day = due.astimezone(zone).date() + timedelta(days=1)
    return min(day, now.date() + timedelta(days=MAX_TRANSIT_DAYS))


def _parties(declaration: DeclarationIn, checked: Checked) -> None:
    for role in ("declarant", "consignor", "consignee", "carrier"):
        party = getattr(declaration, role)
        if not is_country(party.country):
            checked.fail(f"/{role}/country", f"{party.country!r} is not an ISO 3166-1 country code", "12")
            continue
        reason = validate_trader_id(party.country, party.id)
        if reason:
            checked.fail(f"/{role}/id", f"{role} id: {reason}", "12")


def _vehicle(declaration: DeclarationIn, checked: Checked) -> None:
    vehicle = declaration.vehicle
    if not is_country(vehicle.country):
        checked.fail("/vehicle/country", f"{vehicle.country!r} is not an ISO 3166-1 country code", "12")
    for name in ("plate", "trailer_plate"):
        raw = getattr(vehicle, name)
        if raw is None:
            continue
        try:
            plate = normalise_plate(raw)
        except InvalidCode as exc:
            checked.fail(f"/vehicle/{name}", str(exc), "12")
            continue
        if name == "plate":
            checked.plate = plate
        else:
            checked.trailer_plate = plate
        if is_country(vehicle.country):
            checked.warnings.extend(plate_warnings(vehicle.country, plate))


def _goods(declaration: DeclarationIn, checked: Checked, hs: HsNomenclature) -> None:
    for index, item in enumerate(declaration.goods):
        where = f"/goods/{index}"
        reason = validate_hs6(item.hs_code, hs)
        if reason:
            checked.fail(f"{where}/hs_code", reason, "12")
        if item.net_mass_kg > item.gross_mass_kg:
            checked.fail(
                f"{where}/net_mass_kg",
                f"net mass {item.net_mass_kg} kg is more than the gross mass {item.gross_mass_kg} kg",
            )
        _amount(checked, f"{where}/value", item.value, item.currency, f"{where}/currency")


def check_amount(pointer: str, amount: Decimal, currency: str, currency_pointer: str) -> FieldError | None:
    """An amount of money: its currency must be one whose minor unit the corridor knows, and the amount a whole
    number of that unit (a wrong format for the currency: code 12). Pointers are full (`/body/...`)."""
    if not is_currency(currency):
        return FieldError(currency_pointer, f"{currency!r} is not an ISO 4217 currency code", "12")
    try:
        reason = decimals_beyond(amount, currency)
    except InvalidCode as exc:
        return FieldError(currency_pointer, str(exc), "12")
    return FieldError(pointer, reason, "12") if reason else None


def _amount(checked: Checked, pointer: str, amount: Decimal, currency: str, currency_pointer: str) -> None:
    error = check_amount(f"/body{pointer}", amount, currency, f"/body{currency_pointer}")
    if error is not None:
        checked.errors.append(error)


def _itinerary(declaration: DeclarationIn, checked: Checked, *, node_country: str, offices: OfficeDirectory) -> None:
    known: list[Office] = []
    for index, code in enumerate(declaration.itinerary):
        office = offices.get(code)
        if office is None:
            checked.fail(f"/itinerary/{index}", f"no customs office {code!r} in the corridor directory", "12")
        else:
            known.append(office)
    if len(known) != len(declaration.itinerary):
        return
    if len(set(declaration.itinerary)) != len(declaration.itinerary):
        checked.fail("/itinerary", "an office appears twice in the itinerary")
        return
    departure, destination = known[0], known[-1]
    if departure.country != node_country:
        checked.fail(
            "/itinerary/0",
            f"the itinerary starts at {departure.code} in {departure.country}; declarations lodged at this node "
            f"must start at an office of {node_country}",
        )
    countries: list[str] = []
    for office in known:
        if not countries or countries[-1] != office.country:
            countries.append(office.country)
    if len(set(countries)) != len(countries):
        checked.fail("/itinerary", f"the route {' → '.join(countries)} enters a country twice")
    if destination.role == "border" and len(countries) > 1:
        checked.fail(f"/itinerary/{len(known) - 1}", f"the destination {destination.code} is a border post")
    for index in range(len(known) - 1):
        here, there = known[index], known[index + 1]
        if here.country == there.country:
            continue
        for position, office, role in ((index, here, "exit"), (index + 1, there, "entry")):
            if office.role not in CROSSING_ROLES:
                checked.fail(
                    f"/itinerary/{position}",
                    f"the route crosses from {here.country} to {there.country}, so office {position + 1} must be the "
                    f"{role} border post or port; {office.code} ({office.name}) is an inland office",
                )
    for index, office in enumerate(known):
        if office.role == "border" and office.faces not in countries:
            checked.fail(
                f"/itinerary/{index}",
                f"{office.code} ({office.name}) is a border post towards {office.faces}, which is not on the route "
                f"{' → '.join(countries)}",
            )
    checked.offices = known
    checked.countries = countries


def _guarantee(declaration: DeclarationIn, checked: Checked) -> None:
    guarantee = declaration.guarantee
    reason = validate_grn(guarantee.grn)
    if reason:
        checked.fail("/guarantee/grn", reason, "12")
    _amount(checked, "/guarantee/amount", guarantee.amount, guarantee.currency, "/guarantee/currency")
