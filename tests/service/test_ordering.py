"""Use cases: their rules on a fake unit of work (``@in_memory``); races, the outbox and
read-only units on a real database (SQLite always, PostgreSQL when marked)."""

import pytest

from fakes import in_memory
from lastmile.adapters.bus.outbox import IdempotentHandler
from lastmile.app import fulfilment, offers, queries, shifts
from lastmile.app.auth import Principal
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.core.errors import Conflict, InvalidInput, NotFound
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind, DeliveryProof, OrderStatus

DROP = Point(lat=37.445, lng=-122.15)


def _request(p, consumer=0, merchant=0, qty=1, tip=0):
    m = queries.get_merchant(p.services, p.seed.merchant_ids[merchant])
    return OrderRequest(consumer_id=p.seed.consumer_ids[consumer], merchant_id=m.id,
                        lines=(LineRequest(item_id=m.menu[0].id, quantity=qty),), dropoff=DROP,
                        tip_minor=tip)


def _actor(kind, id_):
    return Actor(kind=ActorKind(kind), id=id_)


@in_memory
def test_replayed_idempotency_key_returns_the_same_order(platform):
    first = place_order(platform.services, _request(platform), idempotency_key="k-1")
    again = place_order(platform.services, _request(platform), idempotency_key="k-1")
    assert not first.replayed and again.replayed and again.order.id == first.order.id
    who = Principal(role="ops", subject_id="ops")
    assert len(queries.list_orders(platform.services, who=who, statuses=None)) == 1


@in_memory
def test_reused_idempotency_key_with_another_body_is_a_conflict(platform):
    place_order(platform.services, _request(platform), idempotency_key="k-1")
    with pytest.raises(Conflict) as err:
        place_order(platform.services, _request(platform, qty=2), idempotency_key="k-1")
    assert err.value.code == "idempotency_key_reused"


@in_memory
def test_same_key_for_two_consumers_gives_two_orders(platform):
    a = place_order(platform.services, _request(platform, consumer=0), idempotency_key="k")
    b = place_order(platform.services, _request(platform, consumer=1), idempotency_key="k")
    assert a.order.id != b.order.id


@in_memory
def test_failed_placement_leaves_nothing_behind(platform):
    bad = OrderRequest(consumer_id=platform.seed.consumer_ids[0],
                       merchant_id=platform.seed.merchant_ids[0],
                       lines=(LineRequest(item_id="itm_nope", quantity=1),), dropoff=DROP)
    with pytest.raises(InvalidInput):
        place_order(platform.services, bad, idempotency_key="k-bad")
    with platform.services.uow() as uow:
        assert uow.idempotency.get(f"order:{bad.consumer_id}", "k-bad") is None
        pending = uow.outbox.pending(1000)
    assert not [e for e in pending if e.event.type.startswith("order.")]


@in_memory
def test_drop_off_outside_the_region_is_refused(platform):
    req = _request(platform)
    far = OrderRequest(consumer_id=req.consumer_id, merchant_id=req.merchant_id, lines=req.lines,
                       dropoff=Point(lat=40.0, lng=-100.0))
    with pytest.raises(InvalidInput) as err:
        place_order(platform.services, far, idempotency_key="k")
    assert err.value.field == "dropoff"


def _deliver_one(p):
    svc = p.services
    order = place_order(svc, _request(p), idempotency_key="k").order
    merchant = _actor("merchant", order.merchant_id)
    courier_id = p.seed.courier_ids[0]
    courier = _actor("courier", courier_id)
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=600, actor=merchant)
    fulfilment.start_shift(svc, courier_id, device_id="phone-1",
                           ends_at=p.clock.now() + 3600, actor=courier)
    offer = offers.make_offer(svc, courier_id=courier_id, order_ids=(order.id,), actor=SYSTEM)
    offers.accept_offer(svc, offer.id, actor=courier)
    p.clock.advance(300)
    fulfilment.mark_ready(svc, order.id, actor=merchant)
    fulfilment.courier_arrive(svc, order.id, actor=courier)
    fulfilment.pick_up(svc, order.id, actor=courier)
    p.clock.advance(600)
    fulfilment.courier_arrive(svc, order.id, actor=courier)
    done = fulfilment.deliver(svc, order.id, proof=DeliveryProof(photo_ref="s3://p/1.jpg"),
                              actor=courier)
    return done, courier_id


