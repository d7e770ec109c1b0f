"""Reassignment end to end on SQLite and PostgreSQL: the round offers a held bundle to a
courier who is sooner at the merchant; accepting hands it over in one unit of work;
declining or expiry leaves it where it was; an order moves at most ``max_moves_per_order``
times; the tenant's dispatch config switches it on."""

from __future__ import annotations

from dataclasses import replace

import pytest
from offer_helpers import a_confirmed_order, courier_actor, on_shift

from lastmile.app import fulfilment, leases, offers, queries, reassignment, tenants
from lastmile.app.auth import Principal
from lastmile.app.dispatching import dispatch_round
from lastmile.app.leases import Fence
from lastmile.app.live import CourierLive
from lastmile.core.dispatch import DispatchPolicy, PolicyKind
from lastmile.core.dispatch.reassign import Move
from lastmile.core.errors import Conflict, InvalidInput
from lastmile.core.geo import Point
from lastmile.core.model import CourierStatus
from lastmile.core.offers import OfferStatus
from lastmile.core.orders import SYSTEM, OrderStatus
from lastmile.sim.seed import DEMO_REGION_ID

MOVES_ON = DispatchPolicy(kind=PolicyKind.GREEDY, allow_reassignment=True,
                          reassign_min_gain_s=300.0, max_moves_per_order=1)
FAR_NORTH = 0.06  # degrees of latitude: ~6.7 km, half an hour by bicycle


def _place(p, cid: str, at: Point) -> None:
    p.container.live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID, lat=at.lat,
                                        lng=at.lng, status="idle", updated_at=p.clock.now()))


def _far(point: Point) -> Point:
    return Point(lat=point.lat + FAR_NORTH, lng=point.lng)


def _held_far_away(p, *, key: str = "k"):
    """An order assigned to courier 0, who is half an hour from the merchant; courier 1
    idle at the merchant."""
    a, b = on_shift(p, 0), on_shift(p, 1)
    order = a_confirmed_order(p, key=key)
    offer = offers.make_offer(p.services, courier_id=a, order_ids=(order.id,), actor=SYSTEM)
    offers.accept_offer(p.services, offer.id, actor=courier_actor(a))
    _place(p, a, _far(order.pickup))
    _place(p, b, order.pickup)
    return order, a, b


def _round(p, policy=MOVES_ON):
    return dispatch_round(p.services, p.container.live, DEMO_REGION_ID, policy)


def _events(p, subject_id: str) -> list[str]:
    with p.services.uow(read_only=True) as uow:
        return [e.type for e in uow.events.for_subject(subject_id)]


def test_a_sooner_courier_is_offered_the_bundle_and_accepting_moves_it(platform):
    p = platform
    order, a, b = _held_far_away(p)
    (move,) = _round(p).moves
    assert (move.courier_id, move.from_courier_id, move.order_ids) == (b, a, (order.id,))
    assert move.gain_s > 300
    # Until B accepts, A holds the order and is told a move is offered.
    assert queries.get_order(p.services, order.id, who=_ops()).courier_id == a
    assert "order.reassignment_offered" in _events(p, order.id)
    offers.accept_offer(p.services, move.id, actor=courier_actor(b))
    moved = queries.get_order(p.services, order.id, who=_ops())
    assert (moved.status, moved.courier_id, moved.moves) == (OrderStatus.ASSIGNED, b, 1)
    giver, taker = queries.get_courier(p.services, a), queries.get_courier(p.services, b)
    assert order.id not in giver.active_order_ids and giver.status is CourierStatus.IDLE
    assert taker.active_order_ids == (order.id,) and taker.status is CourierStatus.BUSY
    assert _events(p, order.id)[-2:] == ["order.reassignment_offered", "order.reassigned"]
    with p.services.uow(read_only=True) as uow:
        (withdrawn,) = [e for e in uow.events.for_subject(a)
                        if e.type == "courier.assignment_withdrawn"]
        reassigned = [e for e in uow.events.for_subject(order.id)
                      if e.type == "order.reassigned"][0]
    assert withdrawn.data["order_ids"] == [order.id] and withdrawn.data["to_courier_id"] == b
    assert withdrawn.data["gain_s"] == move.gain_s and "reassigned" in withdrawn.data["reason"]
    assert withdrawn.tenant == reassigned.tenant == "lastmile:default"
    assert (reassigned.data["from_courier_id"], reassigned.data["courier_id"]) == (a, b)
    # A's own order list no longer shows it; ops see the trail.
    assert order.id not in [o.id for o in queries.list_orders(p.services, who=_courier(a),
                                                              statuses=None)]
    trail = reassignment.move_trail(p.services, order.id)
    assert trail.moves == 1 and [(s.from_courier_id, s.to_courier_id, s.status)
                                 for s in trail.steps] == [(a, b, OfferStatus.ACCEPTED)]


