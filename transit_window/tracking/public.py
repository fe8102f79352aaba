"""What anyone holding a tracking code sees, in English or Russian: `GET /v1/track/{code}` and the /track page.

Owns the public words for places, times and alerts, so the JSON view and the page say the same thing:

- a place is an office by the name its reader knows (`Office.name_in`), with its country beside it when another
  place of the same view goes by the same name (the Uzbek Alat at the Farap crossing and Azerbaijan's port of Alat);
- a time is the local time of the office where the step happened, with its offset, to the minute (the office's
  country time zone, `codes.time_zone`); `display` is the one way a person reads it;
- an alert says its rule, where it was raised and its measure (how far off the route, how long stopped, when a
  crossing was due). An alert on the road is placed on the stretch of the route between the last office passed
  and the next one: never at the ping's coordinates, which are for customs (issue 13).

It shows no goods value, party, plate or device, and never a string a peer put in an alert's details: only numbers
checked here and names from this node's office directory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from transit_window import clock
from transit_window.codes.of_node import offices_of
from transit_window.declarations import interface as declarations
from transit_window.declarations.interface import Movement
from transit_window.errors import NotFound
from transit_window.tracking import codes, timeline, vocabulary
from transit_window.tracking.events import office_timezone
from transit_window.tracking.schemas import Place, PublicStep, PublicTrack

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.codes import Office, OfficeDirectory
    from transit_window.protocol.node import Node
    from transit_window.tracking.models import TrackingEvent

DESK_STEPS = frozenset({"closed", "cancelled"})  # recorded at the departure office's desk, not where the truck is
ALERT_KINDS = frozenset({"alert", "seal-opened"})
GENERIC_WORDS = frozenset({"port", "порт"})  # "Alat port" is still a place called Alat

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "between": "between {a} and {b}",
        "after": "after {a}",
        "off_route": "{km} km off the route",
        "stopped": "stopped for {duration}",
        "hours": "{h} h {m} min",
        "minutes": "{m} min",
        "open": "away from a customs office",
        "tampered": "tampered with, away from a customs office",
        "due": "due at {office} by {time}",
        "due_from": "due at {office} by {time}, {km} km from {last}",
        "unrecorded": "arrived with no record of: {crossings}",
        "exit": "exit at {place}",
        "entry": "entry at {place}",
    },
    "ru": {
        "between": "на участке {a} — {b}",
        "after": "после пункта {a}",
        "off_route": "{km} км от маршрута",
        "stopped": "стоянка {duration}",
        "hours": "{h} ч {m} мин",
        "minutes": "{m} мин",
        "open": "вне таможенного поста",
        "tampered": "повреждена, вне таможенного поста",
        "due": "ожидалось на посту {office} до {time}",
        "due_from": "ожидалось на посту {office} до {time}, {km} км от пункта {last}",
        "unrecorded": "прибыл, но не зарегистрированы: {crossings}",
        "exit": "выезд — {place}",
        "entry": "въезд — {place}",
    },
}


# -- times -------------------------------------------------------------------------------------------------------


def local_iso(moment: datetime, country: str) -> str:
    """RFC 3339 in the local time of `country`, to the minute: '2026-05-01T14:03+05:00'."""
    return moment.astimezone(office_timezone(country)).isoformat(timespec="minutes")


def display(value: str) -> str:
    """'2026-05-01T14:03+05:00' → '2026-05-01 14:03 UTC+05:00': how every time on the page reads (static/track.js
    does the same, from the same text, so the browser's own time zone never enters)."""
    date, _, rest = value.partition("T")
    return f"{date} {rest[:5]} UTC{rest[5:]}" if rest else value


# -- places ------------------------------------------------------------------------------------------------------


def _short(name: str) -> str:
    """'Alat (Uzbek side of the Farap crossing)' → 'Alat': the explanation in brackets is for the directory."""
    return name.split(" (")[0].strip()


def _locality(office: Office) -> str:
    """What a reader takes the place to be called, compared in English ('Alat port' and 'Alat' are both Alat; in
    Russian they are Алят and Алат, no less confusable)."""
    return " ".join(word for word in _short(office.name).casefold().split() if word not in GENERIC_WORDS)


def place_names(codes: Iterable[str], offices: OfficeDirectory, *, lang: str) -> dict[str, str]:
    """The name of each office among `codes` (those the directory knows) as the view shows it: short, in `lang`,
    with its country in brackets when another of these offices, in another country, goes by the same name."""
    known = [office for code in dict.fromkeys(codes) if (office := offices.get(code)) is not None]
    countries: dict[str, set[str]] = {}
    for office in known:
        countries.setdefault(_locality(office), set()).add(office.country)
    names = {}
    for office in known:
        name = _short(office.name_in(lang))
        if len(countries[_locality(office)]) > 1:
            name = f"{name} ({country_name(office.country, lang)})"
        names[office.code] = name
    return names


def country_name(code: str, lang: str) -> str:
    return vocabulary.COUNTRY_NAMES[lang].get(code, code)


def _place(code: str | None, country: str, offices: OfficeDirectory, names: dict[str, str]) -> Place:
    office = offices.get(code) if code else None
    if office is None:
        return Place(office=code, country=country)
    return Place(
        office=office.code, name=names.get(office.code), country=office.country, lat=office.lat, lon=office.lon
    )


# -- alerts ------------------------------------------------------------------------------------------------------


def _number(value: Any, *, limit: float) -> float | None:
    """A measure from an alert's details, if it is one: a finite number from 0 to `limit` (a peer's details are
    not trusted to be either)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0 <= value <= limit else None


def _decimal(value: float, lang: str) -> str:
    text = f"{value:.1f}".removesuffix(".0")
    return text.replace(".", ",") if lang == "ru" else text


def _duration(minutes: int, lang: str) -> str:
    words = WORDS[lang]
    if minutes < 60:
        return words["minutes"].format(m=minutes)
    return words["hours"].format(h=minutes // 60, m=minutes % 60)


def _rule(event: TrackingEvent) -> str | None:
    rule = event.details.get("rule")
    if isinstance(rule, str) and rule in vocabulary.ALERT_RULES:
        return rule
    return "seal-opened" if event.kind == "seal-opened" else None


def _stretch(start: str | None, end: str | None, names: dict[str, str], lang: str) -> str | None:
    """'between Almaty and Zhibek Zholy': where on the route an alert without an office was raised."""
    if start is None or start not in names:
        return None
    if end is None or end not in names:
        return WORDS[lang]["after"].format(a=names[start])
    return WORDS[lang]["between"].format(a=names[start], b=names[end])


@dataclass(frozen=True, slots=True)
class _Measure:
    detail: str | None = None
    distance_km: float | None = None
    minutes: int | None = None


def _measure(
    rule: str | None, details: dict[str, Any], *, offices: OfficeDirectory, names: dict[str, str], lang: str
) -> _Measure:
    words = WORDS[lang]
    if rule == "route-deviation":
        km = _number(details.get("distance_km"), limit=40_000)
        return (
            _Measure(words["off_route"].format(km=_decimal(km, lang)), distance_km=km) if km is not None else _Measure()
        )
    if rule == "long-stop":
        minutes = _number(details.get("minutes"), limit=525_600)
        if minutes is None:
            return _Measure()
        return _Measure(words["stopped"].format(duration=_duration(round(minutes), lang)), minutes=round(minutes))
    if rule == "seal-opened":
        return _Measure(words["tampered"] if details.get("seal_state") == "tampered" else words["open"])
    if rule == "overdue-crossing":
        office = offices.get(str(details.get("next_office")))
        try:
            due = clock.parse(str(details.get("expected_by")))
        except ValueError:
            return _Measure()
        if office is None or office.code not in names:
            return _Measure()
        time = display(local_iso(due, office.country))
        km = _number(details.get("distance_km"), limit=40_000)
        last = str(details.get("last_office"))
        if km is None or last not in names:
            return _Measure(words["due"].format(office=names[office.code], time=time))
        text = words["due_from"].format(office=names[office.code], time=time, km=_decimal(km, lang), last=names[last])
        return _Measure(text, distance_km=km)
    if rule == "unrecorded-crossings":
        missing = details.get("missing")
        crossings = [
            words[item["direction"]].format(place=names.get(str(item.get("office")), str(item.get("office"))))
            for item in (missing if isinstance(missing, list) else [])
            if isinstance(item, dict) and item.get("direction") in ("exit", "entry")
        ]
        return _Measure(words["unrecorded"].format(crossings=", ".join(crossings))) if crossings else _Measure()
    return _Measure()


# -- the view ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Steps:
    steps: list[PublicStep]
    zone: str | None  # the country whose time the last step is shown in


def _next_on_route(office: str, itinerary: list[str]) -> str | None:
    if office not in itinerary:
        return None
    index = itinerary.index(office)
    return itinerary[index + 1] if index + 1 < len(itinerary) else None


def public_steps(
    events: list[TrackingEvent], *, itinerary: list[str], offices: OfficeDirectory, names: dict[str, str], lang: str
) -> Steps:
    """The timeline in `lang`, oldest first: each step at its office's local time; each alert by its rule, where
    and how much."""
    steps = []
    passed: str | None = None  # the last office the truck was at
    zone: str | None = None
    for event in events:
        words = vocabulary.of(event.kind)
        office = offices.get(event.office) if event.office else None
        zone = office.country if office else event.country
        place = names.get(office.code) if office else None
        label = words.label_ru if lang == "ru" else words.label_en
        alert = event.kind in ALERT_KINDS
        rule = _rule(event) if alert else None
        measure = _Measure()
        if alert:
            if rule is not None:
                label = vocabulary.ALERT_RULES[rule][1 if lang == "ru" else 0]
            measure = _measure(rule, event.details, offices=offices, names=names, lang=lang)
            if office is None:
                start = str(event.details.get("last_office")) if rule == "overdue-crossing" else passed
                start = start if start in names else None
                end = str(event.details.get("next_office")) if rule == "overdue-crossing" else None
                place = _stretch(start, end or (_next_on_route(start, itinerary) if start else None), names, lang)
                zone = offices.require(start).country if start else event.country
        elif office is not None and event.kind not in DESK_STEPS:
            passed = office.code
        steps.append(
            PublicStep(
                step=event.kind,
                label=label,
                office=event.office,
                place=place,
                country=event.country,
                time=local_iso(event.event_time, zone),
                alert=alert,
                rule=rule,
                detail=measure.detail,
                distance_km=measure.distance_km,
                minutes=measure.minutes,
            )
        )
    return Steps(steps, zone)


def _last_place(events: list[TrackingEvent], offices: OfficeDirectory, names: dict[str, str]) -> Place | None:
    """Where the public may think the truck is: the last office it passed (not the desk that wrote the movement
    off), and that office's country. Never a position from an e-seal ping: the raw track of a truck is for customs
    (and a forged ping once moved this)."""
    for event in reversed(events):
        if event.office and event.kind not in DESK_STEPS and event.kind not in ALERT_KINDS:
            return _place(event.office, event.country, offices, names)
    for event in reversed(events):
        if event.office:
            return _place(event.office, event.country, offices, names)
    return Place(office=None, country=events[-1].country) if events else None


async def public_view(session: AsyncSession, node: Node, code: str, *, lang: str = "en") -> PublicTrack:
    """The consignment behind `code` as the public sees it; `NotFound` for a code unknown or rotated."""
    mrn = await codes.mrn_of(session, code)
    movement = await session.scalar(select(Movement).where(Movement.mrn == mrn)) if mrn else None
    if movement is None:
        raise NotFound("no consignment with this tracking code (it may have been rotated)")
    offices = offices_of(node)
    events = await timeline.timeline(session, movement.mrn)
    itinerary = list(movement.offices)
    mentioned = [str(event.details.get(key)) for event in events for key in ("last_office", "next_office")]
    names = place_names(
        [*itinerary, *(event.office for event in events if event.office), *mentioned], offices, lang=lang
    )
    built = public_steps(events, itinerary=itinerary, offices=offices, names=names, lang=lang)
    return PublicTrack(
        mrn=movement.mrn,
        status=movement.status,
        final=movement.status in declarations.FINAL,
        countries=movement.countries,
        route=[_place(office, office[:2], offices, names) for office in itinerary],
        current_place=_last_place(events, offices, names),
        timeline=built.steps,
        as_of=local_iso(clock.utcnow(), built.zone or movement.departure_country),
    )
