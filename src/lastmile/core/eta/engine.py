"""The ETA engine: pure inference, one place every ETA in lastmile comes from.

Three ways in, one answer type (``EtaEstimate``: a point and an 80% interval, seconds from
the moment asked):

- ``quote_estimate``: a quote or a checkout, from the trip, the merchant's preparation time
  and the supply snapshot the pricing engine already reads (orders waiting for a courier,
  idle and busy couriers);
- ``estimate_batch`` / ``estimate``: ``EtaFeatures`` rows (the history's and training's
  schema, ``core.eta.features``) through any ``EtaModel``: the heuristic below, or a
  learned model (LightGBM, Weibull; ``predict_batch`` over ``numeric_matrix``);
- ``live_estimate``: an order a courier holds, from the courier's position and stage; it
  moves as the courier moves.

The default model is the transparent heuristic (``HeuristicParams``):

    point = max(preparation, courier delay) + travel (the ride and both handovers)

with the courier delay from supply: a free courier for every waiting order takes the
pickup leg; otherwise the order queues behind ``waiting + 1 - idle`` others and busy
couriers free up one every ``courier_cycle_s / busy`` seconds. The 80% interval is the
point times ``p10_ratio`` and ``p90_ratio``, measured on the simulator (``bench/eta_
calibration.py``, docs/eta.md): the quantiles of realised over predicted click-to-door.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from lastmile.core.eta import travel
from lastmile.core.eta.features import (
    NUMERIC_COLUMNS,
    SERIES_BUCKETS,
    EtaEstimate,
    EtaFeatures,
    numeric_matrix,
)
from lastmile.core.geo import Point

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


class EtaModel(Protocol):
    """A model the engine can serve: ``predict_batch`` over ``numeric_matrix`` rows.

    Returns (point, p10, p90) arrays of seconds, one entry per row. The engine sorts each
    row's three values and clips them at 0, so a learned model whose quantiles cross still
    yields a valid ``EtaEstimate``.
    """

    @property
    def name(self) -> str: ...

    def predict_batch(self, matrix: np.ndarray) -> Arrays: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HeuristicParams:
    """The heuristic's constants. The cycle and the interval are measured on the simulator
    (``bench/eta_calibration.py``, lunch and black-friday-lunch; docs/eta.md)."""

    name: str = "heuristic-2"
    pickup_leg_s: float = 300.0
    """A free courier's typical time to reach the merchant."""
    courier_cycle_s: float = 400.0
    """Courier time one order takes *in effect*: a courier carries bundles and stacked
    orders, so a queue drains far faster than one order per full trip (1,500 s). Measured:
    the queue's part is median-unbiased between 300 s and 400 s (docs/eta.md)."""
    p10_ratio: float = 0.8
    p90_ratio: float = 1.7
    """The interval around the point when no order queues for a courier (docs/eta.md)."""
    queue_p10: float = 0.2
    queue_p90: float = 3.6
    """The interval of the queue's part (the courier delay beyond the food and the pickup
    leg) as multiples of it: a queue's length is far less certain than a ride."""
    live_p10_ratio: float = 0.83
    live_p90_ratio: float = 1.21
    """The live interval around the remaining time: the simulator's per-leg log-normal noise
    (sigma 0.15: exp(-+1.2816 x 0.15))."""

    def __post_init__(self) -> None:
        for name in ("pickup_leg_s", "courier_cycle_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 (got {value})")
        for low, high in ((self.p10_ratio, self.p90_ratio), (self.queue_p10, self.queue_p90),
                          (self.live_p10_ratio, self.live_p90_ratio)):
            if not (0 < low <= 1 <= high and math.isfinite(high)):
                raise ValueError(f"interval ratios must satisfy 0 < p10 <= 1 <= p90 (got "
                                 f"{low} and {high})")


DEFAULT_HEURISTIC = HeuristicParams()


