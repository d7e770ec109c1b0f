"""The ETA history: every order's features as known when it was placed, and its realised
stages once it is delivered or cancelled (``core.eta.history``; docs/eta.md, "History").

- ``features_at`` computes the features known at a moment (reads only): the one definition,
  for the history and for a model served at quote time.
- ``capture`` runs inside the placement transaction (marketplace orders and Drive
  deliveries): it reads what the platform knows at that moment and stores it, so a record
  never holds anything learned later. Four statements: the region's supply minutes (at most
  30 rows), the merchant's last preparation times (at most 50), the record, and the minute
  counter's upsert (the idle couriers come from the quote's count; Drive counts them: a
  fifth); since 0020 also the merchant's open orders (a count, at most ``KITCHEN_LIMIT``),
  one live-store ``nearest`` query and, for Drive, the region's waiting orders (a count,
  and the order's own status; a marketplace order takes its quote's count).
- ``record_finish`` runs inside the transaction that moves an order to a terminal state
  (``aggregates.apply_command``): one UPDATE of the open record.
- ``training_set`` and ``records`` read it back (``lastmile eta export``, training).
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from lastmile.app.context import Services
from lastmile.app.ports import UnitOfWork
from lastmile.app.tenants import pricing_in
from lastmile.core.eta import travel
from lastmile.core.eta.features import EtaFeatures, EtaOutcome
from lastmile.core.eta.history import (
    PREP_SAMPLES,
    WINDOW_MINUTES,
    HistoryRecord,
    finish_of,
    minute_of,
    prep_stats,
    supply_series,
)
from lastmile.core.geo import Point, haversine_m
from lastmile.core.model import CourierStatus, Region
from lastmile.core.orders import AWAITING_COURIER, COURIER_BEFORE_PICKUP, Order, OrderStatus

MARKETPLACE = "marketplace"
DRIVE = "drive"
_WAITING = frozenset({OrderStatus.PLACED, *AWAITING_COURIER})
"""An order no courier holds yet."""
_WAITING_VALUES = sorted(s.value for s in _WAITING)
_NOT_PICKED_UP = _WAITING | COURIER_BEFORE_PICKUP
KITCHEN_LIMIT = 50
"""The merchant's open orders are counted up to this many (a cap, not a sample)."""
IDLE_RADIUS_M = 20_000.0
"""The nearest idle courier is looked for within this distance of the merchant."""


def features_at(uow: UnitOfWork, services: Services, *, merchant_id: str, region: Region,
                pickup: Point, dropoff: Point, now: float, default_prep_s: float,
                idle_couriers: int, items: int | None = None,
                subtotal_minor: int | None = None, order_id: str | None = None,
                open_orders: int | None = None) -> EtaFeatures:
    """The ``EtaFeatures`` the platform knows at ``now``; reads only (four statements and,
    with a live store, one nearest-courier query).

    The one definition of the features, for the history and for serving a model at quote
    time alike (a model trained on the history sees the same numbers when it is served).
    Hour and weekday are the region's local time (``Region.time_zone``); the travel
    estimate is the pricing policy's (road distance over the courier speed, plus the
    handovers), the one the quote uses; ``idle_couriers`` is the region's idle couriers now
    (the quote's count); ``items``/``subtotal_minor`` None at the explore stage.

    Open work and couriers near the merchant: ``open_orders`` the region's orders no courier
    holds (placed, confirmed, ready, unassigned), ``merchant_open_orders`` the merchant's
    orders not picked up (up to ``KITCHEN_LIMIT``), both without ``order_id`` (the order
    being placed, when it is already stored); ``idle_nearest_s`` the pricing travel time
    from the nearest fresh idle courier in the live store (``Services.live``; NaN without
    one, or with none within ``IDLE_RADIUS_M``). ``courier_reach_s`` / ``courier_reach_3_s``
    stay NaN here: when busy couriers free up needs each one's route (the dispatch
    snapshot's work), too costly per quote. ``open_orders``: the region's waiting orders
    as the caller's quote just counted them (``ordering.supply_demand``: the same statuses,
    before this order was stored), instead of counting them again.
    """
    local = datetime.fromtimestamp(now, ZoneInfo(region.time_zone))
    per_min, idle = supply_series(
        uow.eta_history.supply_minutes(region.id,
                                       since_minute=minute_of(now) - WINDOW_MINUTES + 1),
        now=now, idle_now=idle_couriers)
    prep_mean_s, prep_p90_s = prep_stats(
        uow.eta_history.prep_samples(merchant_id, limit=PREP_SAMPLES),
        default_s=default_prep_s)
    distance_m = haversine_m(pickup, dropoff)
    policy = pricing_in(uow, services, region.id)
    if open_orders is not None:
        waiting = open_orders
    else:
        waiting = sum(uow.orders.count_by_status(region.id, statuses=_WAITING_VALUES).values())
        if order_id is not None and uow.orders.status_of(order_id) in _WAITING:
            waiting -= 1  # the order being placed, already stored
    # Counted, not loaded: decoding up to 50 whole orders per placement to count them was
    # a tenth of a placement's CPU on the big day (docs/simulator.md).
    kitchen = uow.orders.count_of_merchant(merchant_id, statuses=_NOT_PICKED_UP,
                                           excluding=order_id, limit=KITCHEN_LIMIT)
    return EtaFeatures(
        merchant_id=merchant_id, region=region.id, hour=local.hour, weekday=local.weekday(),
        distance_m=distance_m,
        travel_s=travel.travel_s(pickup, dropoff, speed_mps=policy.courier_speed_mps,
                                 service_s=policy.service_s),
        prep_mean_s=prep_mean_s, prep_p90_s=prep_p90_s, orders_per_min=per_min,
        idle_couriers=idle, items=items, subtotal_minor=subtotal_minor,
        idle_nearest_s=_idle_nearest_s(services, region.id, pickup, now,
                                       policy.courier_speed_mps),
        open_orders=float(max(waiting, 0)),
        merchant_open_orders=float(kitchen))


