"""The ETA history on SQLite and PostgreSQL: each order's record holds what the platform knew
when it was placed (never what it learned later) and the stages it then went through; it is
written in the placement and terminal transactions, per tenant, and exported as Parquet."""

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from drive_helpers import a_request, to_dropoff
from typer.testing import CliRunner

from lastmile.adapters.eta_parquet import read_history, write_history
from lastmile.app import drive, eta_history, fulfilment, offers, queries
from lastmile.app.live import CourierLive
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.app.tenancy import acting_as
from lastmile.cli import app as cli
from lastmile.core.delivery.proof import GivenProof
from lastmile.core.eta.history import MIN_PREP_SAMPLES, prep_stats
from lastmile.core.geo import Point, haversine_m
from lastmile.core.orders import SYSTEM, Actor, ActorKind, DeliveryProof
from lastmile.core.pricing import ROAD_FACTOR, PricingPolicy
from tenant_helpers import TEST_TENANT, an_order_request, seed_test_tenant

DROP = Point(lat=37.445, lng=-122.15)


def _request(p, *, merchant=0, consumer=0, qty=2):
    m = queries.get_merchant(p.services, p.seed.merchant_ids[merchant])
    return OrderRequest(consumer_id=p.seed.consumer_ids[consumer], merchant_id=m.id,
                        lines=(LineRequest(item_id=m.menu[0].id, quantity=qty),), dropoff=DROP)


def _place(p, key, **kw):
    return place_order(p.services, _request(p, **kw), idempotency_key=key).order


def _on_shift(p, i):
    c = p.seed.courier_ids[i]
    fulfilment.start_shift(p.services, c, device_id=f"d{i}", ends_at=p.clock.now() + 4 * 3600,
                           actor=Actor(kind=ActorKind.COURIER, id=c))
    return c


def _deliver(p, order, courier_id, *, prep_s=300.0):
    """Assigned 100 s after placement, ready at ``prep_s``, at the merchant 100 s later,
    picked up 50 s after that, delivered 600 s later."""
    svc, t0 = p.services, order.placed_at
    merchant = Actor(kind=ActorKind.MERCHANT, id=order.merchant_id)
    courier = Actor(kind=ActorKind.COURIER, id=courier_id)
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=600, actor=merchant)
    p.clock.set(t0 + 100)
    offer = offers.make_offer(svc, courier_id=courier_id, order_ids=(order.id,), actor=SYSTEM)
    offers.accept_offer(svc, offer.id, actor=courier)
    p.clock.set(t0 + prep_s)
    fulfilment.mark_ready(svc, order.id, actor=merchant)
    p.clock.set(t0 + prep_s + 100)
    fulfilment.courier_arrive(svc, order.id, actor=courier)
    p.clock.set(t0 + prep_s + 150)
    fulfilment.pick_up(svc, order.id, actor=courier)
    p.clock.set(t0 + prep_s + 750)
    fulfilment.courier_arrive(svc, order.id, actor=courier)
    return fulfilment.deliver(svc, order.id, proof=DeliveryProof(photo_ref="s3://door.jpg"),
                              actor=courier)


def _record(p, order_id, *, finished_only=True):
    with p.services.uow(read_only=True) as uow:
        found = [r for r in uow.eta_history.records(finished_only=finished_only)
                 if r.order_id == order_id]
    return found[0] if found else None


