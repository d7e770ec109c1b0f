"""Stacked orders across two merchants (core.dispatch.stacking) through the live use cases:
the round offers one courier a planned stack, the courier sees its stops in order, picks
up at each merchant and delivers both; a hand-made offer mixing merchants stays refused."""

import pytest

from lastmile.app import fulfilment, offers, queries, routes
from lastmile.app.dispatching import dispatch_round
from lastmile.app.live import CourierLive
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.core.dispatch import DispatchPolicy
from lastmile.core.errors import InvalidInput
from lastmile.core.geo import Point, haversine_m
from lastmile.core.offers import OfferStop
from lastmile.core.orders import SYSTEM, Actor, ActorKind, DeliveryProof, OrderStatus
from lastmile.sim.seed import DEMO_REGION_ID

STACKING = DispatchPolicy(allow_stacking=True, stack_radius_m=3_000.0)
OPS = Actor(kind=ActorKind.OPS, id="ops_1")


def _order(p, order_id):
    with p.services.uow(read_only=True) as uow:
        return uow.orders.get(order_id)


def _two_near_merchants(p):
    """Indexes of the two seeded merchants nearest each other, and their distance."""
    ms = [queries.get_merchant(p.services, m) for m in p.seed.merchant_ids]
    pairs = [(haversine_m(a.location, b.location), i, j) for i, a in enumerate(ms)
             for j, b in enumerate(ms) if i < j]
    d, i, j = min(pairs)
    return i, j, d, ms


def _ready_order(p, merchant, key, drop):
    m = queries.get_merchant(p.services, p.seed.merchant_ids[merchant])
    req = OrderRequest(consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
                       lines=(LineRequest(item_id=m.menu[0].id, quantity=1),), dropoff=drop)
    order = place_order(p.services, req, idempotency_key=key).order
    me = Actor(kind=ActorKind.MERCHANT, id=m.id)
    fulfilment.confirm_order(p.services, order.id, prep_estimate_s=60, actor=me)
    return fulfilment.mark_ready(p.services, order.id, actor=me)


def _stacked_round(p):
    i, j, d, ms = _two_near_merchants(p)
    assert d < STACKING.stack_radius_m
    mid = Point(lat=(ms[i].location.lat + ms[j].location.lat) / 2,
                lng=(ms[i].location.lng + ms[j].location.lng) / 2)
    drop = Point(lat=mid.lat + 0.004, lng=mid.lng + 0.004)
    a = _ready_order(p, i, "ka", drop)
    b = _ready_order(p, j, "kb", Point(lat=drop.lat + 0.001, lng=drop.lng))
    cid = p.seed.courier_ids[0]
    fulfilment.start_shift(p.services, cid, device_id="d0", ends_at=p.clock.now() + 4 * 3600,
                           actor=SYSTEM)
    p.container.live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID,
                                        lat=ms[i].location.lat, lng=ms[i].location.lng,
                                        status="idle", updated_at=p.clock.now()))
    result = dispatch_round(p.services, p.container.live, DEMO_REGION_ID, STACKING)
    return a, b, cid, result


@pytest.mark.parametrize("sqlite_platform", ["fake", "sqlite"], indirect=True)
def test_a_stacked_offer_is_accepted_and_delivered_end_to_end(sqlite_platform):
    p = sqlite_platform
    a, b, cid, result = _stacked_round(p)
    assert len(result.offers) == 1, result
    offer = result.offers[0]
    assert set(offer.order_ids) == {a.id, b.id}
    assert offer.stack_id is not None
    kinds = [s.kind for s in offer.stops]
    assert kinds == ["pickup", "pickup", "dropoff", "dropoff"]
    assert {s.merchant_id for s in offer.stops[:2]} == {a.merchant_id, b.merchant_id}
    me = Actor(kind=ActorKind.COURIER, id=cid)
    offers.accept_offer(p.services, offer.id, actor=me)

    route = routes.courier_route(p.services, cid, actor=me)
    assert [(s.kind, s.order_ids) for s in route] == [(s.kind, s.order_ids)
                                                      for s in offer.stops]
    assert all(s.stack_id == offer.stack_id and not s.done for s in route)
    # Pickups per merchant, in the route's order; then the doors in the route's order.
    for stop in route:
        (oid,) = stop.order_ids
        if stop.kind == "pickup":
            fulfilment.courier_arrive(p.services, oid, actor=me)
            fulfilment.pick_up(p.services, oid, actor=me)
        else:
            # The ETA of the order still ahead follows its stop: the route runs through the
            # other door first when that one comes first.
            ahead = routes.stacked_stops_ahead(p.services, _order(p, oid))
            assert ahead == ()  # every pickup done, and this is the next door
            fulfilment.courier_arrive(p.services, oid, actor=me)
            fulfilment.deliver(p.services, oid, proof=DeliveryProof(note="door"), actor=me)
        done = [s.done for s in routes.courier_route(p.services, cid, actor=me)]
        assert done == sorted(done, reverse=True)  # done stops form a prefix
    for oid in (a.id, b.id):
        assert _order(p, oid).status is OrderStatus.DELIVERED
    assert routes.courier_route(p.services, cid, actor=me) == []
    with p.services.uow(read_only=True) as uow:
        made = [e for e in uow.events.for_subject(offer.id)
                if e.type in ("offer.made", "offer.accepted")]
    assert [e.data["stack_id"] for e in made] == [offer.stack_id] * 2


