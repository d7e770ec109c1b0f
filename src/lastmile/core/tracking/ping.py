"""A location ping and the validation that turns raw fields into one.

Units: degrees (WGS84), metres, metres per second, degrees clockwise from
north, seconds since the Unix epoch (float).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lastmile.core.errors import InvalidInput
from lastmile.core.geo import MAX_MERCATOR_LAT, Point, haversine_m
from lastmile.core.tracking.policy import TrackingPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """One location report from one device of one courier.

    ``client_ts`` is when the device took the fix (device clock);
    ``received_ts`` is when the server received it (server clock).
    Build it through :func:`validate_ping` from untrusted input.
    """

    courier_id: str
    device_id: str
    lat: float
    lng: float
    accuracy_m: float
    client_ts: float
    received_ts: float
    speed_mps: float | None = None
    heading_deg: float | None = None

    def __post_init__(self) -> None:
        Point(lat=self.lat, lng=self.lng)  # raises InvalidInput naming lat or lng
        if not self.courier_id:
            raise _invalid("courier_id", "must be non-empty", self.courier_id)
        if not self.device_id:
            raise _invalid("device_id", "must be non-empty", self.device_id)
        if not (math.isfinite(self.accuracy_m) and self.accuracy_m >= 0):
            raise _invalid("accuracy_m", "must be >= 0", self.accuracy_m)
        if self.speed_mps is not None and not (
            math.isfinite(self.speed_mps) and self.speed_mps >= 0
        ):
            raise _invalid("speed_mps", "must be >= 0", self.speed_mps)
        if self.heading_deg is not None and not (
            math.isfinite(self.heading_deg) and 0 <= self.heading_deg < 360
        ):
            raise _invalid("heading_deg", "must be in [0, 360)", self.heading_deg)
        for name in ("client_ts", "received_ts"):
            if not math.isfinite(getattr(self, name)):
                raise _invalid(name, "must be a finite epoch in seconds", getattr(self, name))

    @property
    def point(self) -> Point:
        return Point(lat=self.lat, lng=self.lng)


def _invalid(field: str, rule: str, got: object) -> InvalidInput:
    return InvalidInput(f"invalid_{field}", f"{field} {rule} (got {got!r})", field=field)


def _number(field: str, value: object) -> float:
    # bool is an int in Python; a JSON `true` is not a coordinate.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(field, "must be a number", value)
    number = float(value)
    if not math.isfinite(number):
        raise _invalid(field, "must be finite", value)
    return number


def _optional_number(field: str, value: object) -> float | None:
    return None if value is None else _number(field, value)


def _identifier(field: str, value: object, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid(field, "must be a non-empty string", value)
    if len(value) > max_len:
        raise InvalidInput(
            f"invalid_{field}",
            f"{field} must be at most {max_len} characters (got {len(value)})",
            field=field,
        )
    return value


def validate_ping(
    *,
    courier_id: object,
    device_id: object,
    lat: object,
    lng: object,
    accuracy_m: object,
    client_ts: object,
    received_ts: float,
    speed_mps: object = None,
    heading_deg: object = None,
    policy: TrackingPolicy,
) -> Ping:
    """Turn raw, untrusted fields into a :class:`Ping` or raise InvalidInput.

    Rules (the error's ``field`` names the offending field, its code is
    ``invalid_<field>`` or one of the two clock codes):

    - ids: non-empty strings of at most ``policy.max_device_id_len`` characters;
    - lat in [-MAX_MERCATOR_LAT, MAX_MERCATOR_LAT] (about +-85.05: what the live store can
      index, so an accepted ping can always become the live position), lng in [-180, 180],
      all numbers finite (bools refused);
    - 0 <= accuracy_m <= ``policy.max_accuracy_m``;
    - speed_mps (optional) in [0, ``policy.max_speed_mps``];
    - heading_deg (optional) in [0, 360);
    - ``client_ts - received_ts <= policy.max_future_s`` (``ping_from_future``);
    - ``received_ts - client_ts <= policy.max_age_s`` (``ping_too_old``).

    ``received_ts`` is the server's clock, passed in by the caller.
    """
    courier = _identifier("courier_id", courier_id, policy.max_device_id_len)
    device = _identifier("device_id", device_id, policy.max_device_id_len)
    accuracy = _number("accuracy_m", accuracy_m)
    if not 0 <= accuracy <= policy.max_accuracy_m:
        raise _invalid("accuracy_m", f"must be in [0, {policy.max_accuracy_m}]", accuracy_m)
    speed = _optional_number("speed_mps", speed_mps)
    if speed is not None and not 0 <= speed <= policy.max_speed_mps:
        raise _invalid("speed_mps", f"must be in [0, {policy.max_speed_mps}]", speed_mps)
    latitude = _number("lat", lat)
    if abs(latitude) > MAX_MERCATOR_LAT:
        raise _invalid("lat", f"must be in [-{MAX_MERCATOR_LAT}, {MAX_MERCATOR_LAT}]", lat)
    taken = _number("client_ts", client_ts)
    received = _number("received_ts", received_ts)
    _check_clock(taken, received, policy)
    return Ping(
        courier_id=courier,
        device_id=device,
        lat=latitude,
        lng=_number("lng", lng),
        accuracy_m=accuracy,
        speed_mps=speed,
        heading_deg=_optional_number("heading_deg", heading_deg),
        client_ts=taken,
        received_ts=received,
    )


def _check_clock(client_ts: float, received_ts: float, policy: TrackingPolicy) -> None:
    ahead_s = client_ts - received_ts
    if ahead_s > policy.max_future_s:
        raise InvalidInput(
            "ping_from_future",
            f"client_ts must be at most {policy.max_future_s} s after the server time "
            f"(got {ahead_s:.1f} s ahead)",
            field="client_ts",
        )
    if -ahead_s > policy.max_age_s:
        raise InvalidInput(
            "ping_too_old",
            f"client_ts must be at most {policy.max_age_s} s before the server time "
            f"(got {-ahead_s:.1f} s old)",
            field="client_ts",
        )


def implied_speed_mps(a: Ping, b: Ping, policy: TrackingPolicy) -> float:
    """Lowest speed that explains going from fix ``a`` to fix ``b``, in m/s.

    Both fixes may be off by their accuracy radius, so the distance counts
    only what lies beyond both radii (never below 0). The time is
    ``|b.client_ts - a.client_ts|``, floored at ``policy.min_dt_s`` so two
    fixes a few milliseconds apart do not give an infinite speed.
    """
    distance_m = haversine_m(a.point, b.point) - a.accuracy_m - b.accuracy_m
    dt_s = max(abs(b.client_ts - a.client_ts), policy.min_dt_s)
    return max(0.0, distance_m) / dt_s


def is_plausible_move(a: Ping, b: Ping, policy: TrackingPolicy) -> bool:
    """True when a courier could go from ``a`` to ``b`` at ``policy.vmax_mps`` or less."""
    return implied_speed_mps(a, b, policy) <= policy.vmax_mps
