"""The route map of the tracking page: the itinerary's offices projected into an SVG viewBox.

Hand-written on purpose. A route is a dozen points at most: it needs no mapping library, and the page may load
nothing from the internet (its Content-Security-Policy allows only this node), so there are no map tiles. The
projection is equirectangular — longitude scaled by the cosine of the middle latitude, which keeps shapes right to
within a few per cent across the corridor's 37 to 46° N — fitted to the bounding box of the points and centred.
No coastlines or state borders are drawn: each country is named where its offices are, the legs of the route take
the colour of their country, and a leg between the two posts of one crossing is dashed.

The same projection is written into the SVG as data attributes, so the page's script can place a new position or
alert without a reload (static/track.js).

Labels are laid out twice: for a map drawn at least NARROW_BELOW CSS pixels wide (`wide`), and for a phone's
narrower map (`narrow`), where one viewBox unit is about half a pixel, so its labels are set in larger units to stay
readable. Both layouts are in the SVG; a container query in track.css shows the one that fits the map's width.
Every label is kept inside the map, EDGE units from its border.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from transit_window.codes import OfficeDirectory
from transit_window.tracking.schemas import Place, PublicTrack

WIDTH = 640
MIN_HEIGHT = 280
MAX_HEIGHT = 480
PAD_X = 70  # room for the labels of the westernmost and easternmost offices
PAD_Y = 48
MIN_SPAN_DEGREES = 0.8
# Label sizes in viewBox units, as track.css sets them: wide ≥ 12 CSS px on a map ≥ NARROW_BELOW px wide; narrow
# 13.8 px on a 390 px phone (a map of 340 px), 12 px on a 320 px one.
NARROW_BELOW = 480
FONTS = {"wide": 16.0, "narrow": 26.0}
COUNTRY_FONT = 26.0
EDGE = 8  # no label closer than this to the map's border
LABEL_LIMIT = 28  # letters; a longer name is cut with "…"
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


@dataclass(slots=True)
class Layout:
    """The labels at one size of the map: `wide` or `narrow` (see the module's docstring)."""

    name: str
    font: float
    offices: list[tuple[str, Label]] = field(default_factory=list)  # (office code, its label)
    countries: list[tuple[str, Label]] = field(default_factory=list)  # (country code, its name on the map)


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
    layouts: list[Layout] = field(default_factory=list)
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


def truck_place(track: PublicTrack) -> Place | None:
    """Where the truck was last seen, when it can be drawn: the view's current place (the last office passed, never
    the desk that wrote the movement off, never an e-seal's position)."""
    current = track.current_place
    return current if current is not None and current.lat is not None and current.lon is not None else None


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
    truck = truck_place(track)
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
    result.layouts = [_layout(result, name, track.countries, country_names) for name in FONTS]
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


# Letter widths in em, a little over those of DejaVu Sans (Debian's sans-serif, among the widest) as Chromium draws
# the office names and country names in English and Russian: an estimate that errs on the wide side, by 0-17 %.
NARROW_LETTERS = frozenset("iljtfrI.,:;!|'()- ")
WIDE_LETTERS = frozenset("mwMWЖШЩЮжшщюмыМЫДдФф")  # noqa: RUF001 - the Cyrillic em is meant
BOLD = 1.1  # country names are bold capitals, letter-spaced 0.12 em (track.css)


def _text_width(text: str, size: float, *, capitals: bool = False) -> float:
    ems = 0.0
    for letter in text.upper() if capitals else text:
        if letter in NARROW_LETTERS:
            ems += 0.36
        elif letter in WIDE_LETTERS:
            ems += 0.98
        else:
            ems += 0.76 if letter.isupper() else 0.63
    return (ems * BOLD + 0.12 * len(text)) * size if capitals else ems * size


def _text_box(label: Label, size: float, *, capitals: bool = False) -> Box:
    """The box a label takes, estimated (its baseline at `y`)."""
    width = _text_width(label.text, size, capitals=capitals)
    left = {"start": label.x, "middle": label.x - width / 2, "end": label.x - width}[label.anchor]
    return left, label.y - size * 0.93, left + width, label.y + size * 0.24  # the font's ascent and descent


def _inside(label: Label, size: float, width: float, height: float, *, capitals: bool = False) -> Label:
    """The label moved (no more than needed) so that its box keeps EDGE units from every border of the map."""
    left, top, right, bottom = _text_box(label, size, capitals=capitals)
    dx = max(0.0, EDGE - left) - max(0.0, right - (width - EDGE))
    dy = max(0.0, EDGE - top) - max(0.0, bottom - (height - EDGE))
    if not dx and not dy:
        return label
    return Label(_towards(label.x + dx, dx), _towards(label.y + dy, dy), label.anchor, label.text)


def _towards(value: float, shift: float) -> float:
    """`value` to 0.1 unit, rounded on the side it was shifted to (so a label moved inside is not rounded out)."""
    rounded = (math.ceil if shift > 0 else math.floor if shift < 0 else round)(value * 10) / 10
    return float(rounded)


def _overlap(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def _cost(box: Box, taken: list[Box]) -> float:
    return sum(_overlap(box, other) for other in taken)


def _clip(name: str) -> str:
    return name if len(name) <= LABEL_LIMIT else name[: LABEL_LIMIT - 1] + "…"


def _distance(box: Box, x: float, y: float) -> float:
    return math.hypot(max(box[0] - x, 0.0, x - box[2]), max(box[1] - y, 0.0, y - box[3]))


def _misleading(box: Box, marker: Marker, markers: list[Marker]) -> float:
    """A label nearer another office than its own seems to name the wrong marker: as bad as an overlap."""
    own = _distance(box, marker.x, marker.y)
    return 400.0 if any(_distance(box, m.x, m.y) < own for m in markers if m is not marker) else 0.0


def _around(marker: Marker, text: str, size: float) -> list[Label]:
    """Where a label may go, best first: right, left, above, below, then further out and diagonally (offsets grow
    with the font, so a phone's larger labels keep the same distance from their marker)."""
    x, y = marker.x, marker.y
    above, below = y - 10 - size * 0.25, y + 10 + size * 0.8  # the baseline of a label just clear of the marker
    return [
        Label(x + 12, y + size * 0.3, "start", text),
        Label(x - 12, y + size * 0.3, "end", text),
        Label(x, above, "middle", text),
        Label(x, below, "middle", text),
        Label(x, above - size, "middle", text),
        Label(x, below + size, "middle", text),
        Label(x + 10, above + 2, "start", text),
        Label(x - 10, above + 2, "end", text),
        Label(x + 10, below - 2, "start", text),
        Label(x - 10, below - 2, "end", text),
        Label(x, above - 2 * size, "middle", text),
        Label(x, below + 2 * size, "middle", text),
        Label(x + 10, below - 2 + size, "start", text),
        Label(x - 10, below - 2 + size, "end", text),
        Label(x + 10, above + 2 - size, "start", text),
        Label(x - 10, above + 2 - size, "end", text),
    ]


def _layout(route_map: RouteMap, name: str, countries: list[str], names: dict[str, str]) -> Layout:
    """Greedy label placement at one size, inside the map: each office's label takes the first free spot around its
    marker, the two ends of the route first, then the truck's; where none is free, the least crowded. On a phone's
    map an office between the ends whose every spot would cover another label or marker goes unlabelled instead:
    its marker's title and the timeline still name it, and a pile of overlapping names names nothing. Then each
    country's name, where it covers the least (on a phone, only where it covers no office or label)."""
    size = FONTS[name]
    layout = Layout(name=name, font=size)
    width, height = route_map.width, route_map.height
    solid: list[Box] = [(m.x - 9, m.y - 9, m.x + 9, m.y + 9) for m in route_map.markers]
    if route_map.truck:  # a pin standing on its point (templates/track.html)
        solid.append((route_map.truck.x - 13, route_map.truck.y - 38, route_map.truck.x + 13, route_map.truck.y))
    for alert in route_map.alerts:
        solid.append((alert.x - 11, alert.y - 11, alert.x + 11, alert.y + 8))
    lines: list[Box] = []  # a label may cross a line of the route if it must (it has a halo), sampled every 12 units
    for leg in route_map.legs:
        steps = max(1, int(math.hypot(leg.x2 - leg.x1, leg.y2 - leg.y1) // 12))
        for step in range(1, steps):
            x = leg.x1 + (leg.x2 - leg.x1) * step / steps
            y = leg.y1 + (leg.y2 - leg.y1) * step / steps
            lines.append((x - 3, y - 3, x + 3, y + 3))
    ends = {route_map.markers[0].office, route_map.markers[-1].office} if route_map.markers else set()
    truck = route_map.truck.office if route_map.truck else None
    placed: dict[str, Label] = {}
    for marker in sorted(route_map.markers, key=lambda m: (m.office not in ends, m.office != truck)):
        candidates = [_inside(label, size, width, height) for label in _around(marker, _clip(marker.name), size)]
        boxes = [_text_box(label, size) for label in candidates]
        clashes = [_cost(box, solid) for box in boxes]
        costs = [
            clash * 10 + _cost(box, lines) + _misleading(box, marker, route_map.markers)
            for box, clash in zip(boxes, clashes, strict=True)
        ]
        best = costs.index(min(costs))  # the first of the free ones, if any is free
        if clashes[best] and name == "narrow" and marker.office not in ends:
            continue
        placed[marker.office] = candidates[best]
        solid.append(boxes[best])
    layout.offices = [(m.office, placed[m.office]) for m in route_map.markers if m.office in placed]

    for code in dict.fromkeys(countries):
        mine = [m for m in route_map.markers if m.country == code]
        if not mine:
            continue
        cx = sum(m.x for m in mine) / len(mine)
        cy = sum(m.y for m in mine) / len(mine)
        text = names.get(code, code)  # capitals by CSS
        candidates = [
            _inside(Label(cx + shift, cy + dy, "middle", text), COUNTRY_FONT, width, height, capitals=True)
            for dy in (46, -34, 72, -60, 8, 100, -90)
            for shift in (0, 60, -60, 120, -120, 180, -180)
        ]
        boxes = [_text_box(label, COUNTRY_FONT, capitals=True) for label in candidates]
        clashes = [_cost(box, solid) for box in boxes]
        costs = [clash * 10 + _cost(box, lines) for box, clash in zip(boxes, clashes, strict=True)]
        index = costs.index(min(costs))
        if clashes[index] and name == "narrow":
            continue  # the chips above the map name every country; a name over the offices' would hide them
        layout.countries.append((code, candidates[index]))
        solid.append(boxes[index])
    return layout
