"""Walking an order through its lifecycle with the use cases, for tests that need one at a
given step (the ledger, refunds and payments tests share it)."""

from __future__ import annotations

from typing import Any

from lastmile.app import fulfilment, offers
from lastmile.core.orders import SYSTEM, Actor, ActorKind


def to_pickup(p: Any, order_id: str, merchant_id: str, courier_id: str, *,
              device_id: str) -> Actor:
    """Confirm the order, put ``courier_id`` on shift, offer and accept it, mark it ready and
    bring the courier to the merchant; returns the courier as an actor."""
    svc = p.services
    merchant = Actor(kind=ActorKind.MERCHANT, id=merchant_id)
    courier = Actor(kind=ActorKind.COURIER, id=courier_id)
    fulfilment.confirm_order(svc, order_id, prep_estimate_s=600, actor=merchant)
    fulfilment.start_shift(svc, courier_id, device_id=device_id,
                           ends_at=p.clock.now() + 3600, actor=courier)
    offer = offers.make_offer(svc, courier_id=courier_id, order_ids=(order_id,), actor=SYSTEM)
    offers.accept_offer(svc, offer.id, actor=courier)
    fulfilment.mark_ready(svc, order_id, actor=merchant)
    fulfilment.courier_arrive(svc, order_id, actor=courier)
    return courier
