"""WebSocket feeds through the app: ops region stream and the consumer's order stream."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from lastmile.api.app import create_app

Platform = Any  # tests/conftest.py Platform: container, clock, seed, key(role, id)

TIMEOUT_S = 10.0
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)


def receive(ws: Any) -> Any:
    """ws.receive_json() that fails the test instead of hanging when nothing arrives."""
    try:
        return _pool.submit(ws.receive_json).result(timeout=TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"no WebSocket message within {TIMEOUT_S}s")


def receive_until(ws: Any, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    for _ in range(50):
        message = receive(ws)
        if wanted(message):
            return message  # type: ignore[no-any-return]
    pytest.fail("the awaited message never came")


def closed_with(ws_cm: Any) -> WebSocketDisconnect:
    with pytest.raises(WebSocketDisconnect) as info, ws_cm as ws:
        receive(ws)
    return info.value


@pytest.fixture
def client(sqlite_platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_platform.container)) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def start_shift(client: TestClient, p: Platform, courier_key: str) -> None:
    r = client.post("/v1/courier/shift/start", json={"device_id": "d1", "duration_s": 7200},
                    headers=auth(courier_key))
    assert r.status_code == 200, r.text


def ping(client: TestClient, p: Platform, courier_key: str, lat: float, lng: float) -> None:
    p.clock.advance(5)
    r = client.post("/v1/courier/location", headers=auth(courier_key), json={
        "device_id": "d1", "lat": lat, "lng": lng, "accuracy_m": 10,
        "client_ts": p.clock.now()})
    assert r.status_code == 200, r.text


def place_order(client: TestClient, p: Platform, consumer_key: str, merchant_id: str) -> str:
    menu = client.get(f"/v1/consumer/merchants/{merchant_id}/menu", headers=auth(consumer_key))
    item = menu.json()["items"][0]["id"]
    r = client.post("/v1/consumer/orders", headers={**auth(consumer_key), "Idempotency-Key": "o1"},
                    json={"merchant_id": merchant_id, "items": [{"item_id": item, "quantity": 1}],
                          "dropoff": {"lat": 37.45, "lng": -122.15}})
    assert r.status_code in (200, 201), r.text
    return r.json()["id"]  # type: ignore[no-any-return]


def test_ops_stream_sends_a_courier_move_after_a_ping(client: TestClient,
                                                       sqlite_platform: Platform) -> None:
    p = sqlite_platform
    ops, courier = p.key("ops", "ops"), p.seed.courier_ids[0]
    ck = p.key("courier", courier)
    start_shift(client, p, ck)
    with client.websocket_connect(f"/v1/ops/regions/reg_demo/stream?key={ops}") as ws:
        assert receive(ws)["type"] == "stream.hello"
        ping(client, p, ck, 37.4419, -122.1430)
        moved = receive_until(ws, lambda m: m["type"] == "courier.moved")
    assert moved["subject_id"] == courier
    assert moved["region_id"] == "reg_demo"
    assert (moved["data"]["lat"], moved["data"]["lng"]) == (37.4419, -122.1430)
    assert moved["data"]["status"] == "idle"


def test_ops_stream_relays_order_and_shift_events_of_the_region(
        client: TestClient, sqlite_platform: Platform) -> None:
    p = sqlite_platform
    ops = p.key("ops", "ops")
    with client.websocket_connect("/v1/ops/regions/reg_demo/stream",
                                  headers={"X-API-Key": ops}) as ws:
        receive(ws)
        start_shift(client, p, p.key("courier", p.seed.courier_ids[1]))
        shift = receive_until(ws, lambda m: m["type"] == "courier.shift_started")
        place_order(client, p, p.key("consumer", p.seed.consumer_ids[0]), p.seed.merchant_ids[0])
        placed = receive_until(ws, lambda m: m["type"] == "order.placed")
    assert shift["subject_id"] == p.seed.courier_ids[1]
    assert placed["data"]["to_status"] == "placed"


def test_ops_stream_accepts_the_key_as_a_bearer_subprotocol(client: TestClient,
                                                             sqlite_platform: Platform) -> None:
    ops = sqlite_platform.key("ops", "ops")
    with client.websocket_connect("/v1/ops/regions/reg_demo/stream",
                                  subprotocols=[f"bearer.{ops}"]) as ws:
        assert receive(ws)["type"] == "stream.hello"
        assert ws.accepted_subprotocol == f"bearer.{ops}"


def test_ops_stream_closes_4401_without_a_valid_key(client: TestClient) -> None:
    assert closed_with(client.websocket_connect("/v1/ops/regions/reg_demo/stream")).code == 4401
    bad = closed_with(client.websocket_connect("/v1/ops/regions/reg_demo/stream?key=nope"))
    assert bad.code == 4401
    assert "unknown" in bad.reason


def test_ops_stream_closes_4403_for_a_non_ops_key(client: TestClient,
                                                  sqlite_platform: Platform) -> None:
    ck = sqlite_platform.key("courier", sqlite_platform.seed.courier_ids[0])
    refused = closed_with(client.websocket_connect(f"/v1/ops/regions/reg_demo/stream?key={ck}"))
    assert refused.code == 4403
    assert "ops" in refused.reason


def test_ops_stream_closes_4404_for_an_unknown_region(client: TestClient,
                                                     sqlite_platform: Platform) -> None:
    ops = sqlite_platform.key("ops", "ops")
    refused = closed_with(client.websocket_connect(f"/v1/ops/regions/reg_nope/stream?key={ops}"))
    assert refused.code == 4404


def test_consumer_receives_its_order_updates_courier_position_and_eta(
        client: TestClient, sqlite_platform: Platform) -> None:
    p = sqlite_platform
    consumer, merchant, courier = p.seed.consumer_ids[0], p.seed.merchant_ids[0], p.seed.courier_ids[0]
    ck, mk, kk, ops = (p.key("consumer", consumer), p.key("merchant", merchant),
                       p.key("courier", courier), p.key("ops", "ops"))
    order_id = place_order(client, p, ck, merchant)
    start_shift(client, p, kk)
    with client.websocket_connect(f"/v1/consumer/orders/{order_id}/stream?key={ck}") as ws:
        hello = receive(ws)
        assert (hello["type"], hello["status"]) == ("stream.hello", "placed")
        client.post(f"/v1/merchant/orders/{order_id}/confirm", json={"prep_estimate_s": 600},
                    headers=auth(mk))
        confirmed = receive_until(ws, lambda m: m["type"] == "order.confirmed")
        r = client.post("/v1/ops/offers", json={"courier_id": courier, "order_ids": [order_id]},
                        headers=auth(ops))
        offer_id = r.json()["id"]
        client.post(f"/v1/courier/offers/{offer_id}/accept", headers=auth(kk))
        assigned = receive_until(ws, lambda m: m.get("status") == "assigned")
        ping(client, p, kk, 37.44, -122.14)
        position = receive_until(ws, lambda m: m["type"] == "courier.position")
    assert confirmed["status"] == "confirmed"
    assert assigned["order_id"] == order_id
    assert (position["lat"], position["lng"]) == (37.44, -122.14)
    assert position["eta"]["remaining_m"] > 0
    assert position["eta"]["eta_at"] > p.clock.now()
    eta = position["eta"]  # the ETA engine's live estimate and its 80% interval
    assert eta["p10_at"] <= eta["eta_at"] <= eta["p90_at"]
    assert eta["model"].startswith("heuristic-")
    assert "active_order_ids" not in position  # other consumers' orders never leak


def test_consumer_stream_closes_4404_for_someone_elses_order(
        client: TestClient, sqlite_platform: Platform) -> None:
    p = sqlite_platform
    order_id = place_order(client, p, p.key("consumer", p.seed.consumer_ids[0]),
                           p.seed.merchant_ids[0])
    other = p.key("consumer", p.seed.consumer_ids[1])
    refused = closed_with(client.websocket_connect(
        f"/v1/consumer/orders/{order_id}/stream?key={other}"))
    assert refused.code == 4404
    missing = closed_with(client.websocket_connect(
        f"/v1/consumer/orders/ord_nope/stream?key={other}"))
    assert missing.code == 4404


def test_consumer_stream_closes_4403_for_an_ops_key(client: TestClient,
                                                    sqlite_platform: Platform) -> None:
    p = sqlite_platform
    order_id = place_order(client, p, p.key("consumer", p.seed.consumer_ids[0]),
                           p.seed.merchant_ids[0])
    refused = closed_with(client.websocket_connect(
        f"/v1/consumer/orders/{order_id}/stream?key={p.key('ops', 'ops')}"))
    assert refused.code == 4403


def test_consumer_stream_of_a_cancelled_order_finishes_with_code_1000(
        client: TestClient, sqlite_platform: Platform) -> None:
    p = sqlite_platform
    ck = p.key("consumer", p.seed.consumer_ids[0])
    order_id = place_order(client, p, ck, p.seed.merchant_ids[0])
    with client.websocket_connect(f"/v1/consumer/orders/{order_id}/stream?key={ck}") as ws:
        receive(ws)
        r = client.post(f"/v1/ops/orders/{order_id}/cancel", json={"reason": "test"},
                        headers=auth(p.key("ops", "ops")))
        assert r.status_code == 200, r.text
        cancelled = receive_until(ws, lambda m: m["type"] == "order.cancelled")
        assert receive(ws)["type"] == "stream.finished"
        with pytest.raises(WebSocketDisconnect) as info:
            receive(ws)
    assert cancelled["status"] == "cancelled"
    assert info.value.code == 1000