@in_memory
def test_full_lifecycle_is_recorded_as_events_with_actors(platform):
    done, courier_id = _deliver_one(platform)
    assert done.status is OrderStatus.DELIVERED
    history = queries.order_history(platform.services, done.id,
                                    who=Principal(role="courier", subject_id=courier_id))
    assert [e.type for e in history] == [
        "order.placed", "order.confirmed", "order.assigned", "order.ready",
        "order.courier_at_pickup", "order.picked_up", "order.courier_at_dropoff",
        "order.delivered"]
    assert {e.actor_kind for e in history} == {"consumer", "merchant", "courier"}
    with platform.services.uow() as uow:
        courier = uow.couriers.get(courier_id)
    assert courier.status.value == "idle" and courier.active_order_ids == ()


@in_memory
def test_orders_are_visible_only_to_their_own_sides(platform):
    done, courier_id = _deliver_one(platform)
    svc = platform.services
    for who in (Principal(role="consumer", subject_id=platform.seed.consumer_ids[1]),
                Principal(role="merchant", subject_id=platform.seed.merchant_ids[1]),
                Principal(role="courier", subject_id=platform.seed.courier_ids[1])):
        with pytest.raises(NotFound):
            queries.get_order(svc, done.id, who=who)
        assert queries.list_orders(svc, who=who, statuses=None) == []


def test_stale_version_write_is_refused(platform):
    svc = platform.services
    order = place_order(svc, _request(platform), idempotency_key="k").order
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=600,
                             actor=_actor("merchant", order.merchant_id))
    with svc.uow() as uow, pytest.raises(Conflict) as err:
        uow.orders.save(order, expected_version=order.version)
    assert err.value.code == "concurrent_update"


@in_memory
def test_expired_offer_cannot_be_accepted_and_order_can_be_offered_again(platform):
    svc = platform.services
    order = place_order(svc, _request(platform), idempotency_key="k").order
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=600,
                             actor=_actor("merchant", order.merchant_id))
    c1, c2 = platform.seed.courier_ids[:2]
    for c in (c1, c2):
        fulfilment.start_shift(svc, c, device_id="d", ends_at=platform.clock.now() + 3600,
                               actor=_actor("courier", c))
    offer = offers.make_offer(svc, courier_id=c1, order_ids=(order.id,), actor=SYSTEM, ttl_s=30)
    with pytest.raises(Conflict):
        offers.make_offer(svc, courier_id=c2, order_ids=(order.id,), actor=SYSTEM)
    platform.clock.advance(31)
    with pytest.raises(Conflict) as err:
        offers.accept_offer(svc, offer.id, actor=_actor("courier", c1))
    assert err.value.code == "offer_expired"
    second = offers.make_offer(svc, courier_id=c2, order_ids=(order.id,), actor=SYSTEM)
    assert offers.accept_offer(svc, second.id, actor=_actor("courier", c2)).status.value == "accepted"


@in_memory
def test_courier_cannot_end_shift_holding_orders(platform):
    svc = platform.services
    order = place_order(svc, _request(platform), idempotency_key="k").order
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=600,
                             actor=_actor("merchant", order.merchant_id))
    c = platform.seed.courier_ids[0]
    fulfilment.start_shift(svc, c, device_id="d", ends_at=platform.clock.now() + 3600,
                           actor=_actor("courier", c))
    offer = offers.make_offer(svc, courier_id=c, order_ids=(order.id,), actor=SYSTEM)
    offers.accept_offer(svc, offer.id, actor=_actor("courier", c))
    with pytest.raises(Conflict) as err:
        shifts.end_shift(svc, c, actor=_actor("courier", c), live=platform.container.live)
    assert err.value.code == "orders_in_hand"


def test_idempotent_handler_acts_once_per_event(platform):
    svc = platform.services
    placed = place_order(svc, _request(platform), idempotency_key="k").order
    event = queries.order_history(svc, placed.id, who=Principal(role="ops", subject_id="o"))[0]
    seen = []
    handler = IdempotentHandler(svc, "counter", lambda e, uow: seen.append(e))
    handler(event)
    handler(event)
    assert seen == [event]


