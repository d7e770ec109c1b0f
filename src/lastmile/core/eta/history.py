"""The delivery history that ETA models learn from: the features known when an order was
placed and what then happened to it (issue 12, item 2).

Pure rules, no I/O; ``app.eta_history`` loads their inputs and stores the records:

- ``supply_series``: the six 5-minute buckets of orders per minute and idle couriers from
  per-minute counters of the region (``MinuteCount``);
- ``prep_stats``: a merchant's recent mean and p90 preparation time from its past orders;
- ``finish_of``: the realised stages of a delivered order (``EtaOutcome``), or the
  terminal failure of a cancelled one.

Stages, in seconds (``EtaOutcome``): placement -> the acceptance of the courier who carried
the order (an order that went back to dispatch counts from its last acceptance), -> that
courier at the merchant, -> picked up, -> delivered; they add up to the total click-to-door
exactly, by construction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from lastmile.core.eta.features import BUCKET_S, SERIES_BUCKETS, EtaFeatures, EtaOutcome
from lastmile.core.orders import Order, OrderStatus

MINUTE_S = 60
_MINUTES_PER_BUCKET = BUCKET_S // MINUTE_S
WINDOW_MINUTES = SERIES_BUCKETS * _MINUTES_PER_BUCKET
"""The series' 30 minutes: the current minute and the 29 before it."""

PREP_SAMPLES = 50
"""A merchant's preparation history is its last 50 orders whose food was ready."""
MIN_PREP_SAMPLES = 5
"""With fewer past orders than this, the merchant's own default stands for both figures."""


class MinuteCount(NamedTuple):
    """One region's counters for one minute (``minute`` = epoch seconds // 60): orders
    placed, and the idle couriers seen at each placement (sum and number of samples).

    A named tuple, not a frozen dataclass: every placement reads up to 30 of them, and a
    tuple is built from a database row in a fraction of a dataclass's time."""

    minute: int
    orders: int
    idle_sum: float
    idle_samples: int


def minute_of(at: float) -> int:
    return math.floor(at / MINUTE_S)


def supply_series(minutes: Sequence[MinuteCount], *, now: float, idle_now: float
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Orders per minute and mean idle couriers in six 5-minute buckets, oldest first.

    The buckets cover the current minute and the 29 before it (``WINDOW_MINUTES``); rows
    outside them are ignored. Orders per minute divides a bucket's orders by its elapsed
    minutes: 5, except the current bucket, which has run for 4 minutes plus the seconds of
    the current minute (orders placed before ``now``, never after).

    Idle couriers are sampled when an order is placed (the counters are written then), so a
    bucket without orders has no sample: it carries the previous bucket's mean forward, and
    buckets before the first sample take the first known mean. ``idle_now`` (what the
    platform sees at ``now``) is a sample of the current bucket, so there always is one.
    """
    current = minute_of(now)
    first = current - WINDOW_MINUTES + 1
    orders = [0] * SERIES_BUCKETS
    idle_sum = [0.0] * SERIES_BUCKETS
    samples = [0] * SERIES_BUCKETS
    for row in minutes:
        if not first <= row.minute <= current:
            continue
        i = (row.minute - first) // _MINUTES_PER_BUCKET
        orders[i] += row.orders
        idle_sum[i] += row.idle_sum
        samples[i] += row.idle_samples
    idle_sum[-1] += idle_now
    samples[-1] += 1
    elapsed_min = [float(_MINUTES_PER_BUCKET)] * SERIES_BUCKETS
    elapsed_min[-1] = _MINUTES_PER_BUCKET - 1 + (now - current * MINUTE_S) / MINUTE_S
    per_min = tuple(n / m for n, m in zip(orders, elapsed_min, strict=True))
    means: list[float | None] = [s / k if k else None for s, k in zip(idle_sum, samples,
                                                                        strict=True)]
    known = next(m for m in means if m is not None)  # the last bucket always has one
    idle: list[float] = []
    for m in means:
        known = m if m is not None else (idle[-1] if idle else known)
        idle.append(known)
    return per_min, tuple(idle)


def prep_stats(samples_s: Sequence[float], *, default_s: float) -> tuple[float, float]:
    """(mean, p90) of a merchant's past preparation times in seconds.

    Fewer than ``MIN_PREP_SAMPLES`` samples: ``(default_s, default_s)`` (the merchant's
    stated time; no spread is known yet). The p90 interpolates linearly between order
    statistics (numpy's default percentile). Negative samples are clipped to 0.
    """
    if len(samples_s) < MIN_PREP_SAMPLES:
        return float(default_s), float(default_s)
    xs = sorted(max(0.0, float(s)) for s in samples_s)
    rank = 0.9 * (len(xs) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    p90 = xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)
    return sum(xs) / len(xs), p90


@dataclass(frozen=True, slots=True, kw_only=True)
class Finish:
    """How an order ended: ``delivered`` with its stages, or ``cancelled`` (stages None)."""

    status: str
    finished_at: float
    prep_s: float | None
    """Placement -> the food was ready (``Order.ready_at``; set at pickup when the merchant
    never said), None when it never was."""
    outcome: EtaOutcome | None
    cancelled_from: str | None = None


def prep_of(order: Order) -> float | None:
    return None if order.ready_at is None else max(0.0, order.ready_at - order.placed_at)


def finish_of(order: Order, *, now: float) -> Finish | None:
    """The record of a terminal ``order`` (None while it is not terminal).

    A delivered order whose stage times are incomplete (delivered before the history
    existed) gets ``outcome`` None: a partial record is never passed off as a full one.
    """
    if order.status is OrderStatus.CANCELLED:
        c = order.cancellation
        return Finish(status="cancelled", finished_at=now, prep_s=prep_of(order), outcome=None,
                      cancelled_from=None if c is None else c.from_status.value)
    if order.status is not OrderStatus.DELIVERED:
        return None
    placed = order.placed_at
    assigned, at_pickup = order.assigned_at, order.at_pickup_at
    picked, delivered = order.picked_up_at, order.delivered_at
    outcome = None
    if (assigned is not None and at_pickup is not None and picked is not None
            and delivered is not None):
        outcome = EtaOutcome(assign_s=assigned - placed, to_merchant_s=at_pickup - assigned,
                             wait_s=picked - at_pickup, to_consumer_s=delivered - picked,
                             total_s=delivered - placed)
    return Finish(status="delivered", finished_at=order.delivered_at or now,
                  prep_s=prep_of(order), outcome=outcome)


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryRecord:
    """One order's row of the history: the features at placement, the quote it was given
    (seconds from placement), and how it ended (``finish`` None while it is open)."""

    order_id: str
    channel: str
    """``marketplace`` (a consumer's cart) or ``drive`` (a business's parcel: no cart)."""
    placed_at: float
    features: EtaFeatures
    quoted_low_s: float
    quoted_s: float
    quoted_high_s: float
    finish: Finish | None = None
