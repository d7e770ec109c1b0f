"""Sharp edges of the HTTP surface (issue 7, item 6), through the app."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from lastmile.sim.seed import DEMO_CENTER


def unsigned(raw: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


def test_an_unsigned_page_token_for_drive_listings_is_refused(api):
    r = api.client.get("/v1/drive/deliveries", headers=api.h("merchant"),
                       params={"page_token": unsigned({"c": 0, "id": "x"})})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_page_token")


def test_an_unsigned_page_token_for_merchants_near_is_refused(api):
    params = {"lat": DEMO_CENTER.lat, "lng": DEMO_CENTER.lng, "radius_m": 5000, "limit": 1}
    first = api.client.get("/v1/consumer/merchants", params=params, headers=api.h("consumer"))
    assert first.status_code == 200, first.text
    token = first.json()["next_page_token"]
    assert token
    follow = api.client.get("/v1/consumer/merchants", params={**params, "page_token": token},
                            headers=api.h("consumer"))
    assert follow.status_code == 200
    body = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    forged = unsigned({**body, "d": 0})
    r = api.client.get("/v1/consumer/merchants", params={**params, "page_token": forged},
                       headers=api.h("consumer"))
    assert (r.status_code, r.json()["code"]) == (422, "invalid_page_token")


# --- strict types: numbers and booleans are never coerced --------------------------------

def order_body(api, **overrides):  # type: ignore[no-untyped-def]
    merchant = api.platform.seed.merchant_ids[0]
    menu = api.client.get(f"/v1/consumer/merchants/{merchant}/menu", headers=api.h("consumer"))
    item = menu.json()["items"][0]["id"]
    body = {"merchant_id": merchant, "items": [{"item_id": item, "quantity": 1}],
            "dropoff": {"lat": DEMO_CENTER.lat, "lng": DEMO_CENTER.lng + 0.002}}
    body.update(overrides)
    return body


def place(api, body, key="k1"):  # type: ignore[no-untyped-def]
    return api.client.post("/v1/consumer/orders", json=body,
                           headers=api.h("consumer", **{"Idempotency-Key": key}))


@pytest.mark.parametrize(("change", "field"), [
    (lambda b: b["items"][0].update(quantity=True), "items.0.quantity"),
    (lambda b: b["items"][0].update(quantity="2"), "items.0.quantity"),
    (lambda b: b["items"][0].update(quantity=2.0), "items.0.quantity"),
    (lambda b: b["dropoff"].update(lat="37.44"), "dropoff.lat"),
    (lambda b: b["dropoff"].update(lat=True), "dropoff.lat"),
    (lambda b: b.update(require_pin=1), "require_pin"),
    (lambda b: b.update(require_pin="true"), "require_pin"),
    (lambda b: b.update(tip_minor="100"), "tip_minor"),
])
def test_an_order_with_a_coerced_number_or_boolean_is_refused(api, change, field):  # type: ignore[no-untyped-def]
    body = order_body(api)
    change(body)
    r = place(api, body)
    assert (r.status_code, r.json()["field"]) == (422, field), r.text


def test_a_json_integer_is_still_a_valid_coordinate(api):
    body = order_body(api, dropoff={"lat": 37, "lng": -122})
    r = place(api, body)
    assert r.status_code != 422 or r.json()["field"] not in ("dropoff.lat", "dropoff.lng"), r.text


def start_shift(api):  # type: ignore[no-untyped-def]
    r = api.client.post("/v1/courier/shift/start", json={"device_id": "d1", "duration_s": 3600},
                        headers=api.h("courier"))
    assert r.status_code in (200, 201), r.text


@pytest.mark.parametrize(("field", "value"), [
    ("lat", True), ("lat", "37.44"), ("lng", False), ("accuracy_m", "8"), ("client_ts", True),
    ("speed_mps", True),
])
def test_a_ping_with_a_boolean_or_string_number_is_refused_not_classified(api, field, value):  # type: ignore[no-untyped-def]
    start_shift(api)
    ping = {"device_id": "d1", "lat": DEMO_CENTER.lat, "lng": DEMO_CENTER.lng, "accuracy_m": 8,
            "client_ts": api.platform.clock.now(), field: value}
    for path, body, where in (("/v1/courier/location", ping, field),
                              ("/v1/courier/locations", {"pings": [ping]}, f"pings.0.{field}")):
        r = api.client.post(path, json=body, headers=api.h("courier"))
        assert (r.status_code, r.json()["field"]) == (422, where), r.text


def test_drive_bodies_still_take_enums_and_datetimes_as_json_strings(api):
    now = api.platform.clock.now()

    def at(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).isoformat()

    body = {"external_delivery_id": "strict-1", "dropoff": {"lat": 37.44, "lng": -122.14},
            "dropoff_contact": {"first_name": "Ada"}, "order_value_minor": 2500,
            "undeliverable_action": "dispose", "contactless": False,
            "dropoff_window": {"start": at(now + 3600), "end": at(now + 7200)}}
    r = api.client.post("/v1/drive/deliveries", json=body, headers=api.h("merchant"))
    assert r.status_code == 201, r.text
    assert r.json()["undeliverable_action"] == "dispose"
    bad = api.client.post("/v1/drive/deliveries", headers=api.h("merchant"),
                          json={**body, "external_delivery_id": "strict-2", "contactless": "yes"})
    assert (bad.status_code, bad.json()["field"]) == (422, "contactless")


# --- control characters in free text -----------------------------------------------------

@pytest.mark.parametrize("evil", ["a\x00b", "a\x1b[31mred", "abc\u202eevil", "x\x85y", "a\u2066b",
                                  "a\x7fb", "line\nbreak"])
def test_control_characters_in_a_name_are_refused_naming_the_field(api, evil):  # type: ignore[no-untyped-def]
    merchant = api.platform.seed.merchant_ids[0]
    r = api.client.post("/v1/merchant/menu/items", json={"name": evil, "price_minor": 100},
                        headers=api.h("merchant"))
    assert (r.status_code, r.json()["field"]) == (422, "name"), r.text
    assert r.json()["errors"][0]["rule"] == "control_character" and merchant


def test_control_characters_in_reasons_notes_and_contacts_are_refused(api):
    h = api.h("merchant")
    base = {"external_delivery_id": "cc-1", "dropoff": {"lat": 37.44, "lng": -122.14},
            "dropoff_contact": {"first_name": "Ada"}, "order_value_minor": 2500}
    for body, field in (
        ({**base, "dropoff_contact": {"first_name": "A\u202eda"}}, "dropoff_contact.first_name"),
        ({**base, "dropoff_contact": {"first_name": "Ada", "email": "a\x00@b.co"}},
         "dropoff_contact.email"),
        ({**base, "dropoff_instructions": "ring\x1b[2J"}, "dropoff_instructions"),
    ):
        r = api.client.post("/v1/drive/deliveries", json=body, headers=h)
        assert (r.status_code, r.json()["field"]) == (422, field), r.text
    ok = api.client.post("/v1/drive/deliveries", headers=h,
                         json={**base, "dropoff_instructions": "Ring twice.\nThen wait."})
    assert ok.status_code == 201, ok.text
    r = api.client.post("/v1/drive/deliveries/cc-1/cancel", json={"reason": "no\x00"}, headers=h)
    assert (r.status_code, r.json()["field"]) == (422, "reason")
    r = api.client.post("/v1/ops/devices/dev%00x/ban", json={"reason": "fraud"},
                        headers=api.h("ops"))
    assert (r.status_code, r.json()["field"]) == (422, "device_id"), r.text


# --- webhook URLs to private networks are refused when registered -------------------------

def test_registering_a_webhook_to_a_private_address_is_a_422(api):
    for url in ("http://127.0.0.1:9000/h", "http://169.254.169.254/latest", "http://localhost/h"):
        r = api.client.post("/v1/drive/webhooks", headers=api.h("merchant"),
                            json={"url": url, "event_types": []})
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "private_url", "url")


def test_private_webhook_addresses_are_allowed_when_the_setting_says_so(tmp_path):
    from fastapi.testclient import TestClient

    from lastmile.api.app import create_app
    from lastmile.app.auth import issue_api_key
    from lastmile.bootstrap import build
    from lastmile.settings import Settings
    from lastmile.sim.seed import seed_demo

    container = build(Settings.from_env({"LASTMILE_DATA_DIR": str(tmp_path),
                                         "LASTMILE_WEBHOOKS_ALLOW_PRIVATE": "1"}))
    seed = seed_demo(container.services, merchants=1, consumers=1, couriers=1)
    key = issue_api_key(container.services, role="merchant", subject_id=seed.merchant_ids[0])[1]
    with TestClient(create_app(container, start_workers=False)) as client:
        r = client.post("/v1/drive/webhooks", headers={"Authorization": f"Bearer {key}"},
                        json={"url": "http://127.0.0.1:9000/h"})
    container.close()
    assert r.status_code == 201, r.text


# --- every HTML page carries a Content-Security-Policy ------------------------------------

def test_the_public_tracking_page_sends_a_nonce_based_content_security_policy(api):
    d = api.client.post("/v1/drive/deliveries", headers=api.h("merchant"), json={
        "external_delivery_id": "csp-1", "dropoff": {"lat": 37.44, "lng": -122.14},
        "dropoff_contact": {"first_name": "Ada"}, "order_value_minor": 2500}).json()
    r = api.client.get(d["tracking_url"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    nonce = csp.split("script-src 'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in r.text and f'<style nonce="{nonce}">' in r.text
    assert r.headers["referrer-policy"] == "no-referrer"
    again = api.client.get(d["tracking_url"]).headers["content-security-policy"]
    assert again != csp  # a fresh nonce per response


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/ops/dashboard"])
def test_every_other_html_page_carries_a_content_security_policy(api, path):
    r = api.client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


# --- drop-off PIN guessing is limited per order ------------------------------------------

def walk_to_dropoff(api, order_id):  # type: ignore[no-untyped-def]
    courier = api.platform.seed.courier_ids[0]

    def ok(path, who, body=None):  # type: ignore[no-untyped-def]
        r = api.client.post(path, json=body, headers=api.h(who))
        assert r.status_code in (200, 201), f"{path}: {r.text}"
        return r.json()

    ok(f"/v1/merchant/orders/{order_id}/confirm", "merchant", {"prep_estimate_s": 300})
    ok("/v1/courier/shift/start", "courier", {"device_id": "d1", "duration_s": 3600})
    offer = ok("/v1/ops/offers", "ops", {"courier_id": courier, "order_ids": [order_id]})
    ok(f"/v1/courier/offers/{offer['id']}/accept", "courier")
    ok(f"/v1/merchant/orders/{order_id}/ready", "merchant")
    for step in ("arrive", "pickup", "arrive"):
        ok(f"/v1/courier/orders/{order_id}/{step}", "courier")


def test_a_marketplace_pin_is_locked_after_five_wrong_tries_and_ops_can_unlock_it(api):
    placed = place(api, order_body(api, require_pin=True))
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    pin = api.client.get(f"/v1/consumer/orders/{order_id}", headers=api.h("consumer")).json()[
        "dropoff_pin"]
    walk_to_dropoff(api, order_id)
    path = f"/v1/courier/orders/{order_id}/deliver"
    answers = [api.client.post(path, json={"pin": f"{(int(pin) + n) % 10_000:04d}"},
                               headers=api.h("courier")) for n in range(1, 7)]
    assert [r.status_code for r in answers] == [422, 422, 422, 422, 409, 409]
    assert [r.json()["code"] for r in answers] == ["pin_mismatch"] * 4 + ["pin_locked"] * 2
    assert answers[0].json()["attempts_left"] == 4
    right = api.client.post(path, json={"pin": pin}, headers=api.h("courier"))
    assert (right.status_code, right.json()["code"]) == (409, "pin_locked")
    events = api.client.get(f"/v1/ops/orders/{order_id}/events", headers=api.h("ops")).json()
    assert "order.pin_locked" in [e["type"] for e in events["events"]]
    unlocked = api.client.post(f"/v1/ops/orders/{order_id}/pin-unlock", headers=api.h("ops"))
    assert unlocked.json() == {"order_id": order_id, "failures_cleared": 5}
    done = api.client.post(path, json={"pin": pin}, headers=api.h("courier"))
    assert (done.status_code, done.json()["status"]) == (200, "delivered")
