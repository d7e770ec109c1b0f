"""Late orders are flagged once, and everyone involved hears "running late" once."""

from fakes import in_memory
from lastmile.adapters.bus.outbox import relay_once
from lastmile.adapters.webhooks.worker import install_drive
from lastmile.app import delays, fulfilment, queries
from lastmile.app.auth import Principal
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.core.geo import Point
from lastmile.core.orders import Actor, ActorKind

OPS = Principal(role="ops", subject_id="ops")


def _order(p):
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    req = OrderRequest(consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
                       lines=(LineRequest(item_id=m.menu[0].id, quantity=1),),
                       dropoff=Point(lat=37.445, lng=-122.15))
    order = place_order(p.services, req, idempotency_key="k").order
    return fulfilment.confirm_order(p.services, order.id, prep_estimate_s=600,
                                    actor=Actor(kind=ActorKind.MERCHANT, id=m.id))


def _delayed(p, order_id):
    return [e for e in queries.order_history(p.services, order_id, who=OPS)
            if e.type == "order.delayed"]


@in_memory
def test_an_order_within_its_window_is_not_flagged(platform):
    order = _order(platform)
    platform.clock.set(order.eta.high_at - 1)
    assert delays.flag_late_orders(platform.services) == 0


@in_memory
def test_an_order_past_its_window_is_flagged_once(platform):
    order = _order(platform)
    platform.clock.set(order.eta.high_at + 60)
    assert delays.flag_late_orders(platform.services) == 1
    platform.clock.advance(600)
    assert delays.flag_late_orders(platform.services) == 0
    (event,) = _delayed(platform, order.id)
    assert event.data["late_by_s"] == 60 and event.data["status"] == "confirmed"


@in_memory
def test_finished_orders_are_never_flagged(platform):
    order = _order(platform)
    fulfilment.cancel_order(platform.services, order.id, reason="x",
                            actor=Actor(kind=ActorKind.OPS, id="ops"))
    platform.clock.set(order.eta.high_at + 60)
    assert delays.flag_late_orders(platform.services) == 0


def test_consumer_and_merchant_are_told_once(sqlite_platform):
    p = sqlite_platform
    workers = install_drive(p.container)
    order = _order(p)
    p.clock.set(order.eta.high_at + 60)
    delays.flag_late_orders(p.services)
    delays.flag_late_orders(p.services)
    while relay_once(p.services, p.container.bus):
        pass
    with p.services.uow(read_only=True) as uow:
        pending = uow.notifications.due(p.clock.now(), 100)
    late = sorted(n.recipient_kind for n in pending if n.kind.value == "delayed")
    assert late == ["consumer", "merchant"]  # no courier yet
    workers.stop()
