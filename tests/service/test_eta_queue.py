"""``heuristic-3`` served in quotes (app.eta_queue): the region's couriers and waiting orders,
read at quote time, played forward by core.eta.queue."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fakes import in_memory
from lastmile.app import eta_queue, fulfilment, offers, queries
from lastmile.app.ordering import LineRequest, OrderRequest, get_quote, place_order
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind

DROP = Point(lat=37.445, lng=-122.15)


def _queue(services):
    return replace(services, pricing=replace(services.pricing, eta_queue=True))


def _request(p, consumer=0):
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    return OrderRequest(consumer_id=p.seed.consumer_ids[consumer], merchant_id=m.id,
                        lines=(LineRequest(item_id=m.menu[0].id, quantity=1),), dropoff=DROP)


def _on_shift(p, svc, courier_id):
    fulfilment.start_shift(svc, courier_id, device_id=f"phone-{courier_id}",
                           ends_at=p.clock.now() + 7_200,
                           actor=Actor(kind=ActorKind.COURIER, id=courier_id))


def _state(p, svc):
    region = queries.get_merchant(svc, p.seed.merchant_ids[0]).region_id
    with svc.uow(read_only=True) as uow:
        return eta_queue.queue_state(uow, svc, uow.regions.get(region), p.clock.now())[0]


@in_memory
def test_the_policy_serves_heuristic_3_with_the_same_prices(platform):
    svc = _queue(platform.services)
    _on_shift(platform, svc, platform.seed.courier_ids[0])
    plain = get_quote(platform.services, _request(platform))
    served = get_quote(svc, _request(platform))
    assert served.estimate is not None and served.estimate.model == "heuristic-3"
    assert served.prices == plain.prices
    now = platform.clock.now()
    assert served.eta.low_at == now + served.estimate.p10_s
    assert served.eta.expected_at == now + served.estimate.point_s
    assert served.eta.high_at == now + served.estimate.p90_s
    placed = place_order(svc, _request(platform), idempotency_key="k1").order
    assert placed.eta.expected_at - placed.placed_at == pytest.approx(served.estimate.point_s)


def test_orders_waiting_ahead_on_one_courier_make_the_quote_later(sqlite_platform):
    # On SQLite: the waiting orders' status query is SQL (placed ones included).
    platform = sqlite_platform
    svc = _queue(platform.services)
    # Three orders on one courier are a backlog: allow it, to see the queue's timing.
    svc = replace(svc, queue_params=replace(svc.queue_params, max_backlog=5.0, queue_drain=1.0))
    _on_shift(platform, svc, platform.seed.courier_ids[0])
    first = get_quote(svc, _request(platform))
    for i in range(3):
        place_order(svc, _request(platform, consumer=i + 1), idempotency_key=f"k{i}")
    state = _state(platform, svc)
    assert len(state.waiting) == 3 and len(state.couriers) == 1
    later = get_quote(svc, _request(platform))
    assert first.estimate is not None and later.estimate is not None
    # One merchant: the four share the courier's bundle, each door adds a drop.
    assert later.estimate.point_s > first.estimate.point_s + 120
    single = replace(svc, queue_params=replace(svc.queue_params, bundle_gap_s=0.0))
    alone = get_quote(single, _request(platform))
    assert alone.estimate is not None
    # No bundles: three whole trips first.
    assert alone.estimate.point_s > later.estimate.point_s + 1_200


@in_memory
def test_a_courier_holding_an_order_is_free_at_its_route_end(platform):
    svc = _queue(platform.services)
    courier_id = platform.seed.courier_ids[0]
    _on_shift(platform, svc, courier_id)
    order = place_order(svc, _request(platform), idempotency_key="k1").order
    (idle,) = _state(platform, svc).couriers
    assert idle.free_s <= platform.clock.now()
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=600,
                             actor=Actor(kind=ActorKind.MERCHANT, id=order.merchant_id))
    offer = offers.make_offer(svc, courier_id=courier_id, order_ids=(order.id,), actor=SYSTEM)
    offers.accept_offer(svc, offer.id, actor=Actor(kind=ActorKind.COURIER, id=courier_id))
    state = _state(platform, svc)
    (busy,) = state.couriers
    assert state.waiting == ()
    # To the merchant, the food (its stated time), the handovers and the ride to the door.
    assert busy.free_s > platform.clock.now() + 600
    assert busy.speed_mps > 0


@in_memory
def test_without_couriers_on_shift_the_queue_waits_the_no_courier_delay(platform):
    svc = _queue(platform.services)
    q = get_quote(svc, _request(platform))
    assert q.estimate is not None
    assert q.estimate.point_s >= svc.queue_params.no_courier_s


@in_memory
def test_a_backlog_defers_to_heuristic_2(platform):
    svc = _queue(platform.services)
    _on_shift(platform, svc, platform.seed.courier_ids[0])
    place_order(svc, _request(platform, consumer=1), idempotency_key="k1")
    assert get_quote(svc, _request(platform)).estimate.model == "heuristic-3"  # 1 per courier
    place_order(svc, _request(platform, consumer=2), idempotency_key="k2")
    assert get_quote(svc, _request(platform)).estimate.model == "heuristic-2"  # 2 per courier
