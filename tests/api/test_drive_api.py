"""The Drive API and the public tracking page through the app."""

from __future__ import annotations

from datetime import UTC, datetime


def body(**overrides):  # type: ignore[no-untyped-def]
    b = {"external_delivery_id": "ord-1001", "dropoff": {"lat": 37.44, "lng": -122.14},
         "dropoff_contact": {"first_name": "Ada", "last_name": "Lovelace",
                             "phone": "+1 555 0100"},
         "order_value_minor": 2500, "tip_minor": 300,
         "proof_required": {"photo": True}}
    b.update(overrides)
    return b


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def test_create_replay_and_conflict(api):
    h = api.h("merchant")
    r = api.client.post("/v1/drive/deliveries", json=body(), headers=h)
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["status"] == "confirmed" and d["tracking_url"].startswith("/track/trk_")
    again = api.client.post("/v1/drive/deliveries", json=body(), headers=h)
    assert again.status_code == 200 and again.json()["order_id"] == d["order_id"]
    clash = api.client.post("/v1/drive/deliveries", json=body(tip_minor=1), headers=h)
    assert clash.status_code == 409 and clash.json()["code"] == "external_delivery_id_reused"


def test_quote_then_accept(api):
    h = api.h("merchant")
    q = api.client.post("/v1/drive/quotes", json=body(), headers=h)
    assert q.status_code == 201 and q.json()["fee"]["amount_minor"] > 0
    r = api.client.post("/v1/drive/quotes/ord-1001/accept", json={"tip_minor": 400}, headers=h)
    assert r.status_code == 201 and r.json()["tip"]["amount_minor"] == 400


def test_the_quote_and_the_delivery_agree_on_the_fee_the_business_pays(api):
    h = api.h("merchant")
    q = api.client.post("/v1/drive/quotes", json=body(order_value_minor=900_000), headers=h)
    quote = q.json()
    prices = {k: v["amount_minor"] for k, v in quote["prices"].items()}
    fee = quote["fee"]["amount_minor"]
    assert fee == prices["delivery_fee"] and prices["total"] == fee + 300
    assert prices["service_fee"] == prices["tax"] == prices["subtotal"] == 0
    d = api.client.post("/v1/drive/quotes/ord-1001/accept", json={}, headers=h).json()
    assert d["fee"]["amount_minor"] == fee and d["order_value"]["amount_minor"] == 900_000
    assert d["order"]["prices"]["total"]["amount_minor"] == fee + 300


def test_bad_input_names_field_and_rule(api):
    h = api.h("merchant")
    now = api.platform.clock.now()
    r = api.client.post("/v1/drive/deliveries", headers=h, json=body(
        dropoff_window={"start": iso(now + 600), "end": iso(now + 60)}))
    assert (r.status_code, r.json()["field"]) == (422, "dropoff_window.start")
    r = api.client.post("/v1/drive/deliveries", headers=h, json=body(
        dropoff_window={"start": iso(now - 7200), "end": iso(now - 3600)}))
    assert (r.status_code, r.json()["code"]) == (422, "window_in_past")
    r = api.client.post("/v1/drive/deliveries", headers=h, json=body(
        undeliverable_action="leave_at_door", proof_required={"pin": True}))
    assert r.json()["code"] == "incompatible_undeliverable_action"
    r = api.client.post("/v1/drive/deliveries", headers=h, json=body(order_value_minor=-1))
    assert (r.status_code, r.json()["field"]) == (422, "order_value_minor")
    r = api.client.post("/v1/drive/deliveries", headers=api.h("consumer"), json=body())
    assert r.status_code == 403


