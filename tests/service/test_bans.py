"""Banned devices and couriers: never a shift, never a move, never an offer, never a key."""

import contextlib
from collections.abc import Iterator

import pytest

from databases import redis_prefix
from fakes import in_memory
from lastmile.adapters.live.memory import MemoryLiveStore
from lastmile.adapters.live.redis_store import RedisLiveStore
from lastmile.app import bans, fulfilment, offers, queries, shifts
from lastmile.app.auth import authenticate, issue_api_key
from lastmile.app.dispatching import dispatch_round
from lastmile.app.live import CourierLive, LiveStore
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.app.tracking import ingest_pings
from lastmile.core.dispatch import DispatchPolicy, PolicyKind
from lastmile.core.errors import Forbidden, InvalidInput, Unauthorized
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind, OrderStatus
from lastmile.sim.seed import DEMO_REGION_ID

OPS = Actor(kind=ActorKind.OPS, id="ops-1")


def _courier(p, i=0):
    cid = p.seed.courier_ids[i]
    return cid, Actor(kind=ActorKind.COURIER, id=cid)


def _ping(p, device, dt=0.0, dlat=0.0):
    return {"device_id": device, "lat": 37.44 + dlat, "lng": -122.14, "accuracy_m": 10,
            "client_ts": p.clock.now() + dt}


@in_memory
def test_banned_device_cannot_start_a_shift(platform):
    cid, me = _courier(platform)
    bans.ban_device(platform.services, "stolen-phone", reason="reported stolen", actor=OPS)
    with pytest.raises(Forbidden) as err:
        fulfilment.start_shift(platform.services, cid, device_id="stolen-phone",
                               ends_at=platform.clock.now() + 3600, actor=me)
    assert err.value.code == "device_banned"


@in_memory
def test_banned_device_never_moves_the_courier_even_when_main_is_silent(platform):
    p = platform
    cid, me = _courier(p)
    fulfilment.start_shift(p.services, cid, device_id="main", ends_at=p.clock.now() + 7200,
                           actor=me)
    tracking = p.container.tracking
    assert ingest_pings(tracking, courier_id=cid, raw=[_ping(p, "main")]).accepted == 1
    bans.ban_device(p.services, "ex-courier-phone", reason="ex-courier", actor=OPS)
    p.clock.advance(600)  # the main device has been silent for ten minutes
    result = ingest_pings(tracking, courier_id=cid, raw=[
        _ping(p, "ex-courier-phone", dt=i, dlat=0.0001 * i) for i in range(6)])
    assert result.accepted == 0
    assert {v.reason.value for v in result.verdicts} == {"banned_device"}


@in_memory
def test_banning_a_courier_bans_every_device_they_worked_from(platform):
    p = platform
    cid, me = _courier(p)
    for device in ("phone-a", "phone-b"):
        fulfilment.start_shift(p.services, cid, device_id=device, ends_at=p.clock.now() + 3600,
                               actor=me)
        shifts.end_shift(p.services, cid, actor=me, live=p.container.live)
    ban = bans.ban_courier(p.services, cid, reason="fraud", actor=OPS, live=p.container.live)
    assert ban.device_ids == ("phone-a", "phone-b")
    other, other_actor = _courier(p, 1)
    with pytest.raises(Forbidden):
        fulfilment.start_shift(p.services, other, device_id="phone-a",
                               ends_at=p.clock.now() + 3600, actor=other_actor)
    with pytest.raises(Forbidden) as err:
        fulfilment.start_shift(p.services, cid, device_id="new-phone",
                               ends_at=p.clock.now() + 3600, actor=me)
    assert err.value.code == "courier_banned"


@in_memory
def test_only_ops_can_ban(platform):
    _, me = _courier(platform)
    with pytest.raises(Forbidden):
        bans.ban_device(platform.services, "x", reason="r", actor=me)


# --- a ban means stop -------------------------------------------------------------------

def _order(p, key):
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    req = OrderRequest(consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
                       lines=(LineRequest(item_id=m.menu[0].id, quantity=1),),
                       dropoff=Point(lat=37.445, lng=-122.15))
    order = place_order(p.services, req, idempotency_key=key).order
    return fulfilment.confirm_order(p.services, order.id, prep_estimate_s=600,
                                    actor=Actor(kind=ActorKind.MERCHANT, id=m.id))


