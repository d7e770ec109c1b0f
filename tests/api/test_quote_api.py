"""The consumer quote over HTTP (issue 10): breakdown lines with reasons, a quote token that
holds the price, 409 once it expired, 422 when it is not ours."""

from __future__ import annotations

from test_orders_api import _body

from lastmile.core.pricing import PricingPolicy


def _quote(api, body):
    r = api.client.post("/v1/consumer/quotes", json=body, headers=api.h("consumer"))
    assert r.status_code == 200, r.text
    return r.json()


def _order(api, body, key):
    return api.client.post("/v1/consumer/orders", json=body,
                           headers=api.h("consumer", **{"Idempotency-Key": key}))


def test_quote_carries_its_fee_lines_reasons_and_a_token(api):
    q = _quote(api, _body(api))
    assert {"prices", "eta", "distance_m", "surge_multiplier"} <= set(q)  # unchanged fields
    kinds = [line["kind"] for line in q["fee_breakdown"]]
    assert kinds == ["base", "distance", "small_order", "surge", "cap"]
    assert all(line["reason"].startswith(("delivery:", "distance:", "small order:",
                                          "busy nearby:", "fee cap:"))
               for line in q["fee_breakdown"])
    lines_sum = sum(line["amount"]["amount_minor"] for line in q["fee_breakdown"])
    assert lines_sum == (q["prices"]["delivery_fee"]["amount_minor"]
                         + q["prices"]["small_order_fee"]["amount_minor"])
    assert "delivery: +1.99" in q["reasons"]
    assert q["quote_token"] and q["valid_until"]


def test_order_with_the_token_pays_the_quote_and_an_expired_one_is_409(api):
    body = _body(api)
    q = _quote(api, body)
    r = _order(api, {**body, "quote_token": q["quote_token"]}, "with-token")
    assert r.status_code == 201, r.text
    assert r.json()["prices"] == q["prices"]
    late = _quote(api, body)
    api.platform.clock.advance(PricingPolicy().quote_ttl_s + 1)
    r = _order(api, {**body, "quote_token": late["quote_token"]}, "late")
    assert r.status_code == 409 and r.json()["code"] == "quote_expired"
    assert r.headers["content-type"].startswith("application/problem+json")


def test_a_forged_token_is_422(api):
    body = _body(api)
    r = _order(api, {**body, "quote_token": "abc.def"}, "forged")
    assert r.status_code == 422 and r.json()["code"] == "invalid_quote_token"
