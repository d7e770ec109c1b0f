"""Sharp edges of the HTTP surface (issue 7, item 6), through the app."""

from __future__ import annotations

import base64
import json

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