def test_idempotent_handler_that_fails_is_retried_next_time(platform):
    svc = platform.services
    placed = place_order(svc, _request(platform), idempotency_key="k").order
    event = queries.order_history(svc, placed.id, who=Principal(role="ops", subject_id="o"))[0]
    calls = []

    def flaky(e, uow):
        calls.append(e)
        if len(calls) == 1:
            raise RuntimeError("downstream failed")

    handler = IdempotentHandler(svc, "flaky", flaky)
    with pytest.raises(RuntimeError):
        handler(event)
    handler(event)
    handler(event)
    assert len(calls) == 2


@in_memory
def test_merchants_near_pages_are_stable_and_complete(platform):
    svc = platform.services
    region = platform.seed.region.id
    at = Point(lat=37.44, lng=-122.14)
    seen, token = [], None
    while True:
        page = queries.merchants_near(svc, region_id=region, at=at, radius_m=20_000, limit=2,
                                      page_token=token)
        seen.extend(h.merchant.id for h in page.hits)
        distances = [h.distance_m for h in page.hits]
        assert distances == sorted(distances)
        token = page.next_page_token
        if token is None:
            break
    assert sorted(seen) == sorted(platform.seed.merchant_ids) and len(seen) == len(set(seen))


@in_memory
def test_page_token_from_another_query_is_refused(platform):
    svc = platform.services
    region = platform.seed.region.id
    page = queries.merchants_near(svc, region_id=region, at=Point(lat=37.44, lng=-122.14),
                                  radius_m=20_000, limit=1)
    with pytest.raises(InvalidInput) as err:
        queries.merchants_near(svc, region_id=region, at=Point(lat=37.45, lng=-122.14),
                               radius_m=20_000, limit=1, page_token=page.next_page_token)
    assert err.value.code == "page_token_mismatch"


@in_memory
def test_closed_merchant_refuses_orders_in_its_local_time(platform):
    from dataclasses import replace
    from datetime import time

    from lastmile.core.model import OpeningWindow

    svc = platform.services
    with svc.uow() as uow:
        m = uow.merchants.get(platform.seed.merchant_ids[0])
        # The manual clock starts 2026-01-01 00:00 UTC = Wednesday 16:00 in Los Angeles.
        uow.merchants.save(replace(m, hours=(OpeningWindow(weekday=2, opens=time(17, 0),
                                                           closes=time(22, 0)),)))
        uow.commit()
    with pytest.raises(Conflict) as err:
        place_order(svc, _request(platform), idempotency_key="k")
    assert err.value.code == "merchant_closed"
    platform.clock.advance(3600)
    assert place_order(svc, _request(platform), idempotency_key="k").order.status.value == "placed"


def test_read_only_unit_of_work_refuses_to_commit(platform):
    with platform.services.uow(read_only=True) as uow:
        assert uow.regions.get(platform.seed.region.id) is not None
        with pytest.raises(AssertionError):
            uow.commit()


@pytest.mark.postgres
def test_read_only_transaction_cannot_write_on_postgres(platform):
    import sqlalchemy as sa

    if platform.container.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL enforces READ ONLY transactions; SQLite relies on the assert")
    with platform.services.uow(read_only=True) as uow, pytest.raises(sa.exc.DBAPIError):
        uow.regions.add(platform.seed.region)


@in_memory
def test_accepting_an_offer_whose_order_was_cancelled_withdraws_it(platform):
    svc = platform.services
    order = place_order(svc, _request(platform), idempotency_key="k").order
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=600,
                             actor=_actor("merchant", order.merchant_id))
    c = platform.seed.courier_ids[0]
    fulfilment.start_shift(svc, c, device_id="d", ends_at=platform.clock.now() + 3600,
                           actor=_actor("courier", c))
    offer = offers.make_offer(svc, courier_id=c, order_ids=(order.id,), actor=SYSTEM)
    fulfilment.cancel_order(svc, order.id, reason="changed mind",
                            actor=_actor("consumer", order.consumer_id))
    with pytest.raises(Conflict) as err:
        offers.accept_offer(svc, offer.id, actor=_actor("courier", c))
    assert err.value.code == "offer_withdrawn"
    assert offers.current_offer(svc, c) is None
    with svc.uow(read_only=True) as uow:
        assert uow.couriers.get(c).status.value == "idle"
        assert [e.type for e in uow.events.for_subject(offer.id)] == ["offer.made",
                                                                      "offer.withdrawn"]


