"""Geographic values and distances (WGS84 degrees, metres)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lastmile.core.errors import InvalidInput

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
# Web Mercator (and so Redis GEO, the live store) covers latitudes up to this; no delivery
# happens closer to the poles, so a live position beyond it is refused where it enters.
MAX_MERCATOR_LAT = 85.05112878


@dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    lat: float
    lng: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise InvalidInput("invalid_lat", f"lat must be in [-90, 90] (got {self.lat})", field="lat")
        if not (math.isfinite(self.lng) and -180.0 <= self.lng <= 180.0):
            raise InvalidInput(
                "invalid_lng", f"lng must be in [-180, 180] (got {self.lng})", field="lng"
            )


def haversine_m(a: Point, b: Point) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp = p2 - p1
    dl = math.radians(b.lng - a.lng)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(center: Point, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, min_lng, max_lat, max_lng) of a box enclosing a circle; a cheap pre-filter."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    cos_lat = max(0.01, math.cos(math.radians(center.lat)))
    dlng = math.degrees(radius_m / (EARTH_RADIUS_M * cos_lat))
    return (
        max(-90.0, center.lat - dlat),
        max(-180.0, center.lng - dlng),
        min(90.0, center.lat + dlat),
        min(180.0, center.lng + dlng),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Polygon:
    """A simple polygon (ring of at least 3 vertices, not repeated at the end)."""

    vertices: tuple[Point, ...]

    def __post_init__(self) -> None:
        if len(self.vertices) < 3:
            raise InvalidInput(
                "invalid_polygon",
                f"polygon needs at least 3 vertices (got {len(self.vertices)})",
                field="polygon",
            )

    def contains(self, p: Point) -> bool:
        """Ray casting on lat/lng; exact enough at city scale. Edges count as inside."""
        inside = False
        verts = self.vertices
        j = len(verts) - 1
        for i, vi in enumerate(verts):
            vj = verts[j]
            if (vi.lat > p.lat) != (vj.lat > p.lat):
                cross = (vj.lng - vi.lng) * (p.lat - vi.lat) / (vj.lat - vi.lat) + vi.lng
                if p.lng < cross:
                    inside = not inside
                elif p.lng == cross:
                    return True
            j = i
        return inside
