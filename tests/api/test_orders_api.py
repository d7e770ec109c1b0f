"""The HTTP API end to end: auth, each side's view, errors as problem+json."""

from __future__ import annotations

import pytest


def _body(api, qty=1):
    merchant = api.platform.seed.merchant_ids[0]
    menu = api.client.get(f"/v1/consumer/merchants/{merchant}/menu", headers=api.h("consumer"))
    assert menu.status_code == 200
    item = menu.json()["items"][0]["id"]
    return {"merchant_id": merchant, "items": [{"item_id": item, "quantity": qty}],
            "dropoff": {"lat": 37.445, "lng": -122.15}, "tip_minor": 200}


def _place(api, key="k-1", who="consumer"):
    r = api.client.post("/v1/consumer/orders", json=_body(api),
                        headers=api.h(who, **{"Idempotency-Key": key}))
    assert r.status_code in (200, 201), r.text
    return r


def _assigned(api):
    oid = _place(api).json()["id"]
    c = api.client
    assert c.post(f"/v1/merchant/orders/{oid}/confirm", json={"prep_estimate_s": 600},
                  headers=api.h("merchant")).status_code == 200
    assert c.post("/v1/courier/shift/start", json={"device_id": "p1", "duration_s": 7200},
                  headers=api.h("courier")).status_code == 200
    courier = api.platform.seed.courier_ids[0]
    r = c.post("/v1/ops/offers", json={"courier_id": courier, "order_ids": [oid]},
               headers=api.h("ops"))
    assert r.status_code == 201, r.text
    offer = c.get("/v1/courier/offer", headers=api.h("courier")).json()["offer"]
    assert c.post(f"/v1/courier/offers/{offer['id']}/accept",
                  headers=api.h("courier")).status_code == 200
    return oid


def test_missing_key_is_401_problem_json(api):
    r = api.client.get("/v1/consumer/orders")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "missing_api_key"