def test_a_delivery_records_its_placement_features_and_stages_that_add_up(platform):
    p = platform
    courier = _on_shift(p, 0)
    order = _place(p, "k1", qty=3)
    done = _deliver(p, order, courier, prep_s=300.0)
    record = _record(p, order.id)
    with p.services.uow(read_only=True) as uow:
        region = uow.regions.get(order.region_id)
        merchant = uow.merchants.get(order.merchant_id)
    local = datetime.fromtimestamp(order.placed_at, ZoneInfo(region.time_zone))
    f = record.features
    assert (f.merchant_id, f.region, f.hour, f.weekday) == (
        order.merchant_id, order.region_id, local.hour, local.weekday())
    assert (f.items, f.subtotal_minor) == (3, order.prices.subtotal.amount_minor)
    assert f.distance_m == pytest.approx(haversine_m(order.pickup, order.dropoff))
    assert f.travel_s > f.distance_m / 20  # slower than 20 m/s door to door, handovers too
    # no history yet: the merchant's own time; one order in the window, none before it
    assert (f.prep_mean_s, f.prep_p90_s) == (merchant.prep_time_s, merchant.prep_time_s)
    assert f.orders_per_min == (0.0,) * 6 and f.idle_couriers == (1.0,) * 6
    assert record.quoted_s == pytest.approx(order.eta.expected_at - order.placed_at)
    o, fin = record.finish.outcome, record.finish
    assert (o.assign_s, o.to_merchant_s, o.wait_s, o.to_consumer_s) == pytest.approx(
        (100.0, 300.0, 50.0, 600.0))
    assert o.total_s == pytest.approx(done.delivered_at - order.placed_at) == pytest.approx(
        o.assign_s + o.to_merchant_s + o.wait_s + o.to_consumer_s)
    assert (fin.status, fin.finished_at, fin.prep_s) == ("delivered", done.delivered_at, 300.0)
    features, outcomes = eta_history.training_set(p.services)
    assert features == [f] and outcomes == [o]


def test_the_record_keeps_what_was_known_at_placement_when_supply_changes_later(platform):
    p = platform
    first = _place(p, "k1")  # nobody on shift, no order before it
    placed = _record(p, first.id, finished_only=False)
    p.clock.advance(120)
    couriers = [_on_shift(p, i) for i in range(3)]
    later = [_place(p, f"k{i}", consumer=i % 2) for i in range(2, 5)]
    _deliver(p, first, couriers[0])
    delivered = _record(p, first.id)
    assert delivered.features == placed.features
    assert placed.features.idle_couriers == (0.0,) * 6
    assert placed.features.orders_per_min == (0.0,) * 6
    # the later orders saw the supply and the demand that came after the first
    newest = _record(p, later[-1].id, finished_only=False).features
    assert newest.orders_per_min[-1] > 0 and newest.idle_couriers[-1] > 0


def test_the_record_holds_open_work_and_the_nearest_idle_courier_at_placement(platform):
    p = platform
    first = _place(p, "k1")  # nobody on shift, nothing open before it
    f1 = _record(p, first.id, finished_only=False).features
    assert (f1.open_orders, f1.merchant_open_orders) == (0.0, 0.0)
    assert math.isnan(f1.idle_nearest_s) and math.isnan(f1.courier_reach_s)
    courier = _on_shift(p, 0)
    merchant = queries.get_merchant(p.services, first.merchant_id)
    spot = Point(lat=merchant.location.lat + 0.009, lng=merchant.location.lng)  # ~1 km north
    p.services.live.upsert(CourierLive(courier_id=courier, region_id=first.region_id,
                                       lat=spot.lat, lng=spot.lng, status="idle",
                                       updated_at=p.clock.now()))
    second = _place(p, "k2", consumer=1)
    f2 = _record(p, second.id, finished_only=False).features
    assert (f2.open_orders, f2.merchant_open_orders) == (1.0, 1.0)  # the first, not itself
    speed = PricingPolicy().courier_speed_mps
    assert f2.idle_nearest_s == pytest.approx(
        haversine_m(spot, merchant.location) * ROAD_FACTOR / speed)
    _deliver(p, first, courier)
    third = _place(p, "k3")
    f3 = _record(p, third.id, finished_only=False).features
    assert (f3.open_orders, f3.merchant_open_orders) == (1.0, 1.0)  # the second only
    assert _record(p, second.id, finished_only=False).features == f2  # never rewritten


def test_a_cancelled_order_is_recorded_as_a_failure_without_stages(platform):
    p = platform
    order = _place(p, "k1")
    p.clock.advance(90)
    fulfilment.cancel_order(p.services, order.id, reason="changed my mind",
                            actor=Actor(kind=ActorKind.CONSUMER, id=order.consumer_id))
    record = _record(p, order.id)
    assert (record.finish.status, record.finish.cancelled_from, record.finish.outcome) == (
        "cancelled", "placed", None)
    assert record.finish.finished_at == order.placed_at + 90
    assert eta_history.training_set(p.services) == ([], [])