def _idle_nearest_s(services: Services, region_id: str, merchant: Point, now: float,
                    speed_mps: float) -> float:
    """Road travel (``core.eta.travel``) of the nearest fresh idle courier to ``merchant``, at
    the pricing speed; NaN without a live store or an idle courier within reach."""
    if services.live is None:
        return math.nan
    found = services.live.nearest(region_id, merchant.lat, merchant.lng, IDLE_RADIUS_M,
                                  now=now, limit=1, statuses=[CourierStatus.IDLE.value])
    return travel.ride_s(found[0][1] * travel.ROAD_FACTOR, speed_mps) if found else math.nan


def capture(uow: UnitOfWork, services: Services, *, order: Order, region: Region,
            default_prep_s: float, idle_couriers: int | None = None,
            open_orders: int | None = None, channel: str = MARKETPLACE,
            features: EtaFeatures | None = None) -> HistoryRecord:
    """Store the features of ``order``, just placed, in the caller's transaction
    (``features_at`` its placement), and count it in its region's minute.

    A Drive delivery has no cart: ``items`` and ``subtotal_minor`` are None (``channel``
    says which it is). ``idle_couriers``: the region's idle couriers as the caller just
    counted them (its quote's), else counted here; ``open_orders`` likewise (the region's
    waiting orders as its quote counted them), else counted here. ``features``: ``features_at`` as the
    caller's quote just computed them for this order (a learned ETA model was served from
    them, in the same request), stored as they are instead of read a second time.
    """
    now = order.placed_at
    idle_now = (uow.couriers.count_by_status(region.id).get(CourierStatus.IDLE.value, 0)
                if idle_couriers is None else idle_couriers)
    cart = channel == MARKETPLACE
    features = features if features is not None else features_at(
        uow, services, merchant_id=order.merchant_id, region=region, pickup=order.pickup,
        dropoff=order.dropoff, now=now, default_prep_s=default_prep_s,
        idle_couriers=idle_now,
        items=sum(line.quantity for line in order.lines) if cart else None,
        subtotal_minor=order.prices.subtotal.amount_minor if cart else None,
        order_id=order.id, open_orders=open_orders)
    record = HistoryRecord(
        order_id=order.id, channel=channel, placed_at=now, features=features,
        quoted_low_s=order.eta.low_at - now, quoted_s=order.eta.expected_at - now,
        quoted_high_s=order.eta.high_at - now)
    uow.eta_history.add(record)
    # Last: on PostgreSQL the minute's row stays locked until the placement commits.
    uow.eta_history.count_order(region.id, minute=minute_of(now), idle_couriers=idle_now)
    return record


def record_finish(uow: UnitOfWork, services: Services, order: Order) -> None:
    """Complete the record of ``order`` when it has just become terminal (else nothing)."""
    finish = finish_of(order, now=services.clock.now())
    if finish is not None:
        uow.eta_history.finish(order.id, finish)


def records(services: Services, *, since: float | None = None, until: float | None = None
            ) -> list[HistoryRecord]:
    """The current tenant's finished records of orders placed in ``[since, until)``."""
    with services.uow(read_only=True) as uow:
        return uow.eta_history.records(since=since, until=until)


def training_set(services: Services, *, since: float | None = None,
                 until: float | None = None) -> tuple[list[EtaFeatures], list[EtaOutcome]]:
    """The current tenant's complete deliveries placed in ``[since, until)``: features and
    outcomes, aligned."""
    with services.uow(read_only=True) as uow:
        return uow.eta_history.training_set(since=since, until=until)
