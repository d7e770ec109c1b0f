"""What an ETA model sees, what it predicts and what really happened: the one schema that
the engine, the delivery history, training and the benchmark share.

Two stages (the seed's explore and checkout ETAs): at *explore* a consumer browses, so only
the merchant, the place, the time and the market are known; at *checkout* the cart is known
too. ``EtaFeatures.items`` and ``subtotal_minor`` are ``None`` at explore.

The supply and demand time series cover the last 30 minutes in six 5-minute buckets,
oldest first (the seed's time-series features): orders placed per minute and idle couriers
(on shift, not carrying an order) in the order's region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SERIES_BUCKETS = 6
"""Six 5-minute buckets: the last 30 minutes."""
BUCKET_S = 300
UNKNOWN_SERIES: tuple[float, ...] = (math.nan,) * SERIES_BUCKETS
"""A series no source knows: NaN in every bucket."""
NEAR_S = 600.0
"""``orders_ahead_near``: merchants within 10 minutes of travel."""
MERCHANT_PICKUPS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class EtaFeatures:
    """Known when the ETA is asked for (placement time for training rows)."""

    merchant_id: str
    region: str
    hour: int
    """Local hour of day, 0-23."""
    weekday: int
    """0 is Monday."""
    distance_m: float
    """Great-circle distance merchant -> consumer."""
    travel_s: float
    """The travel-time model's estimate merchant -> consumer (with handovers)."""
    prep_mean_s: float
    """The merchant's recent mean preparation time (its history, else its default)."""
    prep_p90_s: float
    orders_per_min: tuple[float, ...]
    """Orders placed per minute in the region, ``SERIES_BUCKETS`` buckets, oldest first."""
    idle_couriers: tuple[float, ...]
    """Mean idle couriers in the region over each bucket, oldest first."""
    items: int | None = None
    """Cart size; ``None`` at the explore stage."""
    subtotal_minor: int | None = None
    """Cart subtotal in minor units; ``None`` at the explore stage."""
    # Where the couriers and the work are at that moment (NaN: not known by the source;
    # models treat it as missing). Courier "reach": seconds until a courier could be at the
    # merchant, ``max(free - now, 0) + travel to the merchant``, over couriers on shift
    # (busy ones from where and when their current work ends).
    courier_reach_s: float = math.nan
    """The first courier's reach, idle or freeing up."""
    courier_reach_3_s: float = math.nan
    """The third courier's reach (how many could come soon, not just one)."""
    idle_nearest_s: float = math.nan
    """Travel of the nearest idle courier to the merchant (NaN when none is idle)."""
    open_orders: float = math.nan
    """Orders of the region waiting for a courier (not assigned), this one excluded."""
    merchant_open_orders: float = math.nan
    """The merchant's orders placed and not yet picked up (its kitchen load), this one
    excluded."""
    # The courier queue at that moment (NaN: not known by the source). "Ahead": waiting for a
    # courier (not assigned) with food ready no later than this order's.
    orders_ahead: float = math.nan
    """The region's orders ahead of this one in the queue for couriers."""
    orders_ahead_near: float = math.nan
    """Those of ``orders_ahead`` whose merchant is within ``NEAR_S`` of travel of this one."""
    couriers_on_shift: float = math.nan
    """Couriers on shift in the region now (idle or busy)."""
    committed_orders: float = math.nan
    """Orders the dispatcher has committed to a courier and not yet picked up (its backlog)."""
    busy_backlog_s: float = math.nan
    """Mean over the couriers on shift of the seconds until each is free (0 when idle)."""
    queue_pickup_s: float = math.nan
    """When this order could be picked up if every waiting order, earliest ready first, took
    the courier that could pick it up soonest (committed work first): seconds from now."""
    merchant_pickup_delay_s: float = math.nan
    """Mean seconds the merchant's food waited for its courier (pickup - ready) over its last
    ``MERCHANT_PICKUPS`` pickups within the last hour (NaN with none)."""
    assign_delay_s: tuple[float, ...] = UNKNOWN_SERIES
    """Realised assignment delays: mean seconds placement -> first commitment of the orders
    committed in each bucket, oldest first (NaN: none in the bucket, or not known)."""
    pickup_delay_s: tuple[float, ...] = UNKNOWN_SERIES
    """Realised pickup delays: mean seconds food ready -> picked up of the pickups in each
    bucket, oldest first (NaN: none, or not known)."""

    def __post_init__(self) -> None:
        if not 0 <= self.hour <= 23:
            raise ValueError(f"hour must be in 0..23 (got {self.hour})")
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be in 0..6 (got {self.weekday})")
        for name in ("distance_m", "travel_s", "prep_mean_s", "prep_p90_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 (got {value})")
        for name in EXTRA_COLUMNS:
            value = getattr(self, name)
            if value < 0:  # NaN (unknown) passes
                raise ValueError(f"{name} must be >= 0 or NaN (got {value})")
        for name in ("orders_per_min", "idle_couriers", *EXTRA_SERIES):
            series = getattr(self, name)
            if len(series) != SERIES_BUCKETS:
                raise ValueError(f"{name} must have {SERIES_BUCKETS} buckets (got {len(series)})")
        for name in EXTRA_SERIES:
            if any(v < 0 for v in getattr(self, name)):  # NaN (unknown) passes
                raise ValueError(f"{name} must be >= 0 or NaN in every bucket "
                                 f"(got {getattr(self, name)})")

    @property
    def stage(self) -> str:
        return "explore" if self.items is None else "checkout"


