"""The one travel-time model: road distance over the vehicle's speed, plus the handovers.

Every ETA in lastmile (quotes, checkout, Drive's window checks, the consumer's live feed,
the dashboard, the delay thresholds, the public tracking page) travels through here, so
that a courier's speed and a street's detour have one value each.

- Road distance is the great-circle distance times ``ROAD_FACTOR``: street distance over
  great-circle distance in a city grid is about 1.2-1.4 in published circuity studies; we
  take the middle (the simulator's world uses the same by default).
- Speeds are typical urban speeds in m/s per vehicle (``SPEED_MPS``); a quote, made before
  anyone knows which courier goes, uses ``DEFAULT_SPEED_MPS`` (a bicycle's), which a
  tenant's pricing policy may override (``courier_speed_mps``).
- Handovers: ``PICKUP_HANDOVER_S`` at the merchant (find the order, check it) and
  ``DROPOFF_HANDOVER_S`` at the door (find it, hand over, PIN or photo), 2 minutes each
  (the simulator's couriers take the same). ``SERVICE_S`` is both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lastmile.core.geo import Point, haversine_m

ROAD_FACTOR = 1.3
SPEED_MPS: dict[str, float] = {"bicycle": 4.5, "scooter": 7.0, "car": 8.0, "walking": 1.3}
"""Typical urban speed per vehicle (``core.model.Vehicle`` values), m/s."""
DEFAULT_VEHICLE = "bicycle"
DEFAULT_SPEED_MPS = SPEED_MPS[DEFAULT_VEHICLE]
PICKUP_HANDOVER_S = 120.0
DROPOFF_HANDOVER_S = 120.0
SERVICE_S = PICKUP_HANDOVER_S + DROPOFF_HANDOVER_S


def speed_of(vehicle: str | None) -> float:
    """The vehicle's typical speed (m/s); an unknown or missing vehicle gets the default's."""
    return SPEED_MPS.get(vehicle or DEFAULT_VEHICLE, DEFAULT_SPEED_MPS)


def road_m(a: Point, b: Point) -> float:
    """Road distance a -> b in metres: great-circle times ``ROAD_FACTOR``."""
    return haversine_m(a, b) * ROAD_FACTOR


def route_m(points: Sequence[Point]) -> float:
    """Road distance along ``points`` in order (0 for fewer than two)."""
    return sum(road_m(a, b) for a, b in zip(points, points[1:], strict=False))


def ride_s(distance_m: float, speed_mps: float = DEFAULT_SPEED_MPS) -> float:
    """Seconds to ride ``distance_m`` metres *of road* at ``speed_mps``.

    Raises ValueError for a speed that is not a finite number > 0 or a negative distance.
    """
    if not (math.isfinite(speed_mps) and speed_mps > 0):
        raise ValueError(f"speed_mps must be a finite number > 0 (got {speed_mps})")
    if not distance_m >= 0:
        raise ValueError(f"distance_m must be >= 0 (got {distance_m})")
    return distance_m / speed_mps


def trip_s(distance_m: float, *, speed_mps: float = DEFAULT_SPEED_MPS,
           service_s: float = SERVICE_S) -> float:
    """Merchant -> door for a courier already at the merchant with the food ready: the ride
    over ``distance_m`` of road plus both handovers (``service_s``)."""
    return ride_s(distance_m, speed_mps) + service_s


def travel_s(pickup: Point, dropoff: Point, *, speed_mps: float = DEFAULT_SPEED_MPS,
             service_s: float = SERVICE_S) -> float:
    """``trip_s`` between two points (road distance from ``road_m``)."""
    return trip_s(road_m(pickup, dropoff), speed_mps=speed_mps, service_s=service_s)