def test_concurrent_requests_with_one_key_create_one_order(platform):
    import threading

    svc = platform.services
    results, errors = [], []
    barrier = threading.Barrier(4)

    def attempt():
        barrier.wait()
        try:
            results.append(place_order(svc, _request(platform), idempotency_key="race"))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.order.id for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False, True, True, True]
    who = Principal(role="ops", subject_id="ops")
    assert len(queries.list_orders(svc, who=who, statuses=None)) == 1


@in_memory
def test_a_courier_gets_one_live_offer_at_a_time(platform):
    svc = platform.services
    c = platform.seed.courier_ids[0]
    fulfilment.start_shift(svc, c, device_id="d", ends_at=platform.clock.now() + 3600,
                           actor=_actor("courier", c))
    ids = []
    for i in range(2):
        order = place_order(svc, _request(platform, consumer=i), idempotency_key="k").order
        fulfilment.confirm_order(svc, order.id, prep_estimate_s=600,
                                 actor=_actor("merchant", order.merchant_id))
        ids.append(order.id)
    offers.make_offer(svc, courier_id=c, order_ids=(ids[0],), actor=SYSTEM, ttl_s=30)
    with pytest.raises(Conflict) as err:
        offers.make_offer(svc, courier_id=c, order_ids=(ids[1],), actor=SYSTEM)
    assert err.value.code == "courier_has_offer"
    platform.clock.advance(31)
    assert offers.make_offer(svc, courier_id=c, order_ids=(ids[1],), actor=SYSTEM)


@in_memory
def test_an_offer_never_crosses_regions(platform):
    from lastmile.app import catalog
    from lastmile.core.model import Vehicle

    svc = platform.services
    other = catalog.create_region(
        svc, name="Other", market="other", time_zone="Europe/Paris", currency="EUR",
        polygon=(Point(lat=48.80, lng=2.25), Point(lat=48.80, lng=2.42),
                 Point(lat=48.90, lng=2.42), Point(lat=48.90, lng=2.25)))
    stranger = catalog.create_courier(svc, region_id=other.id, name="Far", vehicle=Vehicle.CAR)
    fulfilment.start_shift(svc, stranger.id, device_id="d", ends_at=platform.clock.now() + 3600,
                           actor=_actor("courier", stranger.id))
    order = place_order(svc, _request(platform), idempotency_key="k").order
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=600,
                             actor=_actor("merchant", order.merchant_id))
    with pytest.raises(InvalidInput) as err:
        offers.make_offer(svc, courier_id=stranger.id, order_ids=(order.id,), actor=SYSTEM)
    assert err.value.code == "region_mismatch"


def test_writers_of_one_process_queue_and_all_succeed(sqlite_platform):
    import threading

    svc = sqlite_platform.services
    results, errors = [], []

    def attempt(i):
        try:
            results.append(place_order(svc, _request(sqlite_platform, consumer=i % 4),
                                       idempotency_key=f"w{i}"))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len({r.order.id for r in results}) == 16


@in_memory
def test_finished_shifts_end_unless_the_courier_still_carries_orders(platform):
    svc = platform.services
    free, busy = platform.seed.courier_ids[:2]
    for c in (free, busy):
        fulfilment.start_shift(svc, c, device_id="d", ends_at=platform.clock.now() + 600,
                               actor=_actor("courier", c))
    order = place_order(svc, _request(platform), idempotency_key="k").order
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=600,
                             actor=_actor("merchant", order.merchant_id))
    offer = offers.make_offer(svc, courier_id=busy, order_ids=(order.id,), actor=SYSTEM)
    offers.accept_offer(svc, offer.id, actor=_actor("courier", busy))
    assert shifts.end_expired_shifts(svc, platform.container.live) == 0  # nobody's shift is over yet
    platform.clock.advance(601)
    assert shifts.end_expired_shifts(svc, platform.container.live) == 1
    with svc.uow(read_only=True) as uow:
        assert uow.couriers.get(free).status.value == "offline"
        assert uow.couriers.get(busy).status.value == "busy"
    fulfilment.cancel_order(svc, order.id, reason="x", actor=_actor("ops", "ops"))
    assert shifts.end_expired_shifts(svc, platform.container.live) == 1
