"""The route map of the tracking page: the itinerary's offices projected into an SVG viewBox.

Hand-written on purpose. A route is a dozen points at most: it needs no mapping library, and the page may load
nothing from the internet (its Content-Security-Policy allows only this node), so there are no map tiles. The
projection is equirectangular — longitude scaled by the cosine of the middle latitude, which keeps shapes right to
within a few per cent across the corridor's 37 to 46° N — fitted to the bounding box of the points and centred.
No coastlines or state borders are drawn: each country is named where its offices are, the legs of the route take
the colour of their country, and a leg between the two posts of one crossing is dashed.

The same projection is written into the SVG as data attributes, so the page's script can place a new position or
alert without a reload (static/track.js).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from transit_window.codes import OfficeDirectory
from transit_window.tracking.schemas import PublicTrack

WIDTH = 640
MIN_HEIGHT = 280
MAX_HEIGHT = 480
PAD_X = 70  # room for the labels of the westernmost and easternmost offices
PAD_Y = 48
MIN_SPAN_DEGREES = 0.8
FONT = 18  # room kept for an office label, in viewBox units: the phone size in track.css (15 on wider screens)
COUNTRY_FONT = 26
COUNTRY_EM = 0.86  # bold capitals, letter-spaced 0.12 em (track.css)
MIN_GAP = 36  # markers closer than this are pushed apart (the two posts of a crossing share coordinates)


AlertAt = tuple[float, float, str, str | None]  # lat, lon, what, office (None on the road)


@dataclass(frozen=True, slots=True)
class Projection:
    west: float
    north: float
    scale: float  # viewBox units per degree of latitude
    cos_lat: float
    ox: float
    oy: float

    def point(self, lat: float, lon: float) -> tuple[float, float]:
        x = self.ox + (lon - self.west) * self.cos_lat * self.scale
        y = self.oy + (self.north - lat) * self.scale
        return round(x, 1), round(y, 1)


@dataclass(slots=True)
class Label:
    x: float
    y: float
    anchor: str  # start | middle | end
    text: str


@dataclass(slots=True)
class Marker:
    office: str
    name: str
    country: str
    x: float
    y: float
    border: bool
    visited: bool
    label: Label | None = None


@dataclass(frozen=True, slots=True)
class Leg:
    x1: float
    y1: float
    x2: float
    y2: float
    country: str
    crossing: bool


@dataclass(frozen=True, slots=True)
class Spot:
    """The truck or an alert: a point with what it is and where."""

    x: float
    y: float
    title: str
    office: str | None = None


@dataclass(slots=True)
class RouteMap:
    width: int
    height: int
    projection: Projection
    markers: list[Marker]
    legs: list[Leg]
    countries: list[tuple[str, Label]] = field(default_factory=list)  # (country code, its name on the map)
    truck: Spot | None = None
    alerts: list[Spot] = field(default_factory=list)


def fit(points: Iterable[tuple[float, float]]) -> tuple[Projection, int]:
    """The projection that fits `points` (lat, lon) into WIDTH by height, and that height."""
    chosen = list(points) or [(41.3, 69.3)]  # nothing to show: centre on Tashkent
    lats = [lat for lat, _ in chosen]
    lons = [lon for _, lon in chosen]
    north, south, west, east = max(lats), min(lats), min(lons), max(lons)
    cos_lat = math.cos(math.radians((north + south) / 2))
    span_x = max((east - west) * cos_lat, MIN_SPAN_DEGREES)
    span_y = max(north - south, MIN_SPAN_DEGREES)
    scale = min((WIDTH - 2 * PAD_X) / span_x, (MAX_HEIGHT - 2 * PAD_Y) / span_y)
    height = int(min(MAX_HEIGHT, max(MIN_HEIGHT, span_y * scale + 2 * PAD_Y)))
    ox = (WIDTH - (east - west) * cos_lat * scale) / 2
    oy = (height - (north - south) * scale) / 2
    return Projection(west=west, north=north, scale=scale, cos_lat=cos_lat, ox=ox, oy=oy), height


def build(
    track: PublicTrack,
    offices: OfficeDirectory,
    *,
    country_names: dict[str, str],
    alerts: list[AlertAt],
    truck_title: str,
) -> RouteMap:
    """The map of `track`: offices of the route, legs, country names, the truck and the alerts (lat, lon, title,
    office). Only places with coordinates are drawn."""
    route = [place for place in track.route if place.lat is not None and place.lon is not None and place.office]
    truck = track.current_place  # the latest step's place (tracking/timeline.current_place), as the API says
    points = [(place.lat, place.lon) for place in route if place.lat is not None and place.lon is not None]
    if truck is not None and truck.lat is not None and truck.lon is not None:
        points.append((truck.lat, truck.lon))
    points.extend((lat, lon) for lat, lon, _, _ in alerts)
    projection, height = fit(points)
    visited = {step.office for step in track.timeline if step.office}

    markers = []
    for place in route:
        assert place.lat is not None and place.lon is not None and place.office is not None
        x, y = projection.point(place.lat, place.lon)
        office = offices.get(place.office)
        markers.append(
            Marker(
                office=place.office,
                name=place.name or place.office,
                country=place.country,
                x=x,
                y=y,
                border=office is not None and office.role == "border",
                visited=place.office in visited,
            )
        )
    _separate_pairs(markers)
    _spread(markers, WIDTH, height)
    legs = [
        Leg(a.x, a.y, b.x, b.y, country=a.country, crossing=a.country != b.country)
        for a, b in itertools.pairwise(markers)
    ]
    by_office = {marker.office: marker for marker in markers}

    def spot(lat: float | None, lon: float | None, title: str, office: str | None) -> Spot | None:
        if office and office in by_office:
            return Spot(by_office[office].x, by_office[office].y, title, office)
        if lat is None or lon is None:
            return None
        x, y = projection.point(lat, lon)
        return Spot(x, y, title, office)

    truck_spot = spot(truck.lat, truck.lon, truck_title, truck.office) if truck else None
    alert_spots = [s for s in (spot(lat, lon, title, office) for lat, lon, title, office in alerts) if s]
    result = RouteMap(
        width=WIDTH,
        height=height,
        projection=projection,
        markers=markers,
        legs=legs,
        truck=truck_spot,
        alerts=alert_spots,
    )
    _place_labels(result, track.countries, country_names)
    return result


def _separate_pairs(markers: list[Marker]) -> None:
    """Two posts of one crossing share coordinates: draw them MIN_GAP apart along the direction of travel."""
    for index in range(1, len(markers)):
        a, b = markers[index - 1], markers[index]
        if math.hypot(a.x - b.x, a.y - b.y) >= 2:
            continue
        before = markers[index - 2] if index >= 2 else a
        after = markers[index + 1] if index + 1 < len(markers) else b
        dx, dy = after.x - before.x, after.y - before.y
        length = math.hypot(dx, dy)
        ux, uy = (dx / length, dy / length) if length > 0 else (1.0, 0.0)
        half = MIN_GAP / 2
        a.x, a.y = round(a.x - ux * half, 1), round(a.y - uy * half, 1)
        b.x, b.y = round(b.x + ux * half, 1), round(b.y + uy * half, 1)


def _spread(markers: list[Marker], width: float, height: float) -> None:
    """Push apart markers closer than MIN_GAP (a border post next to a city): a schematic nudge of a few pixels so
    each office can be seen and clicked; far-apart offices do not move."""
    for _ in range(50):
        moved = False
        for i, a in enumerate(markers):
            for b in markers[i + 1 :]:
                dx, dy = b.x - a.x, b.y - a.y
                distance = math.hypot(dx, dy)
                if distance >= MIN_GAP:
                    continue
                ux, uy = (dx / distance, dy / distance) if distance > 1e-6 else (1.0, 0.0)
                push = (MIN_GAP - distance) / 2 + 0.05
                a.x, a.y = a.x - ux * push, a.y - uy * push
                b.x, b.y = b.x + ux * push, b.y + uy * push
                moved = True
        if not moved:
            break
    for marker in markers:
        marker.x = round(min(max(marker.x, 14), width - 14), 1)
        marker.y = round(min(max(marker.y, 14), height - 14), 1)


Box = tuple[float, float, float, float]  # left, top, right, bottom


def _text_box(label: Label, size: float, *, em: float = 0.58) -> Box:
    """The box a label takes, estimated: `em` is the average letter width (as a share of the font size)."""
    width = len(label.text) * size * em
    left = {"start": label.x, "middle": label.x - width / 2, "end": label.x - width}[label.anchor]
    return left, label.y - size * 0.8, left + width, label.y + size * 0.25


def _overlap(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def _cost(box: Box, taken: list[Box], width: float, height: float) -> float:
    outside = max(0.0, -box[0]) + max(0.0, box[2] - width) + max(0.0, -box[1]) + max(0.0, box[3] - height)
    return sum(_overlap(box, other) for other in taken) + outside * 1000  # clipped is worse than crowded


def _short(name: str, limit: int = 24) -> str:
    name = name.split(" (")[0]
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _misleading(box: Box, marker: Marker, markers: list[Marker]) -> float:
    """A label whose middle is nearer another office than its own seems to name the wrong marker: as bad as an
    overlap."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    own = math.hypot(cx - marker.x, cy - marker.y)
    return 400.0 if any(math.hypot(cx - m.x, cy - m.y) < own for m in markers if m is not marker) else 0.0


