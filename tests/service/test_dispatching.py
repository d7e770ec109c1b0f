"""The live dispatch round with a manual clock, on a fake unit of work (``@in_memory``);
the query count of loading a round on SQLite."""

from fakes import in_memory
from lastmile.app import fulfilment, offers, queries
from lastmile.app.dispatching import LiveTravel, Plane, dispatch_round
from lastmile.app.live import CourierLive
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.core.dispatch import DispatchPolicy, PolicyKind
from lastmile.core.geo import Point, haversine_m
from lastmile.core.orders import SYSTEM, Actor, ActorKind, DeliveryProof, OrderStatus
from lastmile.sim.seed import DEMO_REGION_ID

DROP = Point(lat=37.445, lng=-122.15)
GREEDY = DispatchPolicy(kind=PolicyKind.GREEDY)


def _place(p, merchant=0, key="k"):
    m = queries.get_merchant(p.services, p.seed.merchant_ids[merchant])
    req = OrderRequest(consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
                       lines=(LineRequest(item_id=m.menu[0].id, quantity=1),), dropoff=DROP)
    order = place_order(p.services, req, idempotency_key=key).order
    merchant_actor = Actor(kind=ActorKind.MERCHANT, id=m.id)
    return fulfilment.confirm_order(p.services, order.id, prep_estimate_s=600,
                                    actor=merchant_actor)


def _on_shift(p, i=0, at=None):
    cid = p.seed.courier_ids[i]
    fulfilment.start_shift(p.services, cid, device_id=f"d{i}",
                           ends_at=p.clock.now() + 4 * 3600, actor=SYSTEM)
    if at is not None:
        p.container.live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID,
                                            lat=at.lat, lng=at.lng, status="idle",
                                            updated_at=p.clock.now()))
    return cid


def _round(p, policy=GREEDY):
    return dispatch_round(p.services, p.container.live, DEMO_REGION_ID, policy)


@in_memory("sqlite_platform")
def test_offers_a_confirmed_order_to_an_idle_courier(sqlite_platform):
    p = sqlite_platform
    order = _place(p)
    cid = _on_shift(p)
    result = _round(p)
    assert [(o.courier_id, o.order_ids) for o in result.offers] == [(cid, (order.id,))]
    assert offers.current_offer(p.services, cid).id == result.offers[0].id


@in_memory("sqlite_platform")
def test_placed_orders_wait_for_the_merchant_to_confirm(sqlite_platform):
    p = sqlite_platform
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    place_order(p.services, OrderRequest(
        consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
        lines=(LineRequest(item_id=m.menu[0].id, quantity=1),), dropoff=DROP),
        idempotency_key="k")
    _on_shift(p)
    assert _round(p).offers == ()


@in_memory("sqlite_platform")
def test_an_order_with_a_live_offer_is_not_offered_twice(sqlite_platform):
    p = sqlite_platform
    _place(p)
    _on_shift(p, 0)
    _on_shift(p, 1)
    assert len(_round(p).offers) == 1
    again = _round(p)
    assert again.offers == () and again.open_orders == 0


@in_memory("sqlite_platform")
def test_an_offer_not_accepted_by_expiry_goes_back_to_the_pool(sqlite_platform):
    p = sqlite_platform
    order = _place(p)
    _on_shift(p, 0)
    first = _round(p).offers[0]
    p.clock.advance(p.services.offer_ttl_s + 1)
    second = _round(p)
    assert [o.order_ids for o in second.offers] == [(order.id,)]
    assert second.offers[0].id != first.id


@in_memory("sqlite_platform")
def test_a_declined_offer_goes_back_to_the_pool(sqlite_platform):
    p = sqlite_platform
    order = _place(p)
    cid = _on_shift(p, 0)
    first = _round(p).offers[0]
    offers.decline_offer(p.services, first.id, reason="too far",
                         actor=Actor(kind=ActorKind.COURIER, id=cid))
    assert [o.order_ids for o in _round(p).offers] == [(order.id,)]


@in_memory("sqlite_platform")
def test_nearest_live_position_wins_over_stored_location(sqlite_platform):
    p = sqlite_platform
    order = _place(p)
    far = Point(lat=37.40, lng=-122.10)
    _on_shift(p, 0, at=far)
    near = _on_shift(p, 1, at=order.pickup)
    assert [o.courier_id for o in _round(p).offers] == [near]


@in_memory("sqlite_platform")
def test_a_courier_holding_an_order_is_not_offered_another_while_busy(sqlite_platform):
    p = sqlite_platform
    first = _place(p, key="k1")
    cid = _on_shift(p, 0, at=first.pickup)
    offer = _round(p).offers[0]
    offers.accept_offer(p.services, offer.id, actor=Actor(kind=ActorKind.COURIER, id=cid))
    _place(p, merchant=1, key="k2")
    result = _round(p)
    assert result.offers == () and result.idle_couriers == 0


