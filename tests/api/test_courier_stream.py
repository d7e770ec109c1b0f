"""The courier's own feed: offers pushed, and changes of held orders (e.g. cancelled)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_streams import auth, closed_with, place_order, receive, receive_until, start_shift

from lastmile.api.app import create_app


@pytest.fixture
def client(sqlite_platform: Any) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_platform.container)) as c:
        yield c


def _confirmed_order(client: TestClient, p: Any) -> str:
    mid = p.seed.merchant_ids[0]
    oid = place_order(client, p, p.key("consumer", p.seed.consumer_ids[0]), mid)
    r = client.post(f"/v1/merchant/orders/{oid}/confirm", json={"prep_estimate_s": 600},
                    headers=auth(p.key("merchant", mid)))
    assert r.status_code == 200
    return oid


def test_offer_is_pushed_and_a_held_order_cancellation_reaches_the_courier(
        client: TestClient, sqlite_platform: Any) -> None:
    p = sqlite_platform
    cid = p.seed.courier_ids[0]
    ck, ops = p.key("courier", cid), p.key("ops", "ops")
    start_shift(client, p, ck)
    oid = _confirmed_order(client, p)
    with client.websocket_connect(f"/v1/courier/stream?key={ck}") as ws:
        hello = receive(ws)
        assert hello["type"] == "stream.hello" and hello["offer"] is None
        r = client.post("/v1/ops/offers", json={"courier_id": cid, "order_ids": [oid]},
                        headers=auth(ops))
        made = receive_until(ws, lambda m: m["type"] == "offer.made")
        assert made["subject_id"] == r.json()["id"] and made["data"]["order_ids"] == [oid]
        client.post(f"/v1/courier/offers/{made['subject_id']}/accept", headers=auth(ck))
        receive_until(ws, lambda m: m["type"] == "order.assigned")
        client.post(f"/v1/ops/orders/{oid}/cancel", json={"reason": "consumer called"},
                    headers=auth(ops))
        cancelled = receive_until(ws, lambda m: m["type"] == "order.cancelled")
    assert cancelled["subject_id"] == oid


def test_another_couriers_offers_are_not_sent(client: TestClient, sqlite_platform: Any) -> None:
    p = sqlite_platform
    mine, other = p.seed.courier_ids[0], p.seed.courier_ids[1]
    ck, ok, ops = p.key("courier", mine), p.key("courier", other), p.key("ops", "ops")
    start_shift(client, p, ck)
    start_shift(client, p, ok)
    first, second = _confirmed_order(client, p), None
    with client.websocket_connect(f"/v1/courier/stream?key={ck}") as ws:
        receive(ws)
        client.post("/v1/ops/offers", json={"courier_id": other, "order_ids": [first]},
                    headers=auth(ops))
        client.post(f"/v1/ops/orders/{first}/cancel", json={"reason": "x"}, headers=auth(ops))
        second = place_order(client, p, p.key("consumer", p.seed.consumer_ids[1]),
                             p.seed.merchant_ids[0])
        client.post(f"/v1/merchant/orders/{second}/confirm", json={"prep_estimate_s": 600},
                    headers=auth(p.key("merchant", p.seed.merchant_ids[0])))
        client.post("/v1/ops/offers", json={"courier_id": mine, "order_ids": [second]},
                    headers=auth(ops))
        first_message = receive(ws)
    assert first_message["type"] == "offer.made"
    assert first_message["data"]["courier_id"] == mine


def test_courier_stream_refuses_other_roles(client: TestClient, sqlite_platform: Any) -> None:
    ops = sqlite_platform.key("ops", "ops")
    assert closed_with(client.websocket_connect(f"/v1/courier/stream?key={ops}")).code == 4403
