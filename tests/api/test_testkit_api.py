"""/v1/testkit through the app: ops keys acting for a test tenant only."""

from __future__ import annotations

from lastmile.app.auth import issue_api_key
from lastmile.app.tenants import ensure_tenant

SANDBOX = "doortest:sandbox"


def _ops_for_sandbox(api) -> dict[str, str]:  # type: ignore[no-untyped-def]
    ensure_tenant(api.platform.services, SANDBOX)
    _, key = issue_api_key(api.platform.services, role="ops", subject_id="ops-doortest",
                           acts_for=("doortest:*",))
    return {"Authorization": f"Bearer {key}", "X-Lastmile-Tenant": SANDBOX}


def test_a_journey_of_test_parties_over_http(api):
    h = _ops_for_sandbox(api)
    c = api.client
    tenant = c.get("/v1/testkit/tenant", headers=h).json()
    assert tenant == {"tenant": SANDBOX, "kind": "test", "test": True,
                      "templates": ["burgers", "pizza", "salads", "sushi"]}
    m = c.post("/v1/testkit/merchants", headers=h,
               json={"template": "pizza", "lat": 37.45, "lng": -122.15, "with_key": True})
    assert m.status_code == 201, m.text
    assert [i["name"] for i in m.json()["items"]][0] == "Margherita"
    con = c.post("/v1/testkit/consumers", headers=h, json={"with_key": True}).json()
    cou = c.post("/v1/testkit/couriers", headers=h,
                 json={"lat": 37.45, "lng": -122.15, "vehicle": "car"}).json()
    assert cou["status"] == "idle" and cou["vehicle"] == "car" and "api_key" not in cou
    live = api.platform.container.live.get(cou["id"])
    assert live is not None and live.lat == 37.45  # the next dispatch round sees it
    o = c.post("/v1/testkit/orders", headers=h, json={
        "consumer_id": con["id"], "merchant_id": m.json()["id"], "require_pin": True})
    assert o.status_code == 201 and o.json()["order"]["status"] == "placed"
    assert o.json()["order"]["dropoff_pin"]
    # The consumer's key sees the order; the merchant's key confirms it.
    mine = c.get(f"/v1/consumer/orders/{o.json()['order']['id']}",
                 headers={"Authorization": f"Bearer {con['api_key']}"})
    assert mine.status_code == 200
    flag = c.put(f"/v1/testkit/couriers/{cou['id']}/auto-accept", headers=h,
                 json={"auto_accept": True})
    assert flag.json() == {"courier_id": cou["id"], "auto_accept": True}
    reset = c.post("/v1/testkit/reset", headers=h).json()
    assert reset["cancelled_order_ids"] == [o.json()["order"]["id"]]
    assert reset["ended_courier_ids"] == [cou["id"]]


def test_a_live_tenant_is_refused_with_403(api):
    ops = api.h("ops")  # an ops key of the default (live) tenant
    assert api.client.get("/v1/testkit/tenant", headers=ops).json()["test"] is False
    for path, body in (("/v1/testkit/consumers", {}), ("/v1/testkit/merchants", {}),
                       ("/v1/testkit/couriers", {}), ("/v1/testkit/reset", None)):
        r = api.client.post(path, headers=ops, json=body)
        assert (r.status_code, r.json()["code"]) == (403, "not_a_test_tenant"), path


def test_testkit_routes_are_for_ops_and_bad_input_names_the_field(api):
    h = _ops_for_sandbox(api)
    r = api.client.post("/v1/testkit/consumers", headers=api.h("consumer"), json={})
    assert r.status_code == 403
    r = api.client.post("/v1/testkit/merchants", headers=h, json={"template": "ramen"})
    assert (r.status_code, r.json()["field"]) == (422, "template")
    r = api.client.post("/v1/testkit/couriers", headers=h, json={"lat": 95, "lng": 0})
    assert (r.status_code, r.json()["field"]) == (422, "lat")
    r = api.client.put("/v1/testkit/couriers/cou_nope/auto-accept", headers=h,
                       json={"auto_accept": True})
    assert (r.status_code, r.json()["code"]) == (404, "courier_not_found")
    # The live tenant's consumer and merchant do not exist in the test tenant.
    r = api.client.post("/v1/testkit/orders", headers=h, json={
        "consumer_id": api.platform.seed.consumer_ids[0],
        "merchant_id": api.platform.seed.merchant_ids[0]})
    assert (r.status_code, r.json()["code"]) == (404, "consumer_not_found")