@in_memory("sqlite_platform")
def test_delivered_orders_free_the_courier_for_the_next_round(sqlite_platform):
    p = sqlite_platform
    first = _place(p, key="k1")
    cid = _on_shift(p, 0, at=first.pickup)
    me = Actor(kind=ActorKind.COURIER, id=cid)
    offers.accept_offer(p.services, _round(p).offers[0].id, actor=me)
    for step in (fulfilment.courier_arrive, fulfilment.pick_up, fulfilment.courier_arrive):
        step(p.services, first.id, actor=me)
    fulfilment.deliver(p.services, first.id, proof=DeliveryProof(note="door"), actor=me)
    second = _place(p, merchant=1, key="k2")
    assert [o.order_ids for o in _round(p).offers] == [(second.id,)]


@in_memory("sqlite_platform")
def test_optimised_policy_bundles_orders_of_one_merchant(sqlite_platform):
    p = sqlite_platform
    a, b = _place(p, key="k1"), _place(p, key="k2")
    cid = _on_shift(p, 0)
    p.clock.advance(9 * 60)  # food almost ready: the pair must be committed now
    p.container.live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID,
                                        lat=a.pickup.lat, lng=a.pickup.lng, status="idle",
                                        updated_at=p.clock.now()))  # waiting at the merchant
    result = _round(p, DispatchPolicy())
    assert [sorted(o.order_ids) for o in result.offers] == [sorted([a.id, b.id])]


@in_memory("sqlite_platform")
def test_the_engine_does_not_commit_early_when_the_food_is_far_from_ready(sqlite_platform):
    p = sqlite_platform
    order = _place(p)
    _on_shift(p, 0, at=order.pickup)
    assert _round(p, DispatchPolicy()).offers == ()


@in_memory("sqlite_platform")
def test_plane_projection_keeps_city_distances(sqlite_platform):
    a, b = Point(lat=37.44, lng=-122.14), Point(lat=37.47, lng=-122.10)
    plane = Plane(origin=Point(lat=37.45, lng=-122.12))
    (ax, ay), (bx, by) = plane.xy(a), plane.xy(b)
    planar = ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5
    assert abs(planar - haversine_m(a, b)) / haversine_m(a, b) < 0.005


def test_travel_model_divides_speed_by_road_factor():
    model = LiveTravel(speed_mps=5.0, road_factor=1.25).model()
    assert model.seconds_between(0, 0, 400, 0) == 100


@in_memory("sqlite_platform")
def test_round_on_an_unknown_region_is_not_found(sqlite_platform):
    import pytest

    from lastmile.core.errors import NotFound

    with pytest.raises(NotFound):
        dispatch_round(sqlite_platform.services, sqlite_platform.container.live, "reg_x", GREEDY)


@in_memory("sqlite_platform")
def test_status_of_assigned_order_after_accept(sqlite_platform):
    p = sqlite_platform
    order = _place(p)
    cid = _on_shift(p, 0)
    offer = _round(p).offers[0]
    offers.accept_offer(p.services, offer.id, actor=Actor(kind=ActorKind.COURIER, id=cid))
    with p.services.uow() as uow:
        assert uow.orders.get(order.id).status is OrderStatus.ASSIGNED


@in_memory("sqlite_platform")
def test_a_capped_round_takes_the_oldest_waiting_orders_first(sqlite_platform, monkeypatch):
    from lastmile.app import dispatching

    p = sqlite_platform
    first = _place(p, key="k1")
    p.clock.advance(60)
    _place(p, key="k2")
    monkeypatch.setattr(dispatching, "MAX_OPEN_ORDERS", 1)
    cid = _on_shift(p)
    result = _round(p)
    assert [(o.courier_id, o.order_ids) for o in result.offers] == [(cid, (first.id,))]


@in_memory("sqlite_platform")
def test_the_worker_logs_a_failing_round_and_runs_the_next_one(sqlite_platform, monkeypatch,
                                                               caplog):
    from lastmile.adapters import dispatch_worker
    from lastmile.adapters.dispatch_worker import DispatchWorker

    p = sqlite_platform
    real = dispatch_worker.dispatch_round
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(dispatch_worker, "dispatch_round", flaky)
    _place(p)
    _on_shift(p)
    worker = DispatchWorker(p.services, p.container.live, policy=GREEDY,
                            region_ids=(DEMO_REGION_ID,))
    with caplog.at_level("ERROR", logger="lastmile.adapters.dispatch_worker"):
        assert worker.run_once() == []
    assert "database went away" in caplog.text and DEMO_REGION_ID in caplog.text
    assert worker.stats.errors == 1 and "database went away" in worker.stats.last_error
    assert len(worker.run_once()[0].offers) == 1
    assert (worker.stats.rounds, worker.stats.offers) == (1, 1)


