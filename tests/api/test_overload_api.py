"""Overload protection through the real app: every route classed, 429 problem+json with
Retry-After, and the ops view of classes and breakers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from lastmile.api.app import create_app
from lastmile.api.priorities import ROUTE_PRIORITIES, RouteClassifier, app_routes
from lastmile.core.overload import Priority


def test_every_route_of_the_app_has_a_priority_class_and_the_table_has_no_stale_entry(api):
    routes = set(app_routes(api.client.app.routes))
    assert routes, "no routes found: the route walker is broken"
    missing = sorted(routes - set(ROUTE_PRIORITIES))
    assert not missing, f"routes without a priority class in api/priorities.py: {missing}"
    stale = sorted(set(ROUTE_PRIORITIES) - routes)
    assert not stale, f"api/priorities.py classes routes the app does not have: {stale}"


def test_the_classifier_agrees_with_the_table_on_concrete_paths():
    classify = RouteClassifier().classify
    assert classify("POST", "/v1/consumer/orders") is Priority.CRITICAL
    assert classify("GET", "/v1/consumer/orders") is Priority.BROWSE
    assert classify("GET", "/v1/consumer/orders/ord_1") is Priority.NORMAL
    assert classify("GET", "/v1/consumer/merchants/mer_1/menu") is Priority.BROWSE
    assert classify("POST", "/v1/courier/orders/ord_1/pickup") is Priority.CRITICAL
    assert classify("HEAD", "/healthz") is Priority.CRITICAL
    assert classify("GET", "/nowhere/at/all") is Priority.BROWSE


@pytest.fixture
def limited(sqlite_platform, api) -> Iterator[tuple[TestClient, dict[str, str]]]:
    container = sqlite_platform.container
    container.settings = replace(container.settings, rate_limit_browse="3/minute")
    with TestClient(create_app(container, start_workers=False)) as client:
        yield client, api.h("consumer")


def test_browse_over_the_clients_limit_is_429_problem_json_with_retry_after(limited):
    client, consumer = limited
    codes = [client.get("/v1/consumer/merchants", headers=consumer,
                        params={"lat": 37.77, "lng": -122.42}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get("/v1/consumer/merchants", headers=consumer,
                         params={"lat": 37.77, "lng": -122.42})
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    body = refused.json()
    assert (body["status"], body["code"], body["priority"], body["limit"]) == (
        429, "rate_limited", "browse", "3 per 1 minute")
    # critical work from the same client is in another class: not refused
    assert client.get("/healthz").status_code == 200


def test_ops_see_priorities_limits_and_breakers(api):
    container = api.platform.container
    container.breakers.get("webhook:hooks.example:443")
    seen = api.client.get("/v1/ops/overload", headers=api.h("ops"))
    assert seen.status_code == 200, seen.text
    body = seen.json()
    admission = body["admission"]
    assert admission["policy"]["in_flight_ceiling"] == {"critical": 256, "normal": 64,
                                                        "browse": 32}
    assert admission["rate_limits"]["per_client"]["browse"] == "20 per 1 second"
    assert admission["in_flight"]["critical"] == 1  # this very request
    assert admission["shedding"] == [] and admission["admitted"]["critical"] >= 1
    assert body["breakers"] == [{"name": "webhook:hooks.example:443", "state": "closed",
                                 "failures": 0, "fail_max": 5, "reset_s": 30.0}]
    assert "POST /v1/consumer/orders" in body["routes"]["critical"]
    assert "GET /v1/consumer/merchants" in body["routes"]["browse"]
    assert api.client.get("/v1/ops/overload", headers=api.h("consumer")).status_code == 403