def courier_delay_s(waiting: np.ndarray | float, idle: np.ndarray | float,
                    busy: np.ndarray | float, params: HeuristicParams = DEFAULT_HEURISTIC
                    ) -> np.ndarray:
    """Expected seconds until a courier reaches the merchant for a new order (rule in the
    module docstring). Never less than the pickup leg; grows with the queue."""
    queued = np.asarray(waiting, dtype=np.float64) + 1.0 - np.asarray(idle, dtype=np.float64)
    per_courier_s = params.courier_cycle_s / np.maximum(1.0, np.asarray(busy, dtype=np.float64))
    return params.pickup_leg_s + np.maximum(0.0, queued) * per_courier_s


def heuristic_arrays(*, prep_s: np.ndarray | float, travel_s: np.ndarray | float,
                     waiting: np.ndarray | float, idle: np.ndarray | float,
                     busy: np.ndarray | float, params: HeuristicParams = DEFAULT_HEURISTIC
                     ) -> Arrays:
    """(point, p10, p90) seconds: the later of food and courier, then the trip.

    The interval has two parts: the point without the queue (food or the pickup leg, then
    the trip) times ``p10_ratio`` / ``p90_ratio``, plus the queue's part times
    ``queue_p10`` / ``queue_p90``."""
    prep = np.asarray(prep_s, dtype=np.float64)
    trip = np.asarray(travel_s, dtype=np.float64)
    courier = courier_delay_s(waiting, idle, busy, params)
    base = np.maximum(prep, params.pickup_leg_s) + trip
    point = np.maximum(prep, courier) + trip
    queue = point - base
    return (point, base * params.p10_ratio + queue * params.queue_p10,
            base * params.p90_ratio + queue * params.queue_p90)


_COL = {name: i for i, name in enumerate(NUMERIC_COLUMNS)}


def no_queue_point(matrix: np.ndarray, params: HeuristicParams = DEFAULT_HEURISTIC
                   ) -> np.ndarray:
    """The heuristic's point with no courier queue, seconds, one per ``NUMERIC_COLUMNS``
    row: ``max(prep_mean_s, pickup_leg_s) + travel_s`` (the interval's ``base``). The
    learned models (``quantile_gbm``, ``weibull``) learn their correction over it."""
    return np.asarray(np.maximum(matrix[:, _COL["prep_mean_s"]], params.pickup_leg_s)
                      + matrix[:, _COL["travel_s"]])


@dataclass(frozen=True, slots=True)
class HeuristicModel:
    """The heuristic as an ``EtaModel`` over ``EtaFeatures`` rows.

    The rows carry supply as time series, not counts, so the counts the rule needs come
    from the last 5-minute bucket by Little's law: orders waiting = arrivals over one
    pickup leg, busy couriers = arrivals over one courier cycle; idle couriers as given.
    """

    params: HeuristicParams = DEFAULT_HEURISTIC

    @property
    def name(self) -> str:
        return self.params.name

    def predict_batch(self, matrix: np.ndarray) -> Arrays:
        per_s = matrix[:, _COL[f"orders_per_min_{SERIES_BUCKETS - 1}"]] / 60.0
        return heuristic_arrays(
            prep_s=matrix[:, _COL["prep_mean_s"]], travel_s=matrix[:, _COL["travel_s"]],
            waiting=per_s * self.params.pickup_leg_s,
            idle=matrix[:, _COL[f"idle_couriers_{SERIES_BUCKETS - 1}"]],
            busy=per_s * self.params.courier_cycle_s, params=self.params)


def _ordered(point: np.ndarray, p10: np.ndarray, p90: np.ndarray) -> Arrays:
    """Each row's values sorted and clipped at 0: p10 <= point <= p90, none negative."""
    stacked = np.sort(np.maximum(0.0, np.stack([p10, point, p90], axis=1)), axis=1)
    return stacked[:, 1], stacked[:, 0], stacked[:, 2]


@runtime_checkable
class RowsModel(Protocol):
    """A learned model that reads more of a row than ``numeric_matrix`` (the two-stage
    LightGBM model: the merchant id picks its typical cart): ``estimates`` serves it, as it
    is evaluated (ordered, non-negative windows)."""

    def estimates(self, rows: Sequence[EtaFeatures]) -> list[EtaEstimate]: ...


