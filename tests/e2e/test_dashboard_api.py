"""The dashboard's JSON endpoints and page, through the app (no browser)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lastmile.api.app import create_app
from lastmile.app.dashboard import local_midnight
from lastmile.core.stats import quantile

Platform = Any  # tests/conftest.py Platform: container, clock, seed, key(role, id)


@pytest.fixture
def client(sqlite_platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_platform.container, start_workers=False)) as c:
        c.get("/healthz")  # the first request builds the routes (tests/api/conftest.py warm_up)
        yield c


def h(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def ok(r: Any) -> Any:
    assert r.status_code in (200, 201), r.text
    return r.json()


def place(client: TestClient, p: Platform, n: int) -> dict[str, Any]:
    ck = p.key("consumer", p.seed.consumer_ids[0])
    merchant = p.seed.merchant_ids[0]
    item = ok(client.get(f"/v1/consumer/merchants/{merchant}/menu", headers=h(ck)))["items"][0]
    body = {"merchant_id": merchant, "items": [{"item_id": item["id"], "quantity": 1}],
            "dropoff": {"lat": 37.45, "lng": -122.15}}
    return ok(client.post("/v1/consumer/orders", json=body, headers=h(ck, **{"Idempotency-Key": f"k{n}"})))  # type: ignore[no-any-return]


def deliver(client: TestClient, p: Platform, order_id: str, *, after_s: float) -> None:
    mk, kk = p.key("merchant", p.seed.merchant_ids[0]), p.key("courier", p.seed.courier_ids[0])
    ops = p.key("ops", "ops")
    ok(client.post(f"/v1/merchant/orders/{order_id}/confirm", json={"prep_estimate_s": 600},
                   headers=h(mk)))
    offer = ok(client.post("/v1/ops/offers", json={"courier_id": p.seed.courier_ids[0],
                                                   "order_ids": [order_id]}, headers=h(ops)))
    ok(client.post(f"/v1/courier/offers/{offer['id']}/accept", headers=h(kk)))
    ok(client.post(f"/v1/merchant/orders/{order_id}/ready", headers=h(mk)))
    for step in ("arrive", "pickup", "arrive"):
        ok(client.post(f"/v1/courier/orders/{order_id}/{step}", headers=h(kk)))
    p.clock.advance(after_s)
    ok(client.post(f"/v1/courier/orders/{order_id}/deliver", json={"note": "door"},
                   headers=h(kk)))


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_kpis_count_open_orders_couriers_on_shift_click_to_door_and_lateness(
        client: TestClient, sqlite_platform: Platform) -> None:
    p = sqlite_platform
    ops = p.key("ops", "ops")
    kk = p.key("courier", p.seed.courier_ids[0])
    ok(client.post("/v1/courier/shift/start", json={"device_id": "d", "duration_s": 14400},
                   headers=h(kk)))
    p.clock.advance(600)
    on_time, late, still_open = place(client, p, 1), place(client, p, 2), place(client, p, 3)
    deliver(client, p, on_time["id"], after_s=600)
    deliver(client, p, late["id"], after_s=epoch(late["eta"]["high"]) - p.clock.now() + 60)
    # The third order was quoted behind the other two (one courier), so wait past its own
    # high bound too.
    p.clock.set(max(p.clock.now(), epoch(still_open["eta"]["high"]) + 1))
    k = ok(client.get("/v1/ops/regions/reg_demo/kpis?window_s=7200&step_s=300",
                      headers=h(ops)))
    assert (k["open_orders"], k["active_couriers"], k["delivered"]) == (1, 1, 2)
    assert (k["late"], k["late_share"]) == (1, 0.5)
    assert k["open_past_eta"] == 1  # the third order waited past its high bound too
    orders = {o["id"]: o for o in [on_time, late]}
    c2d = sorted(ok(client.get(f"/v1/ops/orders/{i}", headers=h(ops)))["delivered_at"] for i in orders)
    assert k["click_to_door_s"]["mean"] == pytest.approx(
        sum(epoch(d) - epoch(orders[i]["placed_at"]) for i, d in zip(orders, c2d, strict=True)) / 2,
        abs=1)
    series = k["series"]
    assert len(series) == 25 and series[-1]["at"] == k["at"]
    assert series[0]["at"] < epoch(on_time["placed_at"])  # the window starts before the orders
    assert (series[0]["open_orders"], series[-1]["open_orders"]) == (0, 1)
    assert series[-1]["active_couriers"] == 1
    assert still_open["id"] not in orders


def test_series_remember_orders_that_were_open_then_delivered(
        client: TestClient, sqlite_platform: Platform) -> None:
    p = sqlite_platform
    ok(client.post("/v1/courier/shift/start", json={"device_id": "d", "duration_s": 14400},
                   headers=h(p.key("courier", p.seed.courier_ids[0]))))
    order = place(client, p, 1)
    p.clock.advance(60)
    deliver(client, p, order["id"], after_s=600)
    p.clock.advance(600)
    k = ok(client.get("/v1/ops/regions/reg_demo/kpis?window_s=1800&step_s=60",
                      headers=h(p.key("ops", "ops"))))
    assert max(pt["open_orders"] for pt in k["series"]) == 1
    assert k["series"][-1]["open_orders"] == 0


def test_open_orders_come_with_positions_age_and_lateness(client: TestClient,
                                                          sqlite_platform: Platform) -> None:
    p = sqlite_platform
    order = place(client, p, 1)
    p.clock.advance(90)
    found = ok(client.get("/v1/ops/regions/reg_demo/open-orders", headers=h(p.key("ops", "ops"))))
    (o,) = found["orders"]
    assert (o["id"], o["status"], o["age_s"], o["late"]) == (order["id"], "placed", 90, False)
    assert o["dropoff"] == {"lat": 37.45, "lng": -122.15}


def test_region_map_has_the_outline_bounding_box_and_merchants(client: TestClient,
                                                                sqlite_platform: Platform) -> None:
    m = ok(client.get("/v1/ops/regions/reg_demo/map", headers=h(sqlite_platform.key("ops", "o"))))
    assert len(m["region"]["polygon"]) == 4
    assert m["bbox"]["min_lat"] < m["bbox"]["max_lat"] and m["bbox"]["min_lng"] < m["bbox"]["max_lng"]
    assert {x["id"] for x in m["merchants"]} == set(sqlite_platform.seed.merchant_ids)
    for x in m["merchants"]:
        assert m["bbox"]["min_lat"] <= x["lat"] <= m["bbox"]["max_lat"]


def test_order_timeline_gives_seconds_between_steps(client: TestClient,
                                                    sqlite_platform: Platform) -> None:
    p = sqlite_platform
    order = place(client, p, 1)
    p.clock.advance(120)
    ok(client.post(f"/v1/merchant/orders/{order['id']}/confirm", json={"prep_estimate_s": 600},
                   headers=h(p.key("merchant", p.seed.merchant_ids[0]))))
    t = ok(client.get(f"/v1/ops/orders/{order['id']}/timeline", headers=h(p.key("ops", "o"))))
    assert [s["type"] for s in t["steps"]] == ["order.placed", "order.confirmed"]
    assert [s["since_placed_s"] for s in t["steps"]] == [0, 120]


@pytest.mark.parametrize("path", ["/v1/ops/regions/reg_demo/kpis", "/v1/ops/regions/reg_demo/map",
                                  "/v1/ops/regions/reg_demo/open-orders",
                                  "/v1/ops/regions/reg_demo/merchants"])
def test_dashboard_data_is_for_ops_only(client: TestClient, sqlite_platform: Platform,
                                        path: str) -> None:
    assert client.get(path).status_code == 401
    consumer = sqlite_platform.key("consumer", sqlite_platform.seed.consumer_ids[0])
    assert client.get(path, headers=h(consumer)).json()["code"] == "wrong_role"


@pytest.mark.parametrize(("query", "field"), [("window_s=10", "window_s"), ("step_s=0", "step_s"),
                                              ("window_s=86400&step_s=1", "step_s")])
def test_bad_kpi_windows_get_a_422_naming_the_field(client: TestClient, sqlite_platform: Platform,
                                                    query: str, field: str) -> None:
    r = client.get(f"/v1/ops/regions/reg_demo/kpis?{query}", headers=h(sqlite_platform.key("ops", "o")))
    assert r.status_code == 422
    assert r.json()["field"] == field


def test_an_unknown_region_is_a_404(client: TestClient, sqlite_platform: Platform) -> None:
    for path in ("kpis", "map", "open-orders"):
        r = client.get(f"/v1/ops/regions/reg_nope/{path}", headers=h(sqlite_platform.key("ops", "o")))
        assert (r.status_code, r.json()["code"]) == (404, "region_not_found")


def test_the_page_is_served_without_caching_or_referrer_and_assets_are_whitelisted(
        client: TestClient) -> None:
    r = client.get("/ops/dashboard?region=reg_demo&key=whatever")
    assert r.status_code == 200 and "<canvas id=\"map\"" in r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/ops/dashboard/assets/dashboard.js").status_code == 200
    assert client.get("/ops/dashboard/assets/dashboard.css").headers["content-type"].startswith("text/css")
    assert client.get("/ops/dashboard/assets/..%2Fstreams.py").status_code == 404
    assert client.get("/ops/dashboard?region=bad%20id").status_code == 422


def test_quantiles_interpolate_like_numpy() -> None:
    assert quantile([], 0.5) is None
    assert quantile([10.0, 20.0, 30.0, 40.0], 0.5) == 25.0
    assert quantile([10.0, 20.0, 30.0, 40.0], 0.9) == pytest.approx(37.0)


def test_so_far_starts_at_local_midnight_in_the_regions_time_zone() -> None:
    noon_utc = 1_767_268_800.0  # 2026-01-01T12:00:00Z = 04:00 in Los Angeles
    assert local_midnight(noon_utc, "America/Los_Angeles") == 1_767_254_400.0  # 08:00Z
    assert local_midnight(noon_utc, "Not/AZone") == 1_767_225_600.0  # falls back to UTC
