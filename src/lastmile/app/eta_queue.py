"""``heuristic-3`` at quote time: the region's courier queue as the dispatcher would see it.

``queue_state`` reads, in the caller's unit of work, what the dispatch round reads
(``app.dispatching.load_snapshot``) minus what only dispatch needs (live offers, shift
ends): the orders waiting for a courier (placed ones too) with their expected ready times, and each courier
on shift, not banned and not silent, at the end of its committed route (where and when it
frees up, from its live position, at its own vehicle's speed). ``estimate`` plays the queue
with the new order (``core.eta.queue``). Three reads: the waiting orders, the couriers on
shift, the orders they hold (plus the merchants' preparation times when an order waits
unconfirmed).
"""

from __future__ import annotations

from lastmile.app.context import Services
from lastmile.app.dispatching import LiveTravel, Plane, live_position, ready_s, route_end
from lastmile.app.live import LiveStore
from lastmile.app.ports import UnitOfWork
from lastmile.core.eta import travel
from lastmile.core.eta.features import EtaEstimate
from lastmile.core.eta.queue import (
    DEFAULT_QUEUE,
    QueueCourier,
    QueueOrder,
    QueueParams,
    QueueState,
    defers,
    queue_estimate,
)
from lastmile.core.geo import Point
from lastmile.core.model import Courier, Merchant, Region
from lastmile.core.orders import AWAITING_COURIER, Order, OrderStatus

_WAITING = sorted(AWAITING_COURIER | {OrderStatus.PLACED})
"""Orders no courier holds: the dispatcher's (confirmed, ready, unassigned) and those the
merchant has not confirmed yet (they will need a courier too)."""
MAX_WAITING = 4_000
"""The dispatch round's cap (``app.dispatching.MAX_OPEN_ORDERS``): the oldest first."""
CONFIRM_S = 60.0
"""A new order's food: confirmation (the simulator's kitchens take 20-120 s) then the
merchant's preparation time (the dispatcher's own ``ready_s`` rule from there on)."""


def queue_state(uow: UnitOfWork, services: Services, region: Region, now: float
                ) -> tuple[QueueState, Plane]:
    """The region's queue now, and the plane its metres are on (around its centre)."""
    centre = region.center()
    plane = Plane(origin=centre)
    waiting = uow.orders.list(region_id=region.id, statuses=_WAITING, limit=MAX_WAITING,
                              oldest_first=True)
    unconfirmed = any(o.ready_at is None and o.confirmed_at is None for o in waiting)
    prep = uow.merchants.prep_times(region.id) if unconfirmed else {}
    orders = tuple(_queued(o, plane, CONFIRM_S + prep.get(o.merchant_id, 600))
                   for o in waiting)
    on_shift = [c for c in uow.couriers.list_region(region.id, on_shift_only=True)
                if not c.banned]
    held = uow.orders.get_many({i for c in on_shift for i in c.active_order_ids})
    live = services.live
    # One read of the region's fresh positions (what ``live.get`` answers per courier).
    fresh = ({p.courier_id: Point(lat=p.lat, lng=p.lng)
              for p in live.all_in_region(region.id, now=now)} if live is not None else None)
    couriers = []
    for c in on_shift:
        found = _courier(c, held, fresh, live, plane, centre, now)
        if found is not None:
            couriers.append(found)
    return QueueState(now_s=now, couriers=tuple(couriers), waiting=orders), plane


def _queued(o: Order, plane: Plane, prep_fallback_s: float) -> QueueOrder:
    px, py = plane.xy(o.pickup)
    dx, dy = plane.xy(o.dropoff)
    return QueueOrder(merchant_id=o.merchant_id, pickup_x_m=px, pickup_y_m=py,
                      dropoff_x_m=dx, dropoff_y_m=dy,
                      ready_s=max(o.placed_at, ready_s(o, prep_fallback_s)))


def _courier(c: Courier, held: dict[str, Order], fresh: dict[str, Point] | None,
             live: LiveStore | None, plane: Plane, centre: Point, now: float
             ) -> QueueCourier | None:
    """Where and when ``c`` is next free, at its vehicle's speed; None when silent (the
    dispatcher's rule, ``app.dispatching.live_position``)."""
    speed = travel.speed_of(c.vehicle.value)
    if fresh is None or live is None:
        where: Point | None = c.location or centre
    else:
        where = fresh.get(c.id) or live_position(live, c, centre, now)
    if where is None:
        return None
    mine = [o for o in (held.get(i) for i in c.active_order_ids)
            if o is not None and not o.terminal]
    x, y = plane.xy(where)
    if not mine:
        return QueueCourier(x_m=x, y_m=y, free_s=now, speed_mps=speed)
    free_s, x, y, _ = route_end((x, y), mine, now, plane, LiveTravel(speed_mps=speed))
    return QueueCourier(x_m=x, y_m=y, free_s=free_s, speed_mps=speed)


def estimate(uow: UnitOfWork, services: Services, *, merchant: Merchant, region: Region,
             dropoff: Point, now: float, params: QueueParams = DEFAULT_QUEUE
             ) -> EtaEstimate | None:
    """``heuristic-3``'s estimate for a new order of ``merchant`` to ``dropoff`` at ``now``:
    its food ready after confirmation and the merchant's preparation time. None when the
    region has a backlog (``core.eta.queue.defers``): the quote's ``heuristic-2`` stands."""
    state, plane = queue_state(uow, services, region, now)
    if defers(state, params):
        return None
    px, py = plane.xy(merchant.location)
    dx, dy = plane.xy(dropoff)
    order = QueueOrder(merchant_id=merchant.id, pickup_x_m=px, pickup_y_m=py, dropoff_x_m=dx,
                       dropoff_y_m=dy, ready_s=now + CONFIRM_S + merchant.prep_time_s)
    return queue_estimate(state, order, params)
