"""bench/eta_history.py's checks pass on history the platform wrote and catch a record
that says something the platform did not see (the bench cannot flatter the data)."""

from __future__ import annotations

from dataclasses import replace

import eta_history as bench

from fakes import fake_services
from lastmile.app import fulfilment, offers, queries
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind, DeliveryProof
from lastmile.sim.seed import seed_demo


def _history():  # noqa: ANN202
    svc = fake_services()
    seed = seed_demo(svc, seed=5, merchants=2, consumers=2, couriers=2)
    courier = Actor(kind=ActorKind.COURIER, id=seed.courier_ids[0])
    fulfilment.start_shift(svc, courier.id, device_id="d", ends_at=svc.clock.now() + 9000,
                           actor=courier)
    m = queries.get_merchant(svc, seed.merchant_ids[0])
    placed = []
    for i in range(3):
        req = OrderRequest(consumer_id=seed.consumer_ids[0], merchant_id=m.id,
                           lines=(LineRequest(item_id=m.menu[0].id, quantity=i + 1),),
                           dropoff=Point(lat=37.445, lng=-122.15))
        placed.append(place_order(svc, req, idempotency_key=f"k{i}").order)
        svc.clock.advance(45)
    first = placed[0]
    fulfilment.confirm_order(svc, first.id, prep_estimate_s=600,
                             actor=Actor(kind=ActorKind.MERCHANT, id=m.id))
    offer = offers.make_offer(svc, courier_id=courier.id, order_ids=(first.id,), actor=SYSTEM)
    offers.accept_offer(svc, offer.id, actor=courier)
    for step in (fulfilment.courier_arrive, fulfilment.pick_up, fulfilment.courier_arrive):
        svc.clock.advance(200)
        step(svc, first.id, actor=courier)
    fulfilment.deliver(svc, first.id, proof=DeliveryProof(photo_ref="p"), actor=courier)
    with svc.uow(read_only=True) as uow:
        records = uow.eta_history.records(finished_only=False)
        orders = uow.orders.get_many([o.id for o in placed])
        region = uow.regions.get(first.region_id)
        defaults = uow.merchants.prep_times(region.id)
    return records, orders, {region.id: region.time_zone}, defaults


def test_history_the_platform_wrote_passes_every_check():
    records, orders, zones, defaults = _history()
    got = bench.check(records, orders, zones, defaults)
    assert (got["records"], got["delivered"], got["open"], got["missing"]) == (3, 1, 2, 0)
    assert got["mismatches"] == {} and got["stage_sum_max_err_s"] < 1e-6


def test_a_record_with_features_or_stages_the_platform_did_not_see_is_counted():
    records, orders, zones, defaults = _history()
    done = next(r for r in records if r.finish is not None)
    last = records[-1]
    forged_demand = replace(last, features=replace(
        last.features, orders_per_min=(*last.features.orders_per_min[:5], 99.0)))
    forged_stage = replace(done, finish=replace(done.finish, outcome=replace(
        done.finish.outcome, wait_s=done.finish.outcome.wait_s + 30)))
    tampered = [forged_stage if r is done else forged_demand if r is last else r
                for r in records]
    got = bench.check(tampered, orders, zones, defaults)
    assert got["mismatches"] == {"orders_per_min": 1}
    assert got["stage_sum_max_err_s"] == 30.0
    assert bench.check(records[1:], orders, zones, defaults)["missing"] == 1