def test_declining_a_move_leaves_the_bundle_with_its_courier(platform):
    p = platform
    order, a, b = _held_far_away(p)
    (move,) = _round(p).moves
    offers.decline_offer(p.services, move.id, reason="too tired", actor=courier_actor(b))
    kept = queries.get_order(p.services, order.id, who=_ops())
    assert (kept.courier_id, kept.moves, kept.status) == (a, 0, OrderStatus.ASSIGNED)
    assert queries.get_courier(p.services, a).active_order_ids == (order.id,)
    assert queries.get_courier(p.services, b).active_order_ids == ()
    (step,) = reassignment.move_trail(p.services, order.id).steps
    assert (step.status, step.reason) == (OfferStatus.DECLINED, "too tired")


def test_an_expired_move_leaves_the_bundle_and_the_next_round_may_offer_it_again(platform):
    p = platform
    order, a, b = _held_far_away(p)
    first = _round(p).moves[0]
    assert _round(p).moves == ()  # pending: not proposed twice
    p.clock.advance(p.services.offer_ttl_s + 1)
    with pytest.raises(Conflict):
        offers.accept_offer(p.services, first.id, actor=courier_actor(b))
    assert queries.get_order(p.services, order.id, who=_ops()).courier_id == a
    for cid, at in ((a, _far(order.pickup)), (b, order.pickup)):
        _place(p, cid, at)  # fresh pings after the wait
    (again,) = _round(p).moves
    assert again.id != first.id and again.courier_id == b


def test_an_order_moves_at_most_max_moves_per_order_times(platform):
    p = platform
    order, a, b = _held_far_away(p)
    offers.accept_offer(p.services, _round(p).moves[0].id, actor=courier_actor(b))
    c = on_shift(p, 2)
    _place(p, b, _far(order.pickup))  # now B is far and C is at the merchant
    _place(p, c, order.pickup)
    assert _round(p).moves == ()
    move = Move(from_courier_id=b, to_courier_id=c, merchant_id=order.merchant_id,
                order_ids=(order.id,), arrival_s=0.0, pickup_s=0.0, previous_pickup_s=600.0)
    with pytest.raises(Conflict) as refused:
        reassignment.make_move_offer(p.services, move, max_moves_per_order=1, actor=SYSTEM)
    assert refused.value.code == "move_limit_reached"
    (second,) = _round(p, replace(MOVES_ON, max_moves_per_order=2)).moves
    assert (second.from_courier_id, second.courier_id) == (b, c)


def test_a_courier_at_the_merchant_keeps_the_bundle_and_a_late_accept_is_withdrawn(platform):
    p = platform
    order, a, b = _held_far_away(p)
    (move,) = _round(p).moves
    fulfilment.courier_arrive(p.services, order.id, actor=courier_actor(a))
    with pytest.raises(Conflict) as late:
        offers.accept_offer(p.services, move.id, actor=courier_actor(b))
    assert late.value.code == "offer_withdrawn"
    kept = queries.get_order(p.services, order.id, who=_ops())
    assert (kept.status, kept.courier_id, kept.moves) == (OrderStatus.AT_PICKUP, a, 0)
    assert queries.get_courier(p.services, b).active_order_ids == ()
    assert reassignment.move_trail(p.services, order.id).steps[0].status is OfferStatus.WITHDRAWN
    assert _round(p).moves == ()  # at the merchant: never moved


