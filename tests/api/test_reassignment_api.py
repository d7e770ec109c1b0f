"""Reassignment through the API: the courier losing a bundle is told on its stream and no
longer lists the orders; the taker sees a move offer; ops read the move trail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_streams import auth, receive, receive_until

from lastmile.api.app import create_app
from lastmile.app import fulfilment, offers, queries
from lastmile.app.dispatching import dispatch_round
from lastmile.app.live import CourierLive
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.core.dispatch import DispatchPolicy, PolicyKind
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind
from lastmile.sim.seed import DEMO_REGION_ID

MOVES_ON = DispatchPolicy(kind=PolicyKind.GREEDY, allow_reassignment=True)


@pytest.fixture
def client(sqlite_platform: Any) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_platform.container)) as c:
        yield c


def _held_far_away(p: Any) -> tuple[str, str, str]:
    """(order, holder a half hour away, idle courier at the merchant)."""
    a, b = p.seed.courier_ids[0], p.seed.courier_ids[1]
    for i, cid in enumerate((a, b)):
        fulfilment.start_shift(p.services, cid, device_id=f"d{i}",
                               ends_at=p.clock.now() + 4 * 3600, actor=SYSTEM)
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    order = place_order(p.services, OrderRequest(
        consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
        lines=(LineRequest(item_id=m.menu[0].id, quantity=1),),
        dropoff=Point(lat=37.445, lng=-122.15)), idempotency_key="k").order
    fulfilment.confirm_order(p.services, order.id, prep_estimate_s=600,
                             actor=Actor(kind=ActorKind.MERCHANT, id=m.id))
    offer = offers.make_offer(p.services, courier_id=a, order_ids=(order.id,), actor=SYSTEM)
    offers.accept_offer(p.services, offer.id, actor=Actor(kind=ActorKind.COURIER, id=a))
    for cid, lat in ((a, m.location.lat + 0.06), (b, m.location.lat)):
        p.container.live.upsert(CourierLive(courier_id=cid, region_id=DEMO_REGION_ID, lat=lat,
                                            lng=m.location.lng, status="idle",
                                            updated_at=p.clock.now()))
    return order.id, a, b


def test_the_holder_is_told_and_ops_see_the_trail(client: TestClient,
                                                  sqlite_platform: Any) -> None:
    p = sqlite_platform
    oid, a, b = _held_far_away(p)
    ak, bk, ops = p.key("courier", a), p.key("courier", b), p.key("ops", "ops-1")
    with client.websocket_connect(f"/v1/courier/stream?key={ak}") as ws:
        receive(ws)
        dispatch_round(p.services, p.container.live, DEMO_REGION_ID, MOVES_ON)
        offered = receive_until(ws, lambda m: m["type"] == "order.reassignment_offered")
        assert offered["data"]["from_courier_id"] == a and offered["data"]["to_courier_id"] == b
        move = client.get("/v1/courier/offer", headers=auth(bk)).json()["offer"]
        assert move["from_courier_id"] == a and move["gain_s"] > 300
        r = client.post(f"/v1/courier/offers/{move['id']}/accept", headers=auth(bk))
        assert r.status_code == 200, r.text
        reassigned = receive_until(ws, lambda m: m["type"] == "order.reassigned")
        withdrawn = receive_until(ws, lambda m: m["type"] == "courier.assignment_withdrawn")
    assert reassigned["subject_id"] == oid and reassigned["data"]["courier_id"] == b
    assert withdrawn["data"]["order_ids"] == [oid] and withdrawn["data"]["to_courier_id"] == b
    assert client.get("/v1/courier/me", headers=auth(ak)).json()["active_order_ids"] == []
    assert oid not in [o["id"] for o in
                       client.get("/v1/courier/orders", headers=auth(ak)).json()["orders"]]
    assert client.get(f"/v1/courier/orders/{oid}", headers=auth(ak)).status_code == 404
    assert client.get("/v1/courier/me", headers=auth(bk)).json()["active_order_ids"] == [oid]
    trail = client.get(f"/v1/ops/orders/{oid}/moves", headers=auth(ops))
    assert trail.status_code == 200, trail.text
    body = trail.json()
    assert (body["moves"], body["courier_id"], body["allow_reassignment"]) == (1, b, False)
    (step,) = body["trail"]
    assert (step["from_courier_id"], step["to_courier_id"], step["status"]) == (a, b, "accepted")
    assert step["gain_s"] == move["gain_s"]


def test_the_move_trail_of_an_unknown_order_is_404(client: TestClient,
                                                   sqlite_platform: Any) -> None:
    ops = sqlite_platform.key("ops", "ops-1")
    r = client.get("/v1/ops/orders/ord_nope/moves", headers=auth(ops))
    assert r.status_code == 404 and r.json()["code"] == "order_not_found"
    courier = sqlite_platform.key("courier", sqlite_platform.seed.courier_ids[0])
    assert client.get("/v1/ops/orders/ord_nope/moves", headers=auth(courier)).status_code == 403
