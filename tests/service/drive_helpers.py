"""Builders for Drive service and integration tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lastmile.adapters.bus.outbox import relay_once
from lastmile.adapters.webhooks.worker import install_drive
from lastmile.app import fulfilment, offers
from lastmile.core.delivery.model import Contact
from lastmile.core.delivery.request import DeliveryRequest
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind


def a_request(platform: Any, **overrides: Any) -> DeliveryRequest:
    m = platform.seed.merchant_ids[0]
    base = DeliveryRequest(
        merchant_id=m, external_delivery_id="ext-1", dropoff=Point(lat=37.44, lng=-122.14),
        contact=Contact(first_name="Ada", last_name="Lovelace", phone="+1 555 0100",
                        email="ada@example.test"),
        order_value_minor=2500, tip_minor=300, instructions="Ring twice")
    return replace(base, **overrides)


def courier_actor(platform: Any, i: int = 0) -> Actor:
    return Actor(kind=ActorKind.COURIER, id=platform.seed.courier_ids[i])


def to_dropoff(platform: Any, order_id: str, *, stop: str = "at_dropoff") -> Actor:
    """Drive ``order_id`` with the first courier up to ``stop`` (assigned | picked_up | at_dropoff)."""
    svc = platform.services
    courier = courier_actor(platform)
    fulfilment.start_shift(svc, courier.id, device_id="d1", ends_at=svc.clock.now() + 7200,
                           actor=courier)
    offer = offers.make_offer(svc, courier_id=courier.id, order_ids=(order_id,), actor=SYSTEM)
    offers.accept_offer(svc, offer.id, actor=courier)
    if stop == "assigned":
        return courier
    fulfilment.courier_arrive(svc, order_id, actor=courier)
    fulfilment.pick_up(svc, order_id, actor=courier)
    if stop == "picked_up":
        return courier
    fulfilment.courier_arrive(svc, order_id, actor=courier)
    return courier


def pump(platform: Any) -> None:
    """Subscribe the Drive producers (once) and relay the outbox to them."""
    install_drive(platform.container)
    while relay_once(platform.services, platform.container.bus) > 0:
        pass
