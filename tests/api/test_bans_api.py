"""A courier ban through the API: the courier's keys stop working at once."""


def test_a_banned_courier_is_401_on_the_next_request(api):
    c = api.client
    assert c.post("/v1/courier/shift/start", json={"device_id": "main", "duration_s": 7200},
                  headers=api.h("courier")).status_code == 200
    cid = api.platform.seed.courier_ids[0]
    r = c.post(f"/v1/ops/couriers/{cid}/ban", json={"reason": "fraud"}, headers=api.h("ops"))
    assert r.status_code == 200
    body = r.json()
    assert body["device_ids"] == ["main"] and body["shift_ended"] is True
    assert body["revoked_keys"] == 1 and body["position_removed"] is True
    for method, path in (("get", "/v1/courier/me"), ("post", "/v1/courier/shift/end")):
        denied = c.request(method, path, headers=api.h("courier"))
        assert denied.status_code == 401 and denied.json()["code"] == "invalid_api_key"
    assert c.get("/v1/courier/me", headers=api.h("courier2")).status_code == 200


def test_a_banned_courier_leaves_the_live_map(api):
    c = api.client
    c.post("/v1/courier/shift/start", json={"device_id": "main", "duration_s": 7200},
           headers=api.h("courier"))
    c.post("/v1/courier/location", json={"device_id": "main", "lat": 37.44, "lng": -122.14,
           "accuracy_m": 8, "client_ts": api.platform.clock.now()}, headers=api.h("courier"))
    region = api.platform.seed.region.id
    url = f"/v1/ops/regions/{region}/couriers"
    assert len(c.get(url, headers=api.h("ops")).json()["couriers"]) == 1
    cid = api.platform.seed.courier_ids[0]
    c.post(f"/v1/ops/couriers/{cid}/ban", json={"reason": "fraud"}, headers=api.h("ops"))
    assert c.get(url, headers=api.h("ops")).json()["couriers"] == []
    near = c.get(f"{url}/nearest", params={"lat": 37.44, "lng": -122.14},
                 headers=api.h("ops")).json()["couriers"]
    assert near == []