@pytest.mark.parametrize("sqlite_platform", ["fake"], indirect=True)
def test_the_eta_of_the_second_order_runs_through_the_first_stop(sqlite_platform):
    p = sqlite_platform
    a, b, cid, result = _stacked_round(p)
    offer = result.offers[0]
    me = Actor(kind=ActorKind.COURIER, id=cid)
    offers.accept_offer(p.services, offer.id, actor=me)
    last = offer.stops[-1].order_ids[0]
    ahead = routes.stacked_stops_ahead(p.services, _order(p, last))
    assert len(ahead) == 3  # both pickups and the other door


@pytest.mark.parametrize("sqlite_platform", ["fake"], indirect=True)
def test_a_hand_made_offer_mixing_merchants_is_refused(sqlite_platform):
    p = sqlite_platform
    i, j, _, _ = _two_near_merchants(p)
    a = _ready_order(p, i, "ka", Point(lat=37.445, lng=-122.15))
    b = _ready_order(p, j, "kb", Point(lat=37.445, lng=-122.15))
    cid = p.seed.courier_ids[0]
    fulfilment.start_shift(p.services, cid, device_id="d0", ends_at=p.clock.now() + 3600,
                           actor=SYSTEM)
    with pytest.raises(InvalidInput) as no_plan:
        offers.make_offer(p.services, courier_id=cid, order_ids=(a.id, b.id), actor=OPS)
    assert no_plan.value.code == "mixed_merchants"
    stops = (OfferStop(kind="pickup", merchant_id=a.merchant_id, order_ids=(a.id,)),
             OfferStop(kind="pickup", merchant_id=b.merchant_id, order_ids=(b.id,)),
             OfferStop(kind="dropoff", merchant_id=a.merchant_id, order_ids=(a.id,)),
             OfferStop(kind="dropoff", merchant_id=b.merchant_id, order_ids=(b.id,)))
    with pytest.raises(InvalidInput) as too_wide:
        offers.make_offer(p.services, courier_id=cid, order_ids=(a.id, b.id), actor=OPS,
                          stops=stops, stack_radius_m=1.0)
    assert too_wide.value.code == "stack_too_wide"
    bad = (stops[2], *stops[:2], stops[3])  # a drop-off before its pickup
    with pytest.raises(InvalidInput) as invalid:
        offers.make_offer(p.services, courier_id=cid, order_ids=(a.id, b.id), actor=OPS,
                          stops=bad, stack_radius_m=50_000.0)
    assert invalid.value.code == "invalid_stack"
    assert offers.current_offer(p.services, cid) is None


@pytest.mark.parametrize("sqlite_platform", ["fake"], indirect=True)
def test_without_stacking_the_two_merchants_go_to_separate_offers(sqlite_platform):
    p = sqlite_platform
    i, j, _, ms = _two_near_merchants(p)
    _ready_order(p, i, "ka", Point(lat=37.445, lng=-122.15))
    _ready_order(p, j, "kb", Point(lat=37.445, lng=-122.15))
    for k in (0, 1):
        cid = p.seed.courier_ids[k]
        fulfilment.start_shift(p.services, cid, device_id=f"d{k}",
                               ends_at=p.clock.now() + 3600, actor=SYSTEM)
        p.container.live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID,
                                            lat=ms[i].location.lat, lng=ms[i].location.lng,
                                            status="idle", updated_at=p.clock.now()))
    result = dispatch_round(p.services, p.container.live, DEMO_REGION_ID, DispatchPolicy())
    assert all(o.stack_id is None and len(o.order_ids) == 1 for o in result.offers)
