"""ETAs over HTTP (issue 12): quotes and orders carry the engine's point and 80% interval
beside the window they always had, and the window is that interval."""

from __future__ import annotations

from datetime import datetime

from test_orders_api import _body


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_a_quote_carries_the_point_and_the_p10_p90_interval_of_its_window(api):
    r = api.client.post("/v1/consumer/quotes", json=_body(api), headers=api.h("consumer"))
    assert r.status_code == 200, r.text
    eta = r.json()["eta"]
    assert 0 < eta["p10_s"] <= eta["point_s"] <= eta["p90_s"]
    assert eta["model"].startswith("heuristic-")
    # The window is the interval: low - expected - high spans p10 - point - p90.
    span = _epoch(eta["high"]) - _epoch(eta["low"])
    assert abs(span - (eta["p90_s"] - eta["p10_s"])) <= 2
    assert abs(_epoch(eta["expected"]) - _epoch(eta["low"])
               - (eta["point_s"] - eta["p10_s"])) <= 2


def test_a_placed_order_states_its_window_as_seconds_from_placement(api):
    r = api.client.post("/v1/consumer/orders", json=_body(api),
                        headers=api.h("consumer", **{"Idempotency-Key": "eta-1"}))
    assert r.status_code == 201, r.text
    order = r.json()
    eta, placed = order["eta"], _epoch(order["placed_at"])
    assert 0 < eta["p10_s"] <= eta["point_s"] <= eta["p90_s"]
    assert abs(_epoch(eta["expected"]) - placed - eta["point_s"]) <= 1
    assert abs(_epoch(eta["high"]) - placed - eta["p90_s"]) <= 1