def estimate_batch(rows: Sequence[EtaFeatures], model: EtaModel) -> list[EtaEstimate]:
    """One estimate per row, through ``model`` in one batch (its ``estimates`` when it is a
    ``RowsModel``)."""
    if not rows:
        return []
    if isinstance(model, RowsModel):
        return model.estimates(rows)
    point, p10, p90 = _ordered(*(np.asarray(a, dtype=np.float64) for a in
                                 model.predict_batch(numeric_matrix(list(rows)))))
    return [EtaEstimate(point_s=float(a), p10_s=float(b), p90_s=float(c), model=model.name)
            for a, b, c in zip(point, p10, p90, strict=True)]


def estimate(features: EtaFeatures, model: EtaModel) -> EtaEstimate:
    return estimate_batch([features], model)[0]


def quote_estimate(*, distance_m: float, prep_s: float, waiting: int = 0, idle: int = 1,
                   busy: int = 0, speed_mps: float = travel.DEFAULT_SPEED_MPS,
                   service_s: float = travel.SERVICE_S,
                   params: HeuristicParams = DEFAULT_HEURISTIC) -> EtaEstimate:
    """The heuristic's estimate for a quote: ``distance_m`` of *road* merchant -> door,
    ``prep_s`` of preparation, and the region's counts now (orders waiting for a courier,
    idle and busy couriers; the defaults: one idle courier, no queue)."""
    point, p10, p90 = heuristic_arrays(
        prep_s=prep_s, travel_s=travel.trip_s(distance_m, speed_mps=speed_mps,
                                              service_s=service_s),
        waiting=waiting, idle=idle, busy=busy, params=params)
    return EtaEstimate(point_s=float(point), p10_s=float(p10), p90_s=float(p90),
                       model=params.name)


HOLDING = frozenset({"assigned", "at_pickup", "picked_up", "at_dropoff"})
"""Order statuses in which a courier holds the order: the live ETA's domain."""
_BEFORE_PICKUP = frozenset({"assigned", "at_pickup"})


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveState:
    """An order a courier holds, as the live feed sees it (epoch seconds, metres)."""

    now: float
    status: str
    """An ``OrderStatus`` value; outside ``HOLDING`` there is no live ETA."""
    courier_at: Point
    pickup: Point
    dropoff: Point
    speed_mps: float = travel.DEFAULT_SPEED_MPS
    food_ready_at: float | None = None
    via: tuple[Point, ...] = ()
    """A stacked order's stops still ahead of its door (its own pickup included while
    ahead), in the courier's route order (``app.routes``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveEstimate:
    remaining_m: float
    """Road metres the courier still rides before this order's door."""
    estimate: EtaEstimate
    """Seconds from ``LiveState.now`` to the handover at the door."""


def live_estimate(state: LiveState, params: HeuristicParams = DEFAULT_HEURISTIC
                  ) -> LiveEstimate | None:
    """The door time from the courier's position; None when no courier holds the order.

    Before pickup the courier rides to the merchant, cannot leave before the food is ready
    (``food_ready_at``), hands over there, rides to the door and hands over; after pickup
    the ride to the door and the handover remain; a stacked order's ``via`` stops each add
    a handover. The point never falls below ``food_ready_at`` plus the trip. The interval:
    the remaining time times the live ratios. Raises ValueError for a speed <= 0.
    """
    if state.status not in HOLDING:
        return None
    before = state.status in _BEFORE_PICKUP
    stops = (state.via if state.via else (state.pickup,) if before else ())
    remaining_m = travel.route_m((state.courier_at, *stops, state.dropoff))
    handovers = len(stops) * travel.PICKUP_HANDOVER_S + travel.DROPOFF_HANDOVER_S
    duration = travel.ride_s(remaining_m, state.speed_mps) + handovers
    if before and state.food_ready_at is not None:
        trip = travel.travel_s(state.pickup, state.dropoff, speed_mps=state.speed_mps)
        duration = max(duration, state.food_ready_at - state.now + trip)
    return LiveEstimate(remaining_m=remaining_m, estimate=EtaEstimate(
        point_s=duration, p10_s=duration * params.live_p10_ratio,
        p90_s=duration * params.live_p90_ratio, model=params.name))
