"""Every route's priority class, in one table, and the matcher the overload guard uses.

Critical: what places an order and moves it to the door (order placement and
cancellation, Drive create/accept/cancel, courier pings, shifts, offers and
lifecycle moves, merchant confirm/ready/cancel, ops actions), plus the health
check (a load balancer that sees it shed would pull a busy process and push its
load onto the others). Normal: single-resource reads and settings changes.
Browse: nearby merchants, menus, quotes, lists, dashboard and tracking-page
reads, the API docs. A route missing here fails ``tests/unit/api/test_priorities.py``.
Unknown paths (a 404 to come) are browse.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from starlette.routing import compile_path

from lastmile.core.overload import Priority

C, N, B = Priority.CRITICAL, Priority.NORMAL, Priority.BROWSE
WS = "WS"  # the "method" of a WebSocket route in the table

ROUTE_PRIORITIES: dict[tuple[str, str], Priority] = {
    # meta and docs
    ("GET", "/healthz"): C,
    ("GET", "/metrics"): C,  # scraped most when things go wrong
    ("GET", "/readyz"): C,
    ("GET", "/openapi.json"): B, ("GET", "/docs"): B, ("GET", "/docs/oauth2-redirect"): B,
    ("GET", "/redoc"): B,
    # consumer
    ("GET", "/v1/consumer/merchants"): B,
    ("GET", "/v1/consumer/merchants/{merchant_id}/menu"): B,
    ("POST", "/v1/consumer/quotes"): B,
    ("POST", "/v1/consumer/orders"): C,
    ("GET", "/v1/consumer/orders"): B,
    ("GET", "/v1/consumer/orders/{order_id}"): N,
    ("GET", "/v1/consumer/orders/{order_id}/events"): B,
    ("POST", "/v1/consumer/orders/{order_id}/cancel"): C,
    # merchant
    ("GET", "/v1/merchant/menu"): B,
    ("POST", "/v1/merchant/menu/items"): N,
    ("PUT", "/v1/merchant/menu/items/{item_id}"): N,
    ("DELETE", "/v1/merchant/menu/items/{item_id}"): N,
    ("GET", "/v1/merchant/orders"): B,
    ("GET", "/v1/merchant/orders/{order_id}"): N,
    ("POST", "/v1/merchant/orders/{order_id}/confirm"): C,
    ("POST", "/v1/merchant/orders/{order_id}/ready"): C,
    ("POST", "/v1/merchant/orders/{order_id}/cancel"): C,
    # courier
    ("GET", "/v1/courier/me"): N,
    ("POST", "/v1/courier/shift/start"): C,
    ("POST", "/v1/courier/shift/end"): C,
    ("POST", "/v1/courier/location"): C,
    ("POST", "/v1/courier/locations"): C,
    ("GET", "/v1/courier/offer"): N,
    ("GET", "/v1/courier/route"): N,
    ("POST", "/v1/courier/offers/{offer_id}/accept"): C,
    ("POST", "/v1/courier/offers/{offer_id}/decline"): C,
    ("GET", "/v1/courier/orders"): B,
    ("GET", "/v1/courier/orders/{order_id}"): N,
    ("POST", "/v1/courier/orders/{order_id}/arrive"): C,
    ("POST", "/v1/courier/orders/{order_id}/pickup"): C,
    ("POST", "/v1/courier/orders/{order_id}/deliver"): C,
    ("POST", "/v1/courier/orders/{order_id}/unassign"): C,
    ("GET", "/v1/courier/shifts/{shift_id}/statement"): B,  # a report, not the work itself
    # ops
    ("GET", "/v1/ops/regions"): B,
    ("POST", "/v1/ops/regions"): C,
    ("GET", "/v1/ops/regions/{region_id}/live"): B,
    ("GET", "/v1/ops/regions/{region_id}/couriers"): B,
    ("GET", "/v1/ops/regions/{region_id}/couriers/nearest"): B,
    ("POST", "/v1/ops/devices/{device_id}/ban"): C,
    ("POST", "/v1/ops/couriers/{courier_id}/ban"): C,
    ("GET", "/v1/ops/couriers/{courier_id}/statements"): B,
    ("GET", "/v1/ops/tracking/stats"): B,
    ("GET", "/v1/ops/orders"): B,
    ("GET", "/v1/ops/orders/{order_id}"): N,
    ("GET", "/v1/ops/orders/{order_id}/events"): B,
    ("GET", "/v1/ops/orders/{order_id}/moves"): B,
    ("POST", "/v1/ops/orders/{order_id}/cancel"): C,
    ("GET", "/v1/ops/orders/{order_id}/payment"): N,
    ("POST", "/v1/ops/orders/{order_id}/refund"): C,
    ("POST", "/v1/payments/stripe/webhook"): C,  # money news from the processor
    ("POST", "/v1/ops/offers"): C,
    ("POST", "/v1/ops/orders/{order_id}/pin-unlock"): C,
    ("GET", "/v1/ops/dead-letters"): B,
    ("POST", "/v1/ops/dead-letters/{dead_letter_id}/replay"): C,
    ("GET", "/v1/ops/relay"): N,
    ("GET", "/v1/ops/overload"): C,  # ops must see the shedding while it happens
    ("GET", "/v1/ops/sandbox/captures"): B,
    ("GET", "/v1/ops/ledger/accounts/{account}/balance"): N,
    ("POST", "/v1/consumer/orders/{order_id}/refund-requests"): N,  # money back, not delivery
    ("GET", "/v1/consumer/refund-requests/{refund_request_id}"): N,
    ("GET", "/v1/ops/refund-requests"): B,
    ("POST", "/v1/ops/refund-requests/{refund_request_id}/decide"): C,  # an ops action
    ("GET", "/v1/ops/reports/settlement"): B,  # a report: first to shed
    ("GET", "/v1/ops/tenant"): N,
    ("GET", "/v1/ops/experiments"): B,
    ("POST", "/v1/ops/experiments"): N,  # a settings change, like the tenant's config
    ("GET", "/v1/ops/experiments/{experiment_id}"): N,
    ("POST", "/v1/ops/experiments/{experiment_id}/start"): N,
    ("POST", "/v1/ops/experiments/{experiment_id}/stop"): N,
    ("GET", "/v1/ops/experiments/{experiment_id}/observations"): B,  # reports: first to shed
    ("GET", "/v1/ops/experiments/{experiment_id}/analysis"): B,
    ("PATCH", "/v1/ops/tenant/config"): N,  # a settings change
    # live feeds (the handshake is classed; an open socket is not "in flight")
    ("POST", "/v1/stream-tokens"): N,
    (WS, "/v1/ops/regions/{region_id}/stream"): N,
    (WS, "/v1/consumer/orders/{order_id}/stream"): N,
    (WS, "/v1/courier/stream"): N,
    # ops dashboard
    ("GET", "/ops/dashboard"): B,
    ("GET", "/ops/dashboard/assets/{name}"): B,
    ("GET", "/v1/ops/regions/{region_id}/map"): B,
    ("GET", "/v1/ops/regions/{region_id}/merchants"): B,
    ("GET", "/v1/ops/regions/{region_id}/open-orders"): B,
    ("GET", "/v1/ops/regions/{region_id}/kpis"): B,
    ("GET", "/v1/ops/orders/{order_id}/timeline"): B,
    # Drive (businesses)
    ("POST", "/v1/drive/quotes"): B,
    ("POST", "/v1/drive/quotes/{external_delivery_id}/accept"): C,
    ("POST", "/v1/drive/deliveries"): C,
    ("GET", "/v1/drive/deliveries"): B,
    ("GET", "/v1/drive/deliveries/{external_delivery_id}"): N,
    ("PATCH", "/v1/drive/deliveries/{external_delivery_id}"): N,
    ("POST", "/v1/drive/deliveries/{external_delivery_id}/cancel"): C,
    ("POST", "/v1/drive/webhooks"): N,
    ("GET", "/v1/drive/webhooks"): B,
    ("DELETE", "/v1/drive/webhooks/{endpoint_id}"): N,
    ("GET", "/v1/drive/webhook-messages"): B,
    ("GET", "/v1/drive/webhook-messages/{message_id}/attempts"): B,
    ("POST", "/v1/drive/webhook-messages/{message_id}/retry"): N,
    ("GET", "/v1/drive/courier/deliveries/{order_id}"): N,
    ("POST", "/v1/drive/courier/deliveries/{order_id}/deliver"): C,
    ("POST", "/v1/drive/courier/deliveries/{order_id}/undeliverable"): C,
    # testkit (test tenants only): synthetic parties for the probe and journeys
    ("GET", "/v1/testkit/tenant"): N,
    ("POST", "/v1/testkit/consumers"): N,
    ("POST", "/v1/testkit/merchants"): N,
    ("POST", "/v1/testkit/couriers"): N,
    ("PUT", "/v1/testkit/couriers/{courier_id}/auto-accept"): N,
    ("POST", "/v1/testkit/orders"): N,
    ("POST", "/v1/testkit/reset"): N,
    # public tracking page
    ("GET", "/track/{token}.json"): B,
    ("GET", "/track/{token}"): B,
}
UNKNOWN = Priority.BROWSE


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    priority: Priority


class RouteClassifier:
    """Maps (method, path) to a class: static paths by dict, templated ones by regex,
    bucketed by method and segment count so a request tries a handful of patterns."""

    def __init__(self, table: dict[tuple[str, str], Priority] = ROUTE_PRIORITIES) -> None:
        self._static: dict[tuple[str, str], Priority] = {}
        self._templated: dict[tuple[str, int], list[_Pattern]] = {}
        for (method, template), priority in table.items():
            if "{" not in template:
                self._static[(method, template)] = priority
                continue
            regex, _, _ = compile_path(template)
            key = (method, template.count("/"))
            self._templated.setdefault(key, []).append(_Pattern(regex, priority))

    def classify(self, method: str, path: str) -> Priority:
        method = "GET" if method == "HEAD" else method
        found = self._static.get((method, path))
        if found is not None:
            return found
        for pattern in self._templated.get((method, path.count("/")), ()):
            if pattern.regex.match(path):
                return pattern.priority
        return UNKNOWN


def app_routes(routes: list[object]) -> Iterator[tuple[str, str]]:
    """(method, path) of every route of an app, WebSockets as ``WS`` (for the coverage test)."""
    from fastapi.routing import iter_route_contexts

    for ctx in iter_route_contexts(routes):  # type: ignore[arg-type]
        path = ctx.path
        if path is None:
            continue
        methods = getattr(ctx, "methods", None)
        if not methods:
            yield WS, path
            continue
        for method in sorted(methods - {"HEAD"}):
            yield method, path