def test_unknown_key_is_401(api):
    r = api.client.get("/v1/consumer/orders", headers={"Authorization": "Bearer lm_nope"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"


def test_wrong_role_is_403(api):
    r = api.client.get("/v1/merchant/orders", headers=api.h("consumer"))
    assert r.status_code == 403 and r.json()["code"] == "wrong_role"


def test_quote_gives_breakdown_and_window(api):
    r = api.client.post("/v1/consumer/quotes", json=_body(api), headers=api.h("consumer"))
    assert r.status_code == 200
    q = r.json()
    parts = ["subtotal", "delivery_fee", "service_fee", "small_order_fee", "tax", "tip"]
    assert q["prices"]["total"]["amount_minor"] == sum(
        q["prices"][k]["amount_minor"] for k in parts)
    assert q["eta"]["low"] <= q["eta"]["expected"] <= q["eta"]["high"]


def test_place_order_requires_an_idempotency_key(api):
    r = api.client.post("/v1/consumer/orders", json=_body(api), headers=api.h("consumer"))
    assert r.status_code == 422 and r.json()["field"] == "idempotency-key"


def test_replay_returns_the_same_order_never_a_second(api):
    first = _place(api, "same")
    second = _place(api, "same")
    assert first.status_code == 201 and second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    orders = api.client.get("/v1/consumer/orders", headers=api.h("consumer")).json()["orders"]
    assert len(orders) == 1


def test_validation_error_names_field_and_rule(api):
    body = _body(api)
    body["items"][0]["quantity"] = 0
    r = api.client.post("/v1/consumer/orders", json=body,
                        headers=api.h("consumer", **{"Idempotency-Key": "v"}))
    assert r.status_code == 422
    err = r.json()
    assert err["field"] == "items.0.quantity" and err["errors"][0]["rule"] == "greater_than_equal"


def test_unknown_item_is_422_naming_items(api):
    body = _body(api)
    body["items"][0]["item_id"] = "itm_missing"
    r = api.client.post("/v1/consumer/orders", json=body,
                        headers=api.h("consumer", **{"Idempotency-Key": "u"}))
    assert r.status_code == 422 and r.json()["code"] == "unknown_item"


def test_illegal_transition_is_409_with_current_state(api):
    oid = _place(api).json()["id"]
    r = api.client.post(f"/v1/merchant/orders/{oid}/ready", headers=api.h("merchant"))
    assert r.status_code == 409
    assert r.json()["current_state"] == "placed" and r.json()["code"] == "illegal_transition"


def test_unknown_order_is_404(api):
    r = api.client.get("/v1/ops/orders/ord_nope", headers=api.h("ops"))
    assert r.status_code == 404 and r.json()["code"] == "order_not_found"


@pytest.mark.parametrize("who,path", [
    ("consumer2", "/v1/consumer/orders/{oid}"),
    ("consumer2", "/v1/consumer/orders/{oid}/events"),
    ("merchant2", "/v1/merchant/orders/{oid}"),
    ("courier2", "/v1/courier/orders/{oid}"),
])
def test_other_sides_cannot_read_an_order(api, who, path):
    oid = _assigned(api)
    r = api.client.get(path.format(oid=oid), headers=api.h(who))
    assert r.status_code in (403, 404)


@pytest.mark.parametrize("who,path,body", [
    ("consumer2", "/v1/consumer/orders/{oid}/cancel", {"reason": "x"}),
    ("merchant2", "/v1/merchant/orders/{oid}/ready", None),
    ("courier2", "/v1/courier/orders/{oid}/arrive", None),
    ("courier2", "/v1/courier/orders/{oid}/deliver", {"note": "x"}),
])
def test_other_sides_cannot_move_an_order(api, who, path, body):
    oid = _assigned(api)
    r = api.client.post(path.format(oid=oid), json=body, headers=api.h(who))
    assert r.status_code in (403, 404)
    status = api.client.get(f"/v1/ops/orders/{oid}", headers=api.h("ops")).json()["status"]
    assert status == "assigned"


def test_courier_delivers_with_proof_and_consumer_sees_history(api):
    oid = _assigned(api)
    c = api.client
    assert c.post(f"/v1/merchant/orders/{oid}/ready", headers=api.h("merchant")).status_code == 200
    for step in ("arrive", "pickup", "arrive"):
        assert c.post(f"/v1/courier/orders/{oid}/{step}", headers=api.h("courier")).status_code == 200
    r = c.post(f"/v1/courier/orders/{oid}/deliver", json={"photo_ref": "img/1.jpg"},
               headers=api.h("courier"))
    assert r.status_code == 200 and r.json()["status"] == "delivered"
    events = c.get(f"/v1/consumer/orders/{oid}/events", headers=api.h("consumer")).json()["events"]
    assert events[-1]["type"] == "order.delivered"
    assert events[-1]["actor"]["kind"] == "courier"


def test_deliver_without_proof_is_422(api):
    oid = _assigned(api)
    r = api.client.post(f"/v1/courier/orders/{oid}/deliver", json={}, headers=api.h("courier"))
    assert r.status_code in (409, 422)


def test_merchant_manages_menu(api):
    c = api.client
    r = c.post("/v1/merchant/menu/items", json={"name": "Soup", "price_minor": 650},
               headers=api.h("merchant"))
    assert r.status_code == 201
    item = r.json()["id"]
    r = c.put(f"/v1/merchant/menu/items/{item}", json={"name": "Soup", "price_minor": 700,
              "available": False}, headers=api.h("merchant"))
    assert r.json()["price"]["amount_minor"] == 700
    merchant = api.platform.seed.merchant_ids[0]
    public = c.get(f"/v1/consumer/merchants/{merchant}/menu", headers=api.h("consumer")).json()
    assert item not in [i["id"] for i in public["items"]]
    assert c.delete(f"/v1/merchant/menu/items/{item}", headers=api.h("merchant")).status_code == 204
    gone = c.delete(f"/v1/merchant/menu/items/{item}", headers=api.h("merchant"))
    assert gone.status_code == 404 and gone.json()["code"] == "item_not_found"


def test_merchants_near_pages_with_tokens(api):
    c, seen, token = api.client, [], None
    for _ in range(10):
        params = {"lat": 37.44, "lng": -122.14, "radius_m": 20000, "limit": 4}
        if token:
            params["page_token"] = token
        page = c.get("/v1/consumer/merchants", params=params, headers=api.h("consumer")).json()
        seen += [m["id"] for m in page["merchants"]]
        token = page["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(api.platform.seed.merchant_ids)


def test_garbage_page_token_is_422(api):
    r = api.client.get("/v1/consumer/merchants", params={"lat": 37.44, "lng": -122.14,
                       "page_token": "!!!"}, headers=api.h("consumer"))
    assert r.status_code == 422 and r.json()["field"] == "page_token"


def test_ops_sees_live_counts(api):
    _place(api)
    region = api.platform.seed.region.id
    r = api.client.get(f"/v1/ops/regions/{region}/live", headers=api.h("ops")).json()
    assert r["orders"] == {"placed": 1}


def test_ping_from_second_device_does_not_move_courier(api):
    c = api.client
    c.post("/v1/courier/shift/start", json={"device_id": "main", "duration_s": 7200},
           headers=api.h("courier"))
    now = api.platform.clock.now()
    ok = c.post("/v1/courier/location", json={"device_id": "main", "lat": 37.44, "lng": -122.14,
                "accuracy_m": 8, "client_ts": now}, headers=api.h("courier")).json()
    assert ok["accepted"] == 1
    other = c.post("/v1/courier/location", json={"device_id": "old-phone", "lat": 37.45,
                   "lng": -122.15, "accuracy_m": 8, "client_ts": now + 1},
                   headers=api.h("courier")).json()
    assert other["accepted"] == 0 and other["pings"][0]["reason"] == "not_main_device"
    region = api.platform.seed.region.id
    live = c.get(f"/v1/ops/regions/{region}/couriers", headers=api.h("ops")).json()["couriers"]
    assert [(x["lat"], x["lng"]) for x in live] == [(37.44, -122.14)]


def test_bad_ping_is_422_and_counted(api):
    c = api.client
    c.post("/v1/courier/shift/start", json={"device_id": "main", "duration_s": 7200},
           headers=api.h("courier"))
    r = c.post("/v1/courier/location", json={"device_id": "main", "lat": 99, "lng": 0,
               "accuracy_m": 8, "client_ts": api.platform.clock.now()}, headers=api.h("courier"))
    assert r.status_code == 422 and r.json()["field"] == "pings[0].lat"
    stats = c.get("/v1/ops/tracking/stats", headers=api.h("ops")).json()["counts"]
    assert stats["rejected_invalid"] == 1


def test_a_refused_ping_batch_leaves_the_tracking_state_unchanged(api):
    c = api.client
    c.post("/v1/courier/shift/start", json={"device_id": "main", "duration_s": 7200},
           headers=api.h("courier"))
    now = api.platform.clock.now()
    good = {"device_id": "main", "lat": 37.44, "lng": -122.14, "accuracy_m": 8, "client_ts": now}
    polar = {**good, "lat": 85.5, "client_ts": now + 1}  # a valid WGS84 latitude, not storable
    r = c.post("/v1/courier/locations", json={"pings": [good, polar]}, headers=api.h("courier"))
    assert r.status_code == 422 and r.json()["field"] == "pings[1].lat"
    again = c.post("/v1/courier/locations", json={"pings": [good]}, headers=api.h("courier"))
    assert again.json()["pings"][0]["reason"] == "accepted"  # not a duplicate: nothing stored


def test_ops_bans_a_device_and_it_cannot_start_a_shift(api):
    c = api.client
    r = c.post("/v1/ops/devices/old-phone/ban", json={"reason": "ex-courier"}, headers=api.h("ops"))
    assert r.status_code == 200 and r.json()["already_banned"] is False
    r = c.post("/v1/courier/shift/start", json={"device_id": "old-phone", "duration_s": 3600},
               headers=api.h("courier"))
    assert r.status_code == 403 and r.json()["code"] == "device_banned"
    r = c.post("/v1/ops/devices/old-phone/ban", json={"reason": "x"}, headers=api.h("courier"))
    assert r.status_code == 403


def test_ops_finds_the_nearest_live_couriers_by_radius(api):
    c = api.client
    now = api.platform.clock.now()
    for who, lat in (("courier", 37.4400), ("courier2", 37.4500)):
        c.post("/v1/courier/shift/start", json={"device_id": "main", "duration_s": 7200},
               headers=api.h(who))
        c.post("/v1/courier/location", json={"device_id": "main", "lat": lat, "lng": -122.14,
               "accuracy_m": 8, "client_ts": now}, headers=api.h(who))
    region = api.platform.seed.region.id
    url = f"/v1/ops/regions/{region}/couriers/nearest"
    near = c.get(url, params={"lat": 37.4401, "lng": -122.14, "radius_m": 500},
                 headers=api.h("ops")).json()["couriers"]
    assert [x["courier_id"] for x in near] == [api.platform.seed.courier_ids[0]]
    both = c.get(url, params={"lat": 37.4401, "lng": -122.14, "radius_m": 5000},
                 headers=api.h("ops")).json()["couriers"]
    assert [x["courier_id"] for x in both] == list(api.platform.seed.courier_ids[:2])
    assert both[0]["distance_m"] < both[1]["distance_m"]
    busy = c.get(url, params={"lat": 37.44, "lng": -122.14, "status": "to_pickup"},
                 headers=api.h("ops")).json()["couriers"]
    assert busy == []
    bad = c.get(url, params={"lat": 37.44, "lng": -122.14, "status": "flying"},
                headers=api.h("ops"))
    assert bad.status_code == 422 and bad.json()["field"] == "status.0"


def test_live_status_enum_of_the_api_matches_the_live_store():
    from lastmile.api.schemas import CourierLiveStatus
    from lastmile.app.live import COURIER_STATUSES

    assert tuple(CourierLiveStatus) == COURIER_STATUSES


def test_a_body_that_is_not_json_is_422_naming_the_body(api):
    r = api.client.post("/v1/consumer/quotes", content=b"{not json",
                        headers=api.h("consumer", **{"Content-Type": "application/json"}))
    assert r.status_code == 422
    assert r.json()["field"] == "body" and r.json()["errors"][0]["rule"] == "json_invalid"
