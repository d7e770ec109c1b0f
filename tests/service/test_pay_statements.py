"""Pay statements of live shifts through the API (SQLite always, PostgreSQL when marked):
the shift's delivered orders read back from the orders and events tables, paid by the
pipeline, every line explained; a courier reads only its own shifts."""

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from lastmile.api.app import create_app
from lastmile.app import fulfilment, offers, queries, shifts
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind, DeliveryProof
from lastmile.core.pay import PayPolicy, TimeWindow

DROP = Point(lat=37.445, lng=-122.15)
# Amounts easy to follow by hand: no distance pay, rush all day long.
POLICY = PayPolicy(base_per_order_minor=300, per_minute_minor=10, rush_multiplier="2",
                   rush_windows=(TimeWindow(start_min=0, end_min=1_440),),
                   guarantee_per_hour_minor=3_000)


def _deliver(p, courier_id, *, key, tip):
    svc = p.services
    m = queries.get_merchant(svc, p.seed.merchant_ids[0])
    req = OrderRequest(consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
                       lines=(LineRequest(item_id=m.menu[0].id, quantity=1),), dropoff=DROP,
                       tip_minor=tip)
    order = place_order(svc, req, idempotency_key=key).order
    merchant = Actor(kind=ActorKind.MERCHANT, id=m.id)
    courier = Actor(kind=ActorKind.COURIER, id=courier_id)
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=300, actor=merchant)
    offer = offers.make_offer(svc, courier_id=courier_id, order_ids=(order.id,), actor=SYSTEM)
    offers.accept_offer(svc, offer.id, actor=courier)
    p.clock.advance(300)
    fulfilment.mark_ready(svc, order.id, actor=merchant)
    fulfilment.courier_arrive(svc, order.id, actor=courier)
    fulfilment.pick_up(svc, order.id, actor=courier)
    p.clock.advance(600)  # a 10-minute trip
    fulfilment.courier_arrive(svc, order.id, actor=courier)
    fulfilment.deliver(svc, order.id, proof=DeliveryProof(photo_ref="s3://p/1.jpg"),
                       actor=courier)
    return order.id


@pytest.fixture
def client(platform):
    platform.container.services = replace(platform.container.services, pay=POLICY)
    with TestClient(create_app(platform.container, start_workers=False)) as c:
        yield c


def _h(platform, role, subject):
    return {"Authorization": f"Bearer {platform.key(role, subject)}"}


def _one_hour_shift(p, courier_id, *, tip=250, key="k1"):
    courier = Actor(kind=ActorKind.COURIER, id=courier_id)
    shift = fulfilment.start_shift(p.services, courier_id, device_id="phone",
                                   ends_at=p.clock.now() + 4 * 3600, actor=courier)
    order_id = _deliver(p, courier_id, key=key, tip=tip)
    p.clock.advance(3_600 - 900)
    shifts.end_shift(p.services, courier_id, actor=courier, live=p.container.live)
    return shift.shift_id, order_id


def test_a_courier_reads_the_statement_of_its_shift_every_line_explained(platform, client):
    cid = platform.seed.courier_ids[0]
    shift_id, order_id = _one_hour_shift(platform, cid)
    r = client.get(f"/v1/courier/shifts/{shift_id}/statement", headers=_h(platform, "courier", cid))
    assert r.status_code == 200, r.text
    s = r.json()
    lines = [(ln["order_id"], ln["component"], ln["amount_minor"]) for ln in s["lines"]]
    # base 3.00 + 10 min x 0.10 = 4.00, x2 all day: +4.00; the 2.50 tip untouched;
    # 1 h x 30.00 guaranteed: top-up 30.00 - 8.00 = 22.00
    assert lines == [(order_id, "base", 300), (order_id, "time", 100), (order_id, "rush", 400),
                     (order_id, "tip", 250), (None, "guarantee_top_up", 2_200)]
    assert all(ln["reason"] for ln in s["lines"])
    assert (s["active_s"], s["orders"], s["open"]) == (3_600, 1, False)
    assert (s["earnings_minor"], s["tips_minor"], s["guarantee_minor"], s["top_up_minor"],
            s["total_minor"]) == (800, 250, 3_000, 2_200, 3_250)
    assert s["currency"] == queries.get_region(platform.services,
                                               platform.seed.region.id).currency


def test_another_couriers_shift_is_not_found(platform, client):
    cid, other = platform.seed.courier_ids[:2]
    shift_id, _ = _one_hour_shift(platform, cid)
    r = client.get(f"/v1/courier/shifts/{shift_id}/statement",
                   headers=_h(platform, "courier", other))
    assert r.status_code == 404 and r.json()["code"] == "shift_not_found"


def test_ops_list_a_couriers_statements_newest_first_the_open_shift_so_far(platform, client):
    cid = platform.seed.courier_ids[0]
    first, _ = _one_hour_shift(platform, cid)
    fulfilment.start_shift(platform.services, cid, device_id="phone",
                           ends_at=platform.clock.now() + 4 * 3600, actor=SYSTEM)
    platform.clock.advance(1_800)
    r = client.get(f"/v1/ops/couriers/{cid}/statements", headers=_h(platform, "ops", "ops-1"))
    assert r.status_code == 200, r.text
    running, done = r.json()["statements"]
    assert done["shift_id"] == first and done["total_minor"] == 3_250
    # half an hour on shift, nothing delivered yet: 15.00 guaranteed so far
    assert running["open"] is True and running["ended_at"] is None
    assert running["orders"] == 0 and running["total_minor"] == 1_500
    one = client.get(f"/v1/ops/couriers/{cid}/statements", params={"limit": 1},
                     headers=_h(platform, "ops", "ops-1")).json()["statements"]
    assert [s["open"] for s in one] == [True]


def test_statement_requests_are_checked(platform, client):
    ops = _h(platform, "ops", "ops-1")
    cid = platform.seed.courier_ids[0]
    assert client.get(f"/v1/ops/couriers/{cid}/statements", params={"limit": 0},
                      headers=ops).status_code == 422
    missing = client.get("/v1/ops/couriers/cou_nope/statements", headers=ops)
    assert missing.status_code == 404 and missing.json()["code"] == "courier_not_found"
    denied = client.get(f"/v1/ops/couriers/{cid}/statements", headers=_h(platform, "courier", cid))
    assert denied.status_code == 403
    unknown = client.get("/v1/courier/shifts/shf_nope/statement",
                         headers=_h(platform, "courier", cid))
    assert unknown.status_code == 404


def test_the_tenants_pay_overrides_apply_to_its_statements(platform, client):
    from lastmile.app import tenants

    tenants.configure(platform.container.services,
                      {"pay": {"base_per_order_minor": 1_000, "guarantee_per_hour_minor": 0}})
    cid = platform.seed.courier_ids[0]
    shift_id, _ = _one_hour_shift(platform, cid)
    s = client.get(f"/v1/courier/shifts/{shift_id}/statement",
                   headers=_h(platform, "courier", cid)).json()
    # (10.00 + 1.00) x 2 = 22.00 earned, no guarantee, the 2.50 tip: 24.50
    assert (s["earnings_minor"], s["top_up_minor"], s["total_minor"]) == (2_200, 0, 2_450)