@dataclass(frozen=True, slots=True, kw_only=True)
class EtaOutcome:
    """What happened, in seconds from placement: the seed's stages and the total."""

    assign_s: float
    """Placement -> a courier accepted."""
    to_merchant_s: float
    """Accepted -> the courier arrived at the merchant."""
    wait_s: float
    """Arrived at the merchant -> picked up."""
    to_consumer_s: float
    """Picked up -> delivered."""
    total_s: float
    """Placement -> delivered (click-to-door)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EtaEstimate:
    """A point and an 80% interval, all in seconds from ``EtaFeatures``' moment."""

    point_s: float
    p10_s: float
    p90_s: float
    model: str
    """The model's name and version, e.g. ``heuristic`` or ``lgbm-3``."""

    def __post_init__(self) -> None:
        if not 0 <= self.p10_s <= self.p90_s:
            raise ValueError(f"need 0 <= p10_s <= p90_s (got {self.p10_s}, {self.p90_s})")


EXTRA_COLUMNS: tuple[str, ...] = (
    "courier_reach_s", "courier_reach_3_s", "idle_nearest_s", "open_orders",
    "merchant_open_orders",
    "orders_ahead", "orders_ahead_near", "couriers_on_shift", "committed_orders",
    "busy_backlog_s", "queue_pickup_s", "merchant_pickup_delay_s",
)
"""Scalar fields added after the first schema, at the end of the matrix (NaN when unknown),
in the order they were added."""
EXTRA_SERIES: tuple[str, ...] = ("assign_delay_s", "pickup_delay_s")
"""Series fields added after the first schema, ``SERIES_BUCKETS`` columns each after
``EXTRA_COLUMNS`` (``<name>_0`` oldest)."""
NUMERIC_COLUMNS: tuple[str, ...] = (
    "hour", "weekday", "distance_m", "travel_s", "prep_mean_s", "prep_p90_s",
    *(f"orders_per_min_{i}" for i in range(SERIES_BUCKETS)),
    *(f"idle_couriers_{i}" for i in range(SERIES_BUCKETS)),
    "items", "subtotal_minor", *EXTRA_COLUMNS,
    *(f"{name}_{i}" for name in EXTRA_SERIES for i in range(SERIES_BUCKETS)),
)
"""The numeric matrix's columns, in order; ``items``/``subtotal_minor`` are NaN at explore."""


def numeric_matrix(rows: list[EtaFeatures] | tuple[EtaFeatures, ...]) -> np.ndarray:
    """Rows as a float64 matrix with ``NUMERIC_COLUMNS`` (batch inference and training)."""
    out = np.empty((len(rows), len(NUMERIC_COLUMNS)), dtype=np.float64)
    for i, r in enumerate(rows):
        out[i] = (r.hour, r.weekday, r.distance_m, r.travel_s, r.prep_mean_s, r.prep_p90_s,
                  *r.orders_per_min, *r.idle_couriers,
                  math.nan if r.items is None else r.items,
                  math.nan if r.subtotal_minor is None else r.subtotal_minor,
                  *(getattr(r, name) for name in EXTRA_COLUMNS),
                  *r.assign_delay_s, *r.pickup_delay_s)
    return out