def test_off_unless_the_policy_or_the_tenant_switches_it_on(platform):
    p = platform
    order, a, b = _held_far_away(p)
    base = DispatchPolicy(kind=PolicyKind.GREEDY)
    assert _round(p, base).moves == ()
    tenants.configure(p.services, {"dispatch": {"allow_reassignment": True,
                                                "reassign_min_gain_s": 60}})
    (move,) = _round(p, base).moves
    assert move.from_courier_id == a
    trail = reassignment.move_trail(p.services, order.id)
    assert trail.allow_reassignment and trail.max_moves_per_order == 1


def test_a_fenced_round_sends_its_moves_with_its_offers(platform):
    p = platform
    order, a, b = _held_far_away(p)
    lease = leases.claim(p.services, f"dispatch:{DEMO_REGION_ID}", "w1", 30.0, now=p.clock.now())
    assert lease is not None
    fence = Fence(name=lease.name, owner=lease.owner, token=lease.token)
    result = dispatch_round(p.services, p.container.live, DEMO_REGION_ID, MOVES_ON, fence=fence)
    (move,) = result.moves
    assert (move.courier_id, move.from_courier_id) == (b, a) and result.refused == ()
    assert offers.current_offer(p.services, b).id == move.id


@pytest.mark.parametrize("knobs,path", [
    ({"max_moves_per_order": -1}, "config.dispatch.max_moves_per_order"),
    ({"max_moves_per_order": 1.5}, "config.dispatch.max_moves_per_order"),
    ({"reassign_min_gain_s": -5}, "config.dispatch.reassign_min_gain_s"),
    ({"allow_reassignment": "yes"}, "config.dispatch.allow_reassignment"),
])
def test_a_tenant_s_bad_reassignment_knob_is_refused_naming_its_path(platform, knobs, path):
    with pytest.raises(InvalidInput) as bad:
        tenants.configure(platform.services, {"dispatch": knobs})
    assert bad.value.field == path


def _ops() -> Principal:
    return Principal(role="ops", subject_id="ops-1")


def _courier(cid: str) -> Principal:
    return Principal(role="courier", subject_id=cid)


# --- races on the real PostgreSQL (tests/service/test_races.py's harness) --------------------

def _holders(p, order_id: str) -> list[str]:
    return [cid for cid in p.seed.courier_ids
            if order_id in queries.get_courier(p.services, cid).active_order_ids]


def _arrive_and_pick_up(services, order_id: str, courier_id: str):
    fulfilment.courier_arrive(services, order_id, actor=courier_actor(courier_id))
    return fulfilment.pick_up(services, order_id, actor=courier_actor(courier_id))


@pytest.mark.parametrize("platform", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
@pytest.mark.parametrize("holder_first", [False, True])
def test_the_holder_picking_up_while_the_taker_accepts_ends_with_exactly_one(platform,
                                                                          holder_first):
    from test_races import race, slow

    p = platform
    order, a, b = _held_far_away(p)
    (move,) = _round(p).moves
    services = slow(p)
    calls = [lambda: _arrive_and_pick_up(services, order.id, a),
             lambda: offers.accept_offer(services, move.id, actor=courier_actor(b))]
    results = race(*(calls if holder_first else calls[::-1]))
    holder_result, taker_result = results if holder_first else results[::-1]
    failed = [r for r in (holder_result, taker_result) if isinstance(r, Exception)]
    assert len(failed) == 1, results
    final = queries.get_order(p.services, order.id, who=_ops())
    assert _holders(p, order.id) == [final.courier_id], "an order held by two couriers"
    if isinstance(taker_result, Exception):  # the holder won: it picked the food up
        assert isinstance(taker_result, Conflict) and taker_result.code == "offer_withdrawn"
        assert (final.status, final.courier_id, final.moves) == (OrderStatus.PICKED_UP, a, 0)
    else:  # the taker won: the holder may no longer touch the order
        assert (final.status, final.courier_id, final.moves) == (OrderStatus.ASSIGNED, b, 1)
        assert queries.get_courier(p.services, a).status is CourierStatus.IDLE
    with p.services.uow(read_only=True) as uow:
        assert uow.offers.get(move.id).status in (OfferStatus.ACCEPTED, OfferStatus.WITHDRAWN)