def _working(p, i=0):
    """A courier on shift at the merchant, with a fresh live position."""
    cid, me = _courier(p, i)
    fulfilment.start_shift(p.services, cid, device_id=f"phone-{i}",
                           ends_at=p.clock.now() + 4 * 3600, actor=me)
    p.container.live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID, lat=37.44,
                                        lng=-122.15, status="idle", updated_at=p.clock.now()))
    return cid, me


def _holding(p, cid, me, key, *, picked_up):
    order = _order(p, key)
    offer = offers.make_offer(p.services, courier_id=cid, order_ids=(order.id,), actor=SYSTEM)
    offers.accept_offer(p.services, offer.id, actor=me)
    if picked_up:
        fulfilment.courier_arrive(p.services, order.id, actor=me)
        fulfilment.pick_up(p.services, order.id, actor=me)
    return order.id


def _ban(p, cid, live=None):
    return bans.ban_courier(p.services, cid, reason="fraud", actor=OPS,
                            live=live or p.container.live)


def test_a_ban_ends_the_shift_and_withdraws_live_offers_with_an_event(platform):
    p = platform
    cid, _ = _working(p)
    offer = offers.make_offer(p.services, courier_id=cid, order_ids=(_order(p, "k").id,),
                              actor=SYSTEM)
    ban = _ban(p, cid)
    assert ban.shift_ended and ban.withdrawn_offer_ids == (offer.id,)
    courier = queries.get_courier(p.services, cid)
    assert courier.status.value == "offline" and courier.shift_id is None and courier.banned
    assert offers.current_offer(p.services, cid) is None
    with p.services.uow(read_only=True) as uow:
        assert uow.offers.get(offer.id).status.value == "withdrawn"
        assert [e.type for e in uow.events.for_subject(offer.id)] == [
            "offer.made", "offer.withdrawn"]
        assert "courier.shift_ended" in [e.type for e in uow.events.for_subject(cid)]


def test_a_ban_returns_orders_not_picked_up_to_dispatch_and_flags_picked_up_ones(platform):
    p = platform
    cid, me = _working(p)
    waiting = _holding(p, cid, me, "k1", picked_up=False)
    carried = _holding(p, cid, me, "k2", picked_up=True)
    ban = _ban(p, cid)
    assert ban.returned_order_ids == (waiting,) and ban.flagged_order_ids == (carried,)
    with p.services.uow(read_only=True) as uow:
        back, held = uow.orders.get(waiting), uow.orders.get(carried)
        assert back.status is OrderStatus.UNASSIGNED and back.courier_id is None
        assert held.status is OrderStatus.PICKED_UP and held.courier_id == cid
        assert uow.events.for_subject(waiting)[-1].type == "order.unassigned"
        flag = uow.events.for_subject(carried)[-1]
        assert flag.type == "order.needs_ops" and flag.data["reason"] == "courier_banned"
        assert uow.couriers.get(cid).active_order_ids == (carried,)
    # Ops cancelling the flagged order releases it from the banned courier.
    fulfilment.cancel_order(p.services, carried, reason="courier banned", actor=OPS)
    assert queries.get_courier(p.services, cid).active_order_ids == ()


def test_a_ban_revokes_every_key_of_the_courier(platform):
    p = platform
    cid, _ = _courier(p)
    keys = [p.key("courier", cid) for _ in range(2)]
    other = p.key("courier", p.seed.courier_ids[1])
    assert _ban(p, cid).revoked_keys == 2
    for key in keys:
        with pytest.raises(Unauthorized):
            authenticate(p.services, key)
    assert authenticate(p.services, other).subject_id == p.seed.courier_ids[1]


def test_a_banned_courier_is_issued_no_new_key(platform):
    cid, _ = _courier(platform)
    _ban(platform, cid)
    with pytest.raises(Forbidden) as err:
        issue_api_key(platform.services, role="courier", subject_id=cid)
    assert err.value.code == "courier_banned"


