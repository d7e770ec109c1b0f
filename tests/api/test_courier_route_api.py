"""The courier's side of a stacked offer over HTTP: the offer shows its stops, the route
lists them in order after accepting, and ops cannot hand-make an offer mixing merchants."""

from __future__ import annotations

from lastmile.app import fulfilment, queries
from lastmile.app.dispatching import dispatch_round
from lastmile.app.live import CourierLive
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.core.dispatch import DispatchPolicy
from lastmile.core.geo import Point, haversine_m
from lastmile.core.orders import SYSTEM, Actor, ActorKind
from lastmile.sim.seed import DEMO_REGION_ID

STACKING = DispatchPolicy(allow_stacking=True, stack_radius_m=3_000.0)


def _two_ready_orders(p):
    ms = [queries.get_merchant(p.services, m) for m in p.seed.merchant_ids]
    _, i, j = min((haversine_m(a.location, b.location), i, j) for i, a in enumerate(ms)
                  for j, b in enumerate(ms) if i < j)
    # Both doors ~600 m beyond the midpoint of the two merchants: a stack saves a trip.
    drop = Point(lat=(ms[i].location.lat + ms[j].location.lat) / 2 + 0.004,
                 lng=(ms[i].location.lng + ms[j].location.lng) / 2 + 0.004)
    out = []
    for k, m in enumerate((ms[i], ms[j])):
        req = OrderRequest(consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
                           lines=(LineRequest(item_id=m.menu[0].id, quantity=1),), dropoff=drop)
        order = place_order(p.services, req, idempotency_key=f"k{k}").order
        me = Actor(kind=ActorKind.MERCHANT, id=m.id)
        fulfilment.confirm_order(p.services, order.id, prep_estimate_s=60, actor=me)
        out.append(fulfilment.mark_ready(p.services, order.id, actor=me))
    return out, ms[i]


def test_a_stacked_offer_shows_its_stops_and_the_route_follows_them(api):
    p = api.platform
    (a, b), first = _two_ready_orders(p)
    cid = p.seed.courier_ids[0]
    fulfilment.start_shift(p.services, cid, device_id="d0", ends_at=p.clock.now() + 3600,
                           actor=SYSTEM)
    p.container.live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID,
                                        lat=first.location.lat, lng=first.location.lng,
                                        status="idle", updated_at=p.clock.now()))
    assert dispatch_round(p.services, p.container.live, DEMO_REGION_ID, STACKING).offers
    c = api.client
    offer = c.get("/v1/courier/offer", headers=api.h("courier")).json()["offer"]
    assert offer["stack_id"] and [s["kind"] for s in offer["stops"]] == [
        "pickup", "pickup", "dropoff", "dropoff"]
    assert c.post(f"/v1/courier/offers/{offer['id']}/accept",
                  headers=api.h("courier")).status_code == 200
    route = c.get("/v1/courier/route", headers=api.h("courier")).json()["stops"]
    assert [(s["kind"], s["merchant_id"], s["order_ids"]) for s in route] == [
        (s["kind"], s["merchant_id"], s["order_ids"]) for s in offer["stops"]]
    assert all(s["stack_id"] == offer["stack_id"] and s["done"] is False for s in route)
    first_pickup = route[0]["order_ids"][0]
    for step in ("arrive", "pickup"):
        assert c.post(f"/v1/courier/orders/{first_pickup}/{step}",
                      headers=api.h("courier")).status_code == 200
    route = c.get("/v1/courier/route", headers=api.h("courier")).json()["stops"]
    assert [s["done"] for s in route] == [True, False, False, False]
    # Another courier sees only its own (empty) route.
    assert c.get("/v1/courier/route", headers=api.h("courier2")).json() == {"stops": []}


def test_ops_cannot_hand_make_an_offer_mixing_merchants(api):
    p = api.platform
    (a, b), _ = _two_ready_orders(p)
    cid = p.seed.courier_ids[0]
    fulfilment.start_shift(p.services, cid, device_id="d0", ends_at=p.clock.now() + 3600,
                           actor=SYSTEM)
    r = api.client.post("/v1/ops/offers", json={"courier_id": cid, "order_ids": [a.id, b.id]},
                        headers=api.h("ops"))
    assert 400 <= r.status_code < 500
    body = r.json()
    assert "mixed_merchants" in str(body) and "order_ids" in str(body)