@in_memory("sqlite_platform")
def test_the_worker_survives_failing_to_list_the_regions(sqlite_platform, monkeypatch):
    from lastmile.adapters import dispatch_worker
    from lastmile.adapters.dispatch_worker import DispatchWorker

    def down(*args, **kwargs):
        raise OSError("disk I/O error")

    monkeypatch.setattr(dispatch_worker, "region_owners", down)
    worker = DispatchWorker(sqlite_platform.services, sqlite_platform.container.live)
    assert worker.run_once() == []
    assert worker.stats.errors == 1 and "disk I/O error" in worker.stats.last_error


@in_memory("sqlite_platform")
def test_the_worker_thread_ticks_stops_cleanly_and_can_start_again(sqlite_platform):
    import threading

    from lastmile.adapters.dispatch_worker import DispatchWorker

    p = sqlite_platform
    worker = DispatchWorker(p.services, p.container.live, interval_s=0.01,
                            region_ids=(DEMO_REGION_ID,))
    for _ in range(2):
        worker.start()
        deadline = threading.Event()
        for _ in range(1000):  # up to ~10 s on a loaded machine; returns at the first round
            if worker.stats.rounds:
                break
            deadline.wait(0.01)
        rounds = worker.stats.rounds
        worker.stop()
        assert rounds > 0 and worker.stats.errors == 0
        assert not any(t.name == "dispatcher" and t.is_alive() for t in threading.enumerate())
        worker.stats.rounds = 0


@in_memory("sqlite_platform")
def test_a_courier_silent_longer_than_the_live_max_age_is_offered_nothing(sqlite_platform):
    p = sqlite_platform
    order = _place(p)
    cid = _on_shift(p, 0, at=order.pickup)
    p.clock.advance(p.container.live.max_age_s + 1)  # the last ping has expired
    result = _round(p)
    assert result.offers == () and result.couriers == 0
    p.container.live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID,
                                        lat=order.pickup.lat, lng=order.pickup.lng,
                                        status="idle", updated_at=p.clock.now()))
    assert [o.courier_id for o in _round(p).offers] == [cid]  # pinging again: back in


@in_memory("sqlite_platform")
def test_a_courier_just_on_shift_without_a_ping_yet_is_placed_at_its_stored_location(
        sqlite_platform):
    p = sqlite_platform
    order = _place(p)
    cid = _on_shift(p, 0)
    p.clock.advance(p.container.live.max_age_s - 1)
    assert [(o.courier_id, o.order_ids) for o in _round(p).offers] == [(cid, (order.id,))]


@in_memory("sqlite_platform")
def test_a_courier_deciding_on_an_offer_gets_no_second_one(sqlite_platform):
    p = sqlite_platform
    first = _place(p, key="k1")
    cid = _on_shift(p, 0, at=first.pickup)
    assert [o.order_ids for o in _round(p).offers] == [(first.id,)]
    _place(p, merchant=1, key="k2")
    result = _round(p)
    assert result.offers == () and result.couriers == 0 and result.open_orders == 1
    assert offers.current_offer(p.services, cid).order_ids == (first.id,)


@in_memory("sqlite_platform")
def test_no_offer_to_a_courier_whose_shift_ends_before_the_food_is_ready(sqlite_platform):
    p = sqlite_platform
    _place(p)  # ready in 10 min
    cid = p.seed.courier_ids[0]
    fulfilment.start_shift(p.services, cid, device_id="d0", ends_at=p.clock.now() + 300,
                           actor=SYSTEM)
    assert _round(p).offers == ()
    assert _round(p, DispatchPolicy()).offers == ()


def test_loading_a_round_costs_the_same_queries_for_few_or_many_orders(sqlite_platform):
    import sqlalchemy as sa

    from lastmile.app.dispatching import LiveTravel, load_snapshot

    p = sqlite_platform
    engine = p.container.engine
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def queries_for_a_round() -> int:
        statements.clear()
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            load_snapshot(p.services, p.container.live, DEMO_REGION_ID, travel=LiveTravel())
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    _on_shift(p, 0, at=DROP)
    _place(p, key="k0")
    few = queries_for_a_round()
    for i in range(1, 3):
        _on_shift(p, i, at=DROP)
    for k in range(1, 12):
        _place(p, merchant=k % 3, key=f"k{k}")
    _round(p)  # offers now pending for some orders and couriers
    assert queries_for_a_round() == few
