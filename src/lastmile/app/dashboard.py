"""Read models for the ops dashboard and the live order feed.

KPIs of a region, computed from the orders and the event history:

- ``open_orders``: orders not yet delivered or cancelled;
- ``active_couriers``: couriers on shift;
- click-to-door so far: ``delivered_at - placed_at`` of the orders delivered
  since local midnight in the region's time zone (mean, p50, p90, seconds);
- ``late_share``: of those, the share delivered after the quoted ETA's *high*
  bound (the promise the consumer saw), plus the open orders already past it;
- series over a window: open orders and couriers on shift at each step,
  rebuilt from order timestamps and shift events.

Scans are capped (``MAX_SCAN`` orders, newest first; ``MAX_COURIERS`` couriers)
so a dashboard refresh stays cheap; a region busier than that needs a
projection table fed by the bus instead.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.app.ports import UnitOfWork
from lastmile.core.errors import InvalidInput, NotFound
from lastmile.core.eta import late
from lastmile.core.eta.engine import LiveState, live_estimate
from lastmile.core.geo import Point
from lastmile.core.ids import OrderId
from lastmile.core.model import Merchant, Region
from lastmile.core.orders import TERMINAL, Order, OrderStatus
from lastmile.core.stats import quantile

MAX_SCAN = 5_000
MAX_COURIERS = 1_000
MAX_POINTS = 500
OPEN_STATUSES = tuple(s for s in OrderStatus if s not in TERMINAL)


def _region(uow: UnitOfWork, region_id: str) -> Region:
    region = uow.regions.get(region_id)
    if region is None:
        raise NotFound("region_not_found", f"no region {region_id}", field="region_id")
    return region


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionMap:
    region: Region
    merchants: tuple[Merchant, ...]


def region_map(services: Services, region_id: str) -> RegionMap:
    """The region's outline and its merchants, for drawing."""
    with services.uow(read_only=True) as uow:
        region = _region(uow, region_id)
        merchants = uow.merchants.list_region(region_id)
    return RegionMap(region=region, merchants=tuple(merchants))