def test_dispatch_never_offers_to_a_banned_courier(platform):
    p = platform
    banned, _ = _working(p, 0)
    _ban(p, banned)
    p.container.live.upsert(CourierLive(  # a ping that raced the ban put the position back
        courier_id=banned, region_id=DEMO_REGION_ID, lat=37.44, lng=-122.15, status="idle",
        updated_at=p.clock.now()))
    order = _order(p, "k")
    policy = DispatchPolicy(kind=PolicyKind.GREEDY)
    assert dispatch_round(p.services, p.container.live, DEMO_REGION_ID, policy).offers == ()
    other, _ = _working(p, 1)
    offered = dispatch_round(p.services, p.container.live, DEMO_REGION_ID, policy).offers
    assert [(o.courier_id, o.order_ids) for o in offered] == [(other, (order.id,))]


def test_a_banned_courier_moves_no_more(platform):
    p = platform
    cid, _ = _working(p)
    _ban(p, cid)
    with pytest.raises(Forbidden) as err:
        ingest_pings(p.container.tracking, courier_id=cid, raw=[_ping(p, "phone-0")])
    assert err.value.code == "courier_banned"


@contextlib.contextmanager
def _live_store(kind: str) -> Iterator[LiveStore]:
    """A live store of ``kind``; a Redis one under a fresh prefix, its keys deleted after."""
    if kind == "memory":
        yield MemoryLiveStore()
        return
    with redis_prefix("ban") as (client, prefix):
        yield RedisLiveStore(client, prefix=prefix)


@pytest.mark.parametrize("kind", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_ban_removes_the_live_position(sqlite_platform, kind):
    p = sqlite_platform
    cid, _ = _working(p)
    with _live_store(kind) as live:
        live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID, lat=37.44,
                                lng=-122.15, status="idle", updated_at=p.clock.now()))
        assert _ban(p, cid, live).position_removed
        assert live.get(cid) is None
        assert live.all_in_region(DEMO_REGION_ID, now=p.clock.now()) == []


class _BrokenLiveStore(MemoryLiveStore):
    def remove(self, courier_id, *, at=None):
        raise ConnectionError("live store down")


def test_a_ban_stands_when_the_live_store_fails(sqlite_platform, caplog):
    p = sqlite_platform
    cid, _ = _working(p)
    ban = _ban(p, cid, _BrokenLiveStore())
    assert not ban.position_removed
    assert queries.get_courier(p.services, cid).banned
    assert "could not remove the live position" in caplog.text


def test_housekeeping_ending_a_shift_removes_the_live_position(platform):
    p = platform
    cid, _ = _working(p)
    offer = offers.make_offer(p.services, courier_id=cid, order_ids=(_order(p, "k").id,),
                              actor=SYSTEM, ttl_s=7 * 3600)
    p.clock.advance(4 * 3600 + 1)
    p.container.live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID, lat=37.44,
                                        lng=-122.15, status="idle", updated_at=p.clock.now()))
    assert shifts.end_expired_shifts(p.services, p.container.live) == 1
    assert p.container.live.get(cid) is None
    with p.services.uow(read_only=True) as uow:
        assert uow.offers.get(offer.id).status.value == "withdrawn"
        assert uow.events.for_subject(offer.id)[-1].type == "offer.withdrawn"


def test_a_courier_ban_needs_a_reason_even_for_a_courier_who_never_worked(platform):
    cid, _ = _courier(platform)
    with pytest.raises(InvalidInput) as err:
        bans.ban_courier(platform.services, cid, reason="   ", actor=OPS,
                         live=platform.container.live)
    assert err.value.code == "reason_required"
    assert not queries.get_courier(platform.services, cid).banned


@pytest.mark.parametrize("kind", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_ping_in_flight_during_the_ban_does_not_put_the_courier_back(sqlite_platform, kind):
    p = sqlite_platform
    cid, _ = _working(p)
    with _live_store(kind) as live:
        stamped = p.clock.now()  # the ping read the clock and the courier before the ban
        p.clock.advance(0.5)
        _ban(p, cid, live)
        live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID, lat=37.44,
                                lng=-122.15, status="idle", updated_at=stamped))
        assert live.get(cid) is None
        assert live.nearest(DEMO_REGION_ID, 37.44, -122.15, 1_000, now=p.clock.now(),
                            limit=5) == []
