"""Threshold alerts for a delivery in flight: ETA under N s, courier within N m, delayed.

One pure function of (delivery snapshot, latest courier position, now); the
shell runs it on a tick and fires each crossed threshold once per endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lastmile.core.delivery.model import TimeWindow
from lastmile.core.eta import late, travel
from lastmile.core.eta.engine import LiveState, live_estimate
from lastmile.core.geo import Point, haversine_m

# Statuses in which the courier carries the parcel towards the drop-off.
EN_ROUTE = frozenset({"picked_up", "at_dropoff"})
FINISHED = frozenset({"delivered", "cancelled"})


class Threshold(StrEnum):
    ETA_UNDER = "eta_under"
    COURIER_NEARBY = "courier_nearby"
    DELAYED = "delayed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdRules:
    """``None`` switches a threshold off. Seconds and metres."""

    eta_under_s: int | None = 300
    nearby_m: int | None = 500
    delay_grace_s: int = 0
    courier_speed_mps: float = travel.DEFAULT_SPEED_MPS


@dataclass(frozen=True, slots=True, kw_only=True)
class InFlight:
    """What the rule needs to know about a delivery (read from the order and the row)."""

    status: str
    dropoff: Point
    eta_expected_at: float
    eta_high_at: float
    dropoff_window: TimeWindow | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CourierFix:
    point: Point
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdHit:
    kind: Threshold
    data: dict[str, Any] = field(default_factory=dict)


def arrival_estimate(d: InFlight, fix: CourierFix | None, now: float, speed_mps: float) -> float:
    """Expected arrival (epoch s): from the courier's position once en route, else the quote.

    En route, the ETA engine's live estimate (``core.eta.engine.live_estimate``: road
    distance at ``speed_mps`` plus the handover at the door); never earlier than ``now``.
    """
    if fix is None or d.status not in EN_ROUTE:
        return max(now, d.eta_expected_at)
    live = live_estimate(LiveState(now=now, status=d.status, courier_at=fix.point,
                                   pickup=fix.point, dropoff=d.dropoff, speed_mps=speed_mps))
    assert live is not None  # en route is a holding status
    return now + live.estimate.point_s


def deadline(d: InFlight) -> float:
    """The promise (``core.eta.late.promised_end``): the end of the drop-off window, else
    the high end of the quoted ETA."""
    return late.promised_end(d.eta_high_at,
                             d.dropoff_window.end_at if d.dropoff_window is not None else None)


def evaluate_thresholds(
    d: InFlight, fix: CourierFix | None, now: float, rules: ThresholdRules
) -> tuple[ThresholdHit, ...]:
    """Thresholds crossed now, in a fixed order (eta_under, courier_nearby, delayed).

    - eta_under: en route and the arrival estimate is within ``eta_under_s``;
    - courier_nearby: en route with a known position within ``nearby_m`` of the drop-off;
    - delayed: not finished and ``now`` is past the deadline plus ``delay_grace_s``.
    A finished delivery crosses nothing.
    """
    if d.status in FINISHED:
        return ()
    hits: list[ThresholdHit] = []
    if rules.eta_under_s is not None and d.status in EN_ROUTE:
        eta_at = arrival_estimate(d, fix, now, rules.courier_speed_mps)
        if eta_at - now <= rules.eta_under_s:
            hits.append(ThresholdHit(kind=Threshold.ETA_UNDER,
                                     data={"eta_s": round(eta_at - now),
                                           "threshold_s": rules.eta_under_s}))
    if rules.nearby_m is not None and fix is not None and d.status in EN_ROUTE:
        distance = haversine_m(fix.point, d.dropoff)
        if distance <= rules.nearby_m:
            hits.append(ThresholdHit(kind=Threshold.COURIER_NEARBY,
                                     data={"distance_m": round(distance),
                                           "threshold_m": rules.nearby_m}))
    if late.is_late(now, deadline(d), grace_s=rules.delay_grace_s):
        late_by = late.late_by_s(now, deadline(d)) - rules.delay_grace_s
        hits.append(ThresholdHit(kind=Threshold.DELAYED,
                                 data={"deadline_at": deadline(d), "late_by_s": round(late_by)}))
    return tuple(hits)