def _place_labels(route_map: RouteMap, countries: list[str], names: dict[str, str]) -> None:
    """Greedy label placement: each label takes the first free spot around its marker (else the least crowded)."""
    width, height = route_map.width, route_map.height
    taken: list[Box] = [(m.x - 9, m.y - 9, m.x + 9, m.y + 9) for m in route_map.markers]
    for leg in route_map.legs:  # keep labels off the route's lines, sampled every 12 units
        steps = max(1, int(math.hypot(leg.x2 - leg.x1, leg.y2 - leg.y1) // 12))
        for step in range(1, steps):
            x = leg.x1 + (leg.x2 - leg.x1) * step / steps
            y = leg.y1 + (leg.y2 - leg.y1) * step / steps
            taken.append((x - 3, y - 3, x + 3, y + 3))
    if route_map.truck:  # a pin standing on its point (templates/track.html)
        taken.append((route_map.truck.x - 13, route_map.truck.y - 38, route_map.truck.x + 13, route_map.truck.y))
    for alert in route_map.alerts:
        taken.append((alert.x - 11, alert.y - 11, alert.x + 11, alert.y + 8))
    for marker in route_map.markers:
        text = _short(marker.name)
        candidates = [
            Label(marker.x + 12, marker.y + 5, "start", text),
            Label(marker.x - 12, marker.y + 5, "end", text),
            Label(marker.x, marker.y - 14, "middle", text),
            Label(marker.x, marker.y + 25, "middle", text),
            Label(marker.x, marker.y - 26, "middle", text),
            Label(marker.x, marker.y + 37, "middle", text),
            Label(marker.x + 10, marker.y - 10, "start", text),
            Label(marker.x - 10, marker.y - 10, "end", text),
            Label(marker.x + 10, marker.y + 21, "start", text),
            Label(marker.x - 10, marker.y + 21, "end", text),
        ]
        costs = [
            _cost(_text_box(label, FONT), taken, width, height)
            + _misleading(_text_box(label, FONT), marker, route_map.markers)
            for label in candidates
        ]
        free = [label for label, cost in zip(candidates, costs, strict=True) if cost == 0]
        best = free[0] if free else candidates[costs.index(min(costs))]
        marker.label = best
        taken.append(_text_box(best, FONT))

    for code in dict.fromkeys(countries):
        mine = [m for m in route_map.markers if m.country == code]
        if not mine:
            continue
        cx = sum(m.x for m in mine) / len(mine)
        cy = sum(m.y for m in mine) / len(mine)
        text = names.get(code, code)  # capitals by CSS
        candidates = [
            Label(cx + shift, cy + dy, "middle", text)
            for dy in (46, -34, 72, -60, 8, 100, -90)
            for shift in (0, 60, -60, 120, -120, 180, -180)
        ]
        boxes = [_text_box(label, COUNTRY_FONT, em=COUNTRY_EM) for label in candidates]
        costs = [_cost(box, taken, width, height) for box in boxes]
        index = costs.index(min(costs))
        route_map.countries.append((code, candidates[index]))
        taken.append(boxes[index])