def test_list_pages_and_get_update_cancel(api):
    h = api.h("merchant")
    for i in range(3):
        api.client.post("/v1/drive/deliveries", json=body(external_delivery_id=f"x{i}"),
                        headers=h)
        api.platform.clock.advance(1)
    page = api.client.get("/v1/drive/deliveries", params={"limit": 2}, headers=h).json()
    nxt = api.client.get("/v1/drive/deliveries", headers=h,
                         params={"limit": 2, "page_token": page["next_page_token"]}).json()
    got = [d["external_delivery_id"] for d in page["deliveries"] + nxt["deliveries"]]
    assert got == ["x2", "x1", "x0"] and nxt["next_page_token"] is None
    bad = api.client.get("/v1/drive/deliveries", params={"page_token": "!!"}, headers=h)
    assert bad.status_code == 422
    r = api.client.patch("/v1/drive/deliveries/x1", json={"tip_minor": 900,
                                                           "dropoff_instructions": "Gate 4"},
                         headers=h)
    assert r.json()["tip"]["amount_minor"] == 900
    r = api.client.post("/v1/drive/deliveries/x1/cancel", json={"reason": "dup"}, headers=h)
    assert r.json()["status"] == "cancelled"
    other = api.client.get("/v1/drive/deliveries/x1", headers=api.h("merchant2"))
    assert other.status_code == 404


def test_public_tracking_shows_status_without_personal_data(api):
    d = api.client.post("/v1/drive/deliveries", json=body(), headers=api.h("merchant")).json()
    page = api.client.get(d["tracking_url"])
    assert page.status_code == 200 and "Ada" in page.text and "Lovelace" not in page.text
    j = api.client.get(d["tracking_url"] + ".json").json()
    assert j["status"] == "confirmed" and j["recipient_first_name"] == "Ada"
    assert "555" not in str(j) and j["courier"] is None
    assert api.client.get("/track/trk_0000deadbeef.json").status_code == 404


def test_courier_deliver_through_drive_requires_the_photo(api):
    p = api.platform
    d = api.client.post("/v1/drive/deliveries", json=body(), headers=api.h("merchant")).json()
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
    from drive_helpers import to_dropoff

    to_dropoff(p, d["order_id"])
    url = f"/v1/drive/courier/deliveries/{d['order_id']}"
    assert api.client.get(url, headers=api.h("courier")).json()["proof_required"] == ["photo"]
    r = api.client.post(url + "/deliver", json={"note": "left"}, headers=api.h("courier"))
    assert (r.status_code, r.json()["code"]) == (422, "proof_missing")
    r = api.client.post(url + "/deliver", json={"photo_ref": "p.jpg"}, headers=api.h("courier"))
    assert r.json()["status"] == "delivered"
    j = api.client.get(d["tracking_url"] + ".json").json()
    assert j["status"] == "delivered" and j["eta"] is None


def test_webhook_endpoints_show_the_secret_once(api):
    h = api.h("merchant")
    r = api.client.post("/v1/drive/webhooks", headers=h, json={
        "url": "https://example.test/hook", "event_types": ["delivery.delivered"]})
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
    listed = api.client.get("/v1/drive/webhooks", headers=h).json()["endpoints"]
    assert "secret" not in listed[0]
    bad = api.client.post("/v1/drive/webhooks", headers=h, json={
        "url": "ftp://x.test/hook", "event_types": []})
    assert (bad.status_code, bad.json()["field"]) == (422, "url")
    bad = api.client.post("/v1/drive/webhooks", headers=h, json={
        "url": "https://x.test/hook", "event_types": ["nope"]})
    assert bad.json()["code"] == "unknown_event_type"
    dead = api.client.get("/v1/drive/webhook-messages", params={"status": "dead"}, headers=h)
    assert dead.json() == {"messages": []}
    assert api.client.delete(f"/v1/drive/webhooks/{r.json()['id']}", headers=h).status_code == 204


def test_a_forged_page_token_is_a_422_never_a_500(api):
    import base64
    import json

    h = api.h("merchant")
    for raw in ({"c": int("1" + "0" * 330), "id": "x"}, {"c": "nan", "id": "x"},
                {"c": "inf", "id": "x"}, [1], "x"):
        token = base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")
        r = api.client.get("/v1/drive/deliveries", params={"page_token": token}, headers=h)
        assert (r.status_code, r.json()["field"]) == (422, "page_token"), (raw, r.text)


def test_tracking_shows_one_first_name_even_when_the_business_sent_a_full_name(api):
    contact = {"first_name": "Ada Lovelace-Byron", "phone": "+1 555 0100"}
    d = api.client.post("/v1/drive/deliveries", json=body(dropoff_contact=contact),
                        headers=api.h("merchant")).json()
    assert api.client.get(d["tracking_url"] + ".json").json()["recipient_first_name"] == "Ada"
    assert "Lovelace" not in api.client.get(d["tracking_url"]).text
