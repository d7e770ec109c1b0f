"""Builders shared by the consistency and race tests: orders awaiting a courier, shifts."""

from __future__ import annotations

from lastmile.app import fulfilment, queries
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind, Order

DROP = Point(lat=37.445, lng=-122.15)
OPS = Actor(kind=ActorKind.OPS, id="ops-1")


def a_confirmed_order(p, *, merchant: int = 0, key: str = "k") -> Order:
    m = queries.get_merchant(p.services, p.seed.merchant_ids[merchant])
    req = OrderRequest(consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
                       lines=(LineRequest(item_id=m.menu[0].id, quantity=1),), dropoff=DROP)
    order = place_order(p.services, req, idempotency_key=key).order
    return fulfilment.confirm_order(p.services, order.id, prep_estimate_s=600,
                                    actor=Actor(kind=ActorKind.MERCHANT, id=m.id))


def on_shift(p, i: int = 0) -> str:
    cid = p.seed.courier_ids[i]
    fulfilment.start_shift(p.services, cid, device_id=f"d{i}",
                           ends_at=p.clock.now() + 4 * 3600, actor=SYSTEM)
    return cid


def courier_actor(courier_id: str) -> Actor:
    return Actor(kind=ActorKind.COURIER, id=courier_id)
