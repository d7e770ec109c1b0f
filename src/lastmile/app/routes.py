"""A courier's route: the stops of the orders it holds, in the order to visit them.

A stacked offer (``core.dispatch.stacking``) carries its planned route (pickup at merchant
1, pickup at merchant 2, the drop-offs); the route shows it as accepted, each stop marked
``done`` once every order of it has passed it (picked up / delivered or cancelled). Orders
held without a stack (one merchant's bundle, a later extension) follow: their pickup per
merchant, then their drop-offs, in the order the courier took them.

``stops_before_dropoff`` gives, for one order, the places the courier still visits before
its door: the live ETA of a stacked order follows its stop, not a straight ride.
"""

from __future__ import annotations

from dataclasses import dataclass

from lastmile.app.aggregates import load_courier
from lastmile.app.context import Services
from lastmile.app.fulfilment import check_self
from lastmile.app.ports import UnitOfWork
from lastmile.core.geo import Point
from lastmile.core.offers import OfferStop
from lastmile.core.orders import COURIER_BEFORE_PICKUP, Actor, Order


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteStop:
    kind: str  # "pickup" | "dropoff"
    merchant_id: str
    order_ids: tuple[str, ...]
    at: Point
    done: bool
    stack_id: str | None = None


def _done(stop: OfferStop, orders: dict[str, Order]) -> bool:
    held = [orders[i] for i in stop.order_ids if i in orders]
    if stop.kind == "pickup":
        return all(o.terminal or o.status not in COURIER_BEFORE_PICKUP for o in held)
    return all(o.terminal for o in held)


def route_of(uow: UnitOfWork, courier_id: str) -> list[RouteStop]:
    """The courier's route over the orders it holds now (see the module docstring)."""
    courier = uow.couriers.get(courier_id)
    if courier is None:
        return []
    orders: dict[str, Order] = {o.id: o for o in (uow.orders.get(i) for i in courier.active_order_ids)
              if o is not None}
    out: list[RouteStop] = []
    covered: set[str] = set()
    for oid in courier.active_order_ids:
        if oid in covered or oid not in orders:
            continue
        offer = uow.offers.accepted_for_order(oid)
        if offer is None or offer.stack_id is None or offer.courier_id != courier_id:
            continue
        covered.update(offer.order_ids)
        for stop in offer.stops:
            first = orders.get(stop.order_ids[0])
            if first is None:
                continue
            out.append(RouteStop(
                kind=stop.kind, merchant_id=stop.merchant_id, order_ids=stop.order_ids,
                at=first.pickup if stop.kind == "pickup" else first.dropoff,
                done=_done(stop, orders), stack_id=offer.stack_id))
    rest = [orders[i] for i in courier.active_order_ids if i in orders and i not in covered]
    merchants: dict[str, list[Order]] = {}
    for o in rest:
        merchants.setdefault(o.merchant_id, []).append(o)
    for merchant_id, group in merchants.items():
        stop = OfferStop(kind="pickup", merchant_id=merchant_id,
                         order_ids=tuple(o.id for o in group))
        out.append(RouteStop(kind="pickup", merchant_id=merchant_id, order_ids=stop.order_ids,
                             at=group[0].pickup, done=_done(stop, orders)))
    for o in rest:
        stop = OfferStop(kind="dropoff", merchant_id=o.merchant_id, order_ids=(o.id,))
        out.append(RouteStop(kind="dropoff", merchant_id=o.merchant_id, order_ids=(o.id,),
                             at=o.dropoff, done=_done(stop, orders)))
    return out


def courier_route(services: Services, courier_id: str, *, actor: Actor) -> list[RouteStop]:
    """The courier's route (its own only, or any courier's for ops and the system)."""
    check_self(actor, courier_id)
    with services.uow(read_only=True) as uow:
        load_courier(uow, courier_id)
        return route_of(uow, courier_id)


def stops_before_dropoff(route: list[RouteStop], order_id: str) -> tuple[Point, ...]:
    """The places still ahead of ``order_id``'s door on ``route`` (not done, in order),
    its own pickup included when still ahead; () when the order is not on the route."""
    ahead: list[Point] = []
    for stop in route:
        if stop.kind == "dropoff" and order_id in stop.order_ids:
            return tuple(ahead)
        if not stop.done:
            ahead.append(stop.at)
    return ()


def stacked_stops_ahead(services: Services, order: Order) -> tuple[Point, ...]:
    """For the live ETA: the stops ahead of ``order``'s door when it rides in a stack of
    its courier's route; () otherwise (a plain order keeps the straight-ride estimate)."""
    if order.courier_id is None or order.terminal:
        return ()
    with services.uow(read_only=True) as uow:
        route = route_of(uow, order.courier_id)
    if not any(s.stack_id is not None and order.id in s.order_ids for s in route):
        return ()
    return stops_before_dropoff(route, order.id)
