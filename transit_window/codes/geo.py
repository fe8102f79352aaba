"""Great-circle distances: between two points, and from a point to a route drawn through offices.

Hand-written on purpose: the rules need two formulas (haversine, cross-track distance) on a handful of points, and
a geo library (pyproj, shapely, geopy) would add a compiled dependency for what is a dozen lines of trigonometry.
The Earth is taken as a sphere of mean radius 6371.0088 km: the error against the WGS 84 ellipsoid is under 0.5 %,
far below the corridor widths (tens of km) these distances are compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import asin, atan2, cos, radians, sin, sqrt

EARTH_RADIUS_KM = 6371.0088

Point = tuple[float, float]  # (lat, lon) in degrees


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points, in km."""
    phi1, phi2 = radians(lat1), radians(lat2)
    dphi = phi2 - phi1
    dlambda = radians(lon2 - lon1)
    h = sin(dphi / 2) ** 2 + cos(phi1) * cos(phi2) * sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * asin(min(1.0, sqrt(h)))


def _bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, in radians."""
    phi1, phi2 = radians(lat1), radians(lat2)
    dlambda = radians(lon2 - lon1)
    return atan2(sin(dlambda) * cos(phi2), cos(phi1) * sin(phi2) - sin(phi1) * cos(phi2) * cos(dlambda))


def distance_to_segment_km(point: Point, start: Point, end: Point) -> float:
    """Distance from `point` to the great-circle arc `start`→`end`: the cross-track distance when the point's
    foot falls on the arc, else the distance to the nearer end."""
    length = haversine_km(*start, *end)
    to_point = haversine_km(*start, *point)
    if length < 1e-9 or to_point < 1e-9:
        return to_point
    angle = _bearing(*start, *point) - _bearing(*start, *end)
    if cos(angle) <= 0:  # the point lies behind the start of the arc
        return to_point
    angular = to_point / EARTH_RADIUS_KM
    cross = asin(max(-1.0, min(1.0, sin(angular) * sin(angle))))
    along = EARTH_RADIUS_KM * _acos(cos(angular) / max(1e-12, cos(cross)))
    if along >= length:
        return haversine_km(*end, *point)
    return abs(cross) * EARTH_RADIUS_KM


def _acos(value: float) -> float:
    # acos through atan2 stays accurate near 1 (short along-track distances), where math.acos loses digits.
    value = max(-1.0, min(1.0, value))
    return atan2(sqrt(max(0.0, 1.0 - value * value)), value)


def distance_to_polyline_km(point: Point, polyline: Sequence[Point]) -> float:
    """Distance from `point` to the nearest segment of `polyline` (a single point counts as a polyline)."""
    if not polyline:
        raise ValueError("an empty polyline has no distance")
    if len(polyline) == 1:
        return haversine_km(*point, *polyline[0])
    return min(distance_to_segment_km(point, polyline[i], polyline[i + 1]) for i in range(len(polyline) - 1))


def unit(lat: float, lon: float) -> tuple[float, float, float]:
    """The point as a unit vector from the Earth's centre (an n-vector)."""
    phi, lam = radians(lat), radians(lon)
    cos_phi = cos(phi)
    return cos_phi * cos(lam), cos_phi * sin(lam), sin(phi)


def chord_squared(km: float) -> float:
    """The squared straight-line distance between two unit vectors `km` apart on the surface."""
    return (2 * sin(km / EARTH_RADIUS_KM / 2)) ** 2


def _cross(a: tuple[float, float, float], b: tuple[float, float, float]) -> tuple[float, float, float]:
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


class Route:
    """A polyline prepared for the hot path: "is this ping within `limit_km` of the route?" with arithmetic only.

    With n-vectors, a segment A→B has the unit normal n of its great circle; a point p lies within d of the arc
    when |p·n| ≤ sin(d/R) and its foot falls between A and B (p·cross(n, a) ≥ 0 and p·cross(b, n) ≥ 0), or when
    it lies within d of an end (|p - a|² ≤ chord²). Everything but p is computed once per route, so a ping costs
    four trig calls (its own vector) and a few multiplications per segment tried.
    """

    def __init__(self, points: Sequence[Point], limit_km: float) -> None:
        self.points = list(points)
        self.vectors = [unit(lat, lon) for lat, lon in self.points]
        self.sin_limit = sin(limit_km / EARTH_RADIUS_KM)
        self.chord2 = chord_squared(limit_km)
        self.segments: list[tuple[tuple[float, float, float], ...]] = []
        for a, b in zip(self.vectors, self.vectors[1:], strict=False):
            normal = _cross(a, b)
            size = sqrt(sum(c * c for c in normal))
            if size < 1e-12:
                continue  # a zero-length segment: its ends are checked as points
            n = (normal[0] / size, normal[1] / size, normal[2] / size)
            self.segments.append((a, b, n, _cross(n, a), _cross(b, n)))

    def within(self, p: tuple[float, float, float], hint: int = 0) -> tuple[bool, int]:
        """Is the point (a `unit` vector) within the limit? Tries segment `hint` first (where the truck was) and
        stops at the first segment close enough. Returns (inside, index of the segment that matched or `hint`)."""
        count = len(self.segments)
        x, y, z = p
        for step in range(count):
            index = (hint + step) % count
            a, b, n, u, v = self.segments[index]
            if (
                abs(x * n[0] + y * n[1] + z * n[2]) <= self.sin_limit
                and x * u[0] + y * u[1] + z * u[2] >= 0
                and x * v[0] + y * v[1] + z * v[2] >= 0
            ):
                return True, index
            for end in (a, b):
                if (x - end[0]) ** 2 + (y - end[1]) ** 2 + (z - end[2]) ** 2 <= self.chord2:
                    return True, index
        for end in self.vectors if not self.segments else ():
            if (x - end[0]) ** 2 + (y - end[1]) ** 2 + (z - end[2]) ** 2 <= self.chord2:
                return True, hint
        return False, hint

    def distance_km(self, lat: float, lon: float) -> float:
        return distance_to_polyline_km((lat, lon), self.points)