def open_orders(services: Services, region_id: str, *, limit: int = 500) -> list[Order]:
    """Orders of the region not yet delivered or cancelled, newest first."""
    with services.uow(read_only=True) as uow:
        _region(uow, region_id)
        return uow.orders.list(region_id=region_id, statuses=OPEN_STATUSES, limit=limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesPoint:
    at: float
    open_orders: int
    active_couriers: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Kpis:
    region_id: str
    at: float
    since: float  # start of "so far": local midnight in the region's time zone
    open_orders: int
    active_couriers: int
    delivered: int
    cancelled: int
    click_to_door_mean_s: float | None
    click_to_door_p50_s: float | None
    click_to_door_p90_s: float | None
    late: int
    late_share: float | None  # late / delivered; None before the first delivery
    open_past_eta: int
    series: tuple[SeriesPoint, ...]


def local_midnight(now: float, time_zone: str) -> float:
    """Epoch seconds of the last midnight at or before ``now`` in ``time_zone`` (UTC if unknown)."""
    try:
        tz = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    day = datetime.fromtimestamp(now, tz).date()
    return datetime.combine(day, time(0), tz).timestamp()


def _closed_at(order: Order, cancelled_at: dict[OrderId, float]) -> float:
    if order.status is OrderStatus.DELIVERED and order.delivered_at is not None:
        return order.delivered_at
    if order.status is OrderStatus.CANCELLED:
        return cancelled_at.get(order.id, order.placed_at)
    return math.inf


def _shift_intervals(events: list[Event], now: float) -> list[tuple[float, float]]:
    spans, start = [], None
    for e in events:
        if e.type == "courier.shift_started":
            start = e.occurred_at
        elif e.type == "courier.shift_ended" and start is not None:
            spans.append((start, e.occurred_at))
            start = None
    if start is not None:
        spans.append((start, math.inf))
    return spans


def _steps(now: float, window_s: int, step_s: int) -> list[float]:
    if not 60 <= window_s <= 7 * 86_400:
        raise InvalidInput("invalid_window", f"window_s must be in [60, 604800] (got {window_s})",
                           field="window_s")
    if not 1 <= step_s <= window_s:
        raise InvalidInput("invalid_step", f"step_s must be in [1, window_s={window_s}] "
                           f"(got {step_s})", field="step_s")
    if window_s // step_s > MAX_POINTS:
        raise InvalidInput("too_many_points", f"window_s / step_s must be <= {MAX_POINTS} "
                           f"(got {window_s // step_s})", field="step_s")
    n = window_s // step_s
    return [now - (n - i) * step_s for i in range(n)] + [now]


SHIFT_EVENTS = ("courier.shift_started", "courier.shift_ended")
MAX_SHIFT_S = 16 * 3600  # the longest shift the courier API accepts


def kpis(services: Services, region_id: str, *, window_s: int = 3600,
         step_s: int = 60) -> Kpis:
    """The region's KPI tiles now and their series over the last ``window_s`` seconds."""
    now = services.clock.now()
    steps = _steps(now, window_s, step_s)
    with services.uow(read_only=True) as uow:
        region = _region(uow, region_id)
        orders = uow.orders.list(region_id=region_id, limit=MAX_SCAN)
        counts = uow.orders.count_by_status(region_id)
        cancelled_at: dict[OrderId, float] = {
            OrderId(e.subject_id): e.occurred_at
            for e in uow.events.of_types(region_id, ["order.cancelled"], since=steps[0])}
        couriers = uow.couriers.list_region(region_id)[:MAX_COURIERS]
        # A shift that overlaps the window started at most MAX_SHIFT_S before it.
        shift_events = uow.events.of_types(region_id, SHIFT_EVENTS,
                                           since=steps[0] - MAX_SHIFT_S)
        by_courier: dict[str, list[Event]] = defaultdict(list)
        for e in shift_events:
            by_courier[e.subject_id].append(e)
        shifts = [_shift_intervals(by_courier[c.id], now) for c in couriers]
    since = local_midnight(now, region.time_zone)
    delivered = [o for o in orders if o.status is OrderStatus.DELIVERED
                 and o.delivered_at is not None and o.delivered_at >= since]
    c2d = [o.delivered_at - o.placed_at for o in delivered if o.delivered_at is not None]
    n_late = sum(1 for o in delivered if o.delivered_at is not None
                 and late.is_late(o.delivered_at, late.promised_end(o.eta.high_at)))
    open_now = [o for o in orders if not o.terminal]
    series = tuple(
        SeriesPoint(
            at=t,
            open_orders=sum(1 for o in orders
                            if o.placed_at <= t < _closed_at(o, cancelled_at)),
            active_couriers=sum(1 for spans in shifts if any(a <= t < b for a, b in spans)),
        )
        for t in steps)
    return Kpis(
        region_id=region_id, at=now, since=since,
        open_orders=sum(n for s, n in counts.items() if OrderStatus(s) not in TERMINAL),
        active_couriers=sum(1 for c in couriers if c.on_shift),
        delivered=len(delivered),
        cancelled=sum(1 for o in orders if o.status is OrderStatus.CANCELLED
                      and cancelled_at.get(o.id, o.placed_at) >= since),
        click_to_door_mean_s=sum(c2d) / len(c2d) if c2d else None,
        click_to_door_p50_s=quantile(c2d, 0.5), click_to_door_p90_s=quantile(c2d, 0.9),
        late=n_late, late_share=n_late / len(delivered) if delivered else None,
        open_past_eta=sum(1 for o in open_now
                          if late.is_late(now, late.promised_end(o.eta.high_at))),
        series=series,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineStep:
    event: Event
    since_placed_s: float
    since_previous_s: float


def timeline(events: list[Event]) -> list[TimelineStep]:
    """An order's events with the time since it was placed and since the step before."""
    if not events:
        return []
    start = events[0].occurred_at
    steps, previous = [], start
    for e in events:
        steps.append(TimelineStep(event=e, since_placed_s=e.occurred_at - start,
                                  since_previous_s=e.occurred_at - previous))
        previous = e.occurred_at
    return steps


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveEta:
    remaining_m: float
    duration_s: float
    eta_at: float
    # The ETA engine's 80% interval around ``eta_at`` (epoch s) and the model behind it.
    p10_at: float | None = None
    p90_at: float | None = None
    model: str = "heuristic"


def live_eta(*, now: float, courier_at: Point, speed_mps: float, status: OrderStatus,
             pickup: Point, dropoff: Point, food_ready_at: float | None = None,
             via: tuple[Point, ...] = ()) -> LiveEta | None:
    """Updated delivery estimate from the courier's position; None when no courier carries it.

    The ETA engine's live estimate (``core.eta.engine.live_estimate``): before pickup
    (assigned, at_pickup) the courier still rides to the merchant, cannot leave before the
    food is ready (``food_ready_at``) and hands over there, then rides to the consumer;
    after pickup only the ride to the consumer remains; each ends with the handover at the
    door. Road distance and speed come from the one travel model (``core.eta.travel``);
    ``speed_mps`` is the courier's vehicle's. The quoted window stays the promise. A stacked
    order passes ``via``: its ETA follows its stop on the courier's route.
    """
    if speed_mps <= 0:
        raise InvalidInput("invalid_speed", f"speed_mps must be > 0 (got {speed_mps})",
                           field="speed_mps")
    live = live_estimate(LiveState(now=now, status=status.value, courier_at=courier_at,
                                   pickup=pickup, dropoff=dropoff, speed_mps=speed_mps,
                                   food_ready_at=food_ready_at, via=via))
    if live is None:
        return None
    e = live.estimate
    return LiveEta(remaining_m=live.remaining_m, duration_s=e.point_s, eta_at=now + e.point_s,
                   p10_at=now + e.p10_s, p90_at=now + e.p90_s, model=e.model)


def food_ready_at(order: Order) -> float | None:
    """When the food is (or is expected to be) ready: actual, else confirmed + prep estimate."""
    if order.ready_at is not None:
        return order.ready_at
    if order.confirmed_at is not None and order.prep_estimate_s is not None:
        return order.confirmed_at + order.prep_estimate_s
    return None
