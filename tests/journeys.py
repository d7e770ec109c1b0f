"""Walking an order through its lifecycle with the use cases, for tests that need one at a
given step (the ledger, refunds and payments tests share it)."""

from __future__ import annotations

from typing import Any

from lastmile.app import fulfilment, offers
from lastmile.core.orders import SYSTEM, Actor, ActorKind, DeliveryProof, Order


def to_pickup(p: Any, order_id: str, merchant_id: str, courier_id: str, *,
              device_id: str, shift_s: float = 3600, services: Any = None) -> Actor:
    """Confirm the order, put ``courier_id`` on shift, offer and accept it, mark it ready and
    bring the courier to the merchant; returns the courier as an actor. ``services``:
    another wiring of the platform's (default ``p.services``)."""
    svc = services or p.services
    merchant = Actor(kind=ActorKind.MERCHANT, id=merchant_id)
    courier = Actor(kind=ActorKind.COURIER, id=courier_id)
    fulfilment.confirm_order(svc, order_id, prep_estimate_s=600, actor=merchant)
    fulfilment.start_shift(svc, courier_id, device_id=device_id,
                           ends_at=p.clock.now() + shift_s, actor=courier)
    offer = offers.make_offer(svc, courier_id=courier_id, order_ids=(order_id,), actor=SYSTEM)
    offers.accept_offer(svc, offer.id, actor=courier)
    fulfilment.mark_ready(svc, order_id, actor=merchant)
    fulfilment.courier_arrive(svc, order_id, actor=courier)
    return courier


def deliver_after(p: Any, order: Order, courier_id: str, *, ride_s: float,
                  services: Any = None) -> Order:
    """Take ``order`` to the door with ``courier_id`` (on a two-hour shift): to the pickup,
    picked up, ``ride_s`` seconds on the clock, arrived and delivered; the delivered order."""
    svc = services or p.services
    courier = to_pickup(p, order.id, order.merchant_id, courier_id, device_id="phone-1",
                        shift_s=7200, services=svc)
    fulfilment.pick_up(svc, order.id, actor=courier)
    p.clock.advance(ride_s)
    fulfilment.courier_arrive(svc, order.id, actor=courier)
    return fulfilment.deliver(svc, order.id, proof=DeliveryProof(photo_ref="s3://p/1.jpg"),
                              actor=courier)