def test_the_merchant_prep_history_feeds_later_orders(platform):
    p = platform
    courier = _on_shift(p, 0)
    preps = [200.0, 300.0, 400.0, 500.0, 900.0][:MIN_PREP_SAMPLES]
    for i, prep_s in enumerate(preps):
        _deliver(p, _place(p, f"k{i}"), courier, prep_s=prep_s)
        p.clock.advance(60)
    record = _record(p, _place(p, "next").id, finished_only=False)
    assert (record.features.prep_mean_s, record.features.prep_p90_s) == pytest.approx(
        prep_stats(preps, default_s=0))


def test_a_drive_delivery_is_recorded_without_a_cart(platform):
    p = platform
    view = drive.create_delivery(p.services, a_request(p))
    courier = to_dropoff(p, view.order.id)
    drive.courier_deliver(p.services, view.order.id, given=GivenProof(photo_ref="p.jpg"),
                          actor=courier)
    record = _record(p, view.order.id)
    assert record.channel == "drive" and record.features.stage == "explore"
    assert (record.features.items, record.features.subtotal_minor) == (None, None)
    assert record.finish.status == "delivered" and record.finish.outcome is not None


def test_each_tenant_sees_only_its_own_history(platform):
    p = platform
    other = seed_test_tenant(p)
    _place(p, "k1")
    with acting_as(TEST_TENANT):
        req = an_order_request(p, consumer_id=other.consumer_ids[0],
                               merchant_id=other.merchant_ids[0])
        theirs = place_order(p.services, req, idempotency_key="k1").order
        with p.services.uow(read_only=True) as uow:
            seen = [r.order_id for r in uow.eta_history.records(finished_only=False)]
            minutes = uow.eta_history.supply_minutes(theirs.region_id, since_minute=0)
    assert seen == [theirs.id] and sum(m.orders for m in minutes) == 1
    with p.services.uow(read_only=True) as uow:
        assert theirs.id not in {r.order_id for r in uow.eta_history.records(
            finished_only=False)}


def test_export_writes_parquet_that_reads_back_as_the_records(sqlite_platform, tmp_path):
    p = sqlite_platform
    courier = _on_shift(p, 0)
    first = _place(p, "k1")
    _deliver(p, first, courier)
    p.clock.advance(3600)
    second = _place(p, "k2")
    fulfilment.cancel_order(p.services, second.id, reason="late",
                            actor=Actor(kind=ActorKind.CONSUMER, id=second.consumer_id))
    records = eta_history.records(p.services)
    assert [r.order_id for r in records] == [first.id, second.id]
    assert write_history(records, tmp_path / "direct.parquet") == 2
    assert read_history(tmp_path / "direct.parquet") == records

    out = tmp_path / "history.parquet"
    ran = CliRunner().invoke(cli, ["eta", "export", "--out", str(out), "--data-dir",
                                   str(tmp_path), "--since", str(second.placed_at - 1)])
    assert ran.exit_code == 0, ran.output
    assert read_history(out) == records[1:]
    bad = CliRunner().invoke(cli, ["eta", "export", "--out", str(out), "--data-dir",
                                   str(tmp_path), "--until", "yesterday"])
    assert bad.exit_code == 2 and "--until" in bad.output


def test_the_placement_reads_use_their_keys_not_a_scan(tmp_path):
    # Each placement reads the merchant's last preparation times and the region's minutes;
    # both tables grow all day, every day.
    import sqlalchemy as sa

    from lastmile.bootstrap import build
    from lastmile.settings import Settings

    container = build(Settings(data_dir=tmp_path))
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if "FROM eta_" in statement:
            seen.append((statement, parameters))

    try:
        engine = container.engine
        sa.event.listen(engine, "before_cursor_execute", capture)
        with container.services.uow(read_only=True) as uow:
            assert uow.eta_history.prep_samples("mer_x", limit=50) == []
            assert uow.eta_history.supply_minutes("reg_x", since_minute=1) == []
        sa.event.remove(engine, "before_cursor_execute", capture)
        plans = []
        with engine.connect() as conn:
            for sql, params in seen:
                plans.append(" ".join(str(r[-1]) for r in conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {sql}", params)))
    finally:
        container.close()
    prep, minutes = plans
    assert "USING INDEX ix_eta_history_merchant" in prep and "TEMP B-TREE" not in prep, prep
    assert "USING PRIMARY KEY" in minutes or "sqlite_autoindex" in minutes, minutes
