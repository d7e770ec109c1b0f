"""Observability through the app: /metrics, traces from HTTP to the consumers, access logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from lastmile.adapters.bus.outbox import IdempotentHandler, Relay
from lastmile.adapters.telemetry.logs import RequestContext, configure_logging
from lastmile.adapters.telemetry.tracing import configure_tracing
from lastmile.api.observability import RouteTemplates
from lastmile.app.events import Event
from lastmile.app.ports import UnitOfWork

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _body(api: Any) -> dict[str, Any]:
    merchant = api.platform.seed.merchant_ids[0]
    menu = api.client.get(f"/v1/consumer/merchants/{merchant}/menu", headers=api.h("consumer"))
    item = menu.json()["items"][0]["id"]
    return {"merchant_id": merchant, "items": [{"item_id": item, "quantity": 1}],
            "dropoff": {"lat": 37.445, "lng": -122.15}}


def _place(api: Any, key: str = "k-1", **headers: str) -> str:
    r = api.client.post("/v1/consumer/orders", json=_body(api),
                        headers=api.h("consumer", **{"Idempotency-Key": key}, **headers))
    assert r.status_code in (200, 201), r.text
    return str(r.json()["id"])


def _samples(api: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _recording(api: Any, name: str, fail: list[bool] | None = None) -> list[Event]:
    """A durable consumer on the app's bus (behind ``IdempotentHandler``, as real ones are)
    that records what it gets and raises while ``fail[0]`` is true."""
    seen: list[Event] = []

    def handle(event: Event, _: UnitOfWork) -> None:
        if fail and fail[0]:
            raise RuntimeError("receiver down")
        seen.append(event)

    p = api.platform
    p.container.bus.subscribe("*", IdempotentHandler(p.services, name, handle), durable=name)
    Relay(p.services, p.container.bus).drain()  # the seed's events, before the test's own
    seen.clear()
    return seen


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = configure_tracing("memory")
    assert exporter is not None
    yield exporter
    configure_tracing("off")


# --- metrics ---------------------------------------------------------------------------


def test_metrics_label_requests_by_route_template_never_by_raw_path(api: Any) -> None:
    oid = _place(api)
    before = _samples(api)
    for _ in range(2):
        assert api.client.get(f"/v1/consumer/orders/{oid}",
                              headers=api.h("consumer")).status_code == 200
    assert api.client.get("/v1/consumer/orders/ord_nope",
                          headers=api.h("consumer")).status_code == 404
    assert api.client.get("/no/such/path/abc123").status_code == 404
    after = _samples(api)

    route = "/v1/consumer/orders/{order_id}"
    key = {"method": "GET", "route": route, "tenant": "lastmile:default"}
    assert (_value(after, "lastmile_http_requests_total", **key, status_class="2xx")
            - _value(before, "lastmile_http_requests_total", **key, status_class="2xx")) == 2
    assert (_value(after, "lastmile_http_requests_total", **key, status_class="4xx")
            - _value(before, "lastmile_http_requests_total", **key, status_class="4xx")) == 1
    assert (_value(after, "lastmile_http_request_duration_seconds_count", **key)
            - _value(before, "lastmile_http_request_duration_seconds_count", **key)) == 3
    unmatched = {"method": "GET", "route": "<unmatched>", "status_class": "4xx",
                 "tenant": "none"}
    assert (_value(after, "lastmile_http_requests_total", **unmatched)
            - _value(before, "lastmile_http_requests_total", **unmatched)) == 1
    labels = {v for (_, ls) in after for _, v in ls}
    assert not any(oid in v or "abc123" in v or "ord_nope" in v for v in labels)
    assert _value(after, "lastmile_http_requests_in_flight") == 1  # the scrape itself


def test_a_path_is_named_by_its_template_even_before_routing(api: Any) -> None:
    templates = RouteTemplates(api.client.app)

    def find(path: str, method: str = "GET", kind: str = "http") -> str:
        return templates.find({"type": kind, "path": path, "method": method})

    assert find("/v1/consumer/orders/ord_1") == "/v1/consumer/orders/{order_id}"
    assert find("/v1/consumer/orders/ord_1", "DELETE") == "/v1/consumer/orders/{order_id}"
    assert find("/v1/ops/regions/reg_x/stream", kind="websocket") == (
        "/v1/ops/regions/{region_id}/stream")
    assert find("/v1/ops/regions/reg_x/stream") == "<unmatched>"  # not an HTTP route
    assert find("/wp-admin/setup.php") == "<unmatched>"


def test_metrics_are_left_out_of_the_openapi_schema(api: Any) -> None:
    assert "/metrics" not in api.client.get("/openapi.json").json()["paths"]


def test_event_lag_rises_while_queued_and_falls_when_delivered(api: Any) -> None:
    p = api.platform
    fail = [False]
    seen = _recording(api, "obs-lag", fail)  # registered, the seed delivered: it owes nothing
    relay = Relay(p.services, p.container.bus)
    fail[0] = True
    s = _samples(api)
    assert _value(s, "lastmile_event_lag_up") == 1
    assert _value(s, "lastmile_event_consumer_pending", consumer="obs-lag") == 0

    _place(api)
    s = _samples(api)
    assert _value(s, "lastmile_outbox_unsent") >= 1
    assert relay.fan_out() >= 1
    p.clock.advance(7)
    s = _samples(api)
    queued = _value(s, "lastmile_event_consumer_pending", consumer="obs-lag")
    assert queued >= 1
    assert _value(s, "lastmile_event_consumer_due", consumer="obs-lag") == queued
    assert _value(s, "lastmile_event_consumer_lag_seconds", consumer="obs-lag") >= 7
    assert _value(s, "lastmile_outbox_unsent") == 0

    relay.deliver("obs-lag")  # fails: every subject waits out its backoff
    s = _samples(api)
    assert _value(s, "lastmile_event_consumer_retrying", consumer="obs-lag") >= 1
    assert _value(s, "lastmile_event_consumer_due", consumer="obs-lag") == 0
    assert _value(s, "lastmile_event_consumer_lag_seconds", consumer="obs-lag") == 0

    fail[0] = False
    p.clock.advance(60)
    delivered_before = _value(s, "lastmile_relay_events_total", outcome="delivered")
    seen.clear()
    relay.drain()
    s = _samples(api)
    assert len(seen) == queued
    assert _value(s, "lastmile_event_consumer_pending", consumer="obs-lag") == 0
    assert _value(s, "lastmile_event_consumer_lag_seconds", consumer="obs-lag") == 0
    assert _value(s, "lastmile_relay_events_total", outcome="delivered") >= (
        delivered_before + queued)


def test_websocket_connections_are_counted_while_open(api: Any) -> None:
    gauge = {"route": "/v1/ops/regions/{region_id}/stream"}
    before = _value(_samples(api), "lastmile_websocket_connections", **gauge)
    with api.client.websocket_connect(
            f"/v1/ops/regions/reg_demo/stream?key={api.keys['ops']}") as ws:
        assert ws.receive_json()["type"] == "stream.hello"
        assert _value(_samples(api), "lastmile_websocket_connections", **gauge) == before + 1
    assert _value(_samples(api), "lastmile_websocket_connections", **gauge) == before


# --- tracing ---------------------------------------------------------------------------


def test_a_clients_trace_goes_through_the_outbox_to_the_consumer(
        api: Any, spans: InMemorySpanExporter) -> None:
    p = api.platform
    seen = _recording(api, "obs-trace")
    spans.clear()
    _place(api, traceparent=TRACEPARENT)
    Relay(p.services, p.container.bus).drain()

    assert seen and all(e.headers["traceparent"].split("-")[1] == TRACE_ID for e in seen)
    finished = spans.get_finished_spans()
    server = [s for s in finished if s.name == "POST /v1/consumer/orders"]
    assert len(server) == 1 and server[0].kind is SpanKind.SERVER
    assert format(server[0].context.trace_id, "032x") == TRACE_ID
    assert server[0].parent is not None and format(server[0].parent.span_id, "016x") == (
        "00f067aa0ba902b7")
    consumers = [s for s in finished if s.kind is SpanKind.CONSUMER
                 and s.attributes and s.attributes["messaging.consumer.group.name"] == "obs-trace"]
    assert len(consumers) == 2 * len(seen)  # the relay's delivery, the handler inside it
    assert {format(s.context.trace_id, "032x") for s in consumers} == {TRACE_ID}
    by_id = {s.context.span_id: s for s in finished}
    handler_spans = [s for s in consumers if s.parent and by_id.get(s.parent.span_id)
                     in consumers]
    assert len(handler_spans) == len(seen)


def test_a_failing_delivery_is_an_error_span_and_its_warning_has_the_trace_id(
        api: Any, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture) -> None:
    p = api.platform
    _recording(api, "obs-fails", fail=[True])  # the seed's events fail too: cleared below
    spans.clear()
    caplog.clear()
    _place(api, traceparent=TRACEPARENT)
    caplog.handler.addFilter(RequestContext())
    with caplog.at_level(logging.WARNING, "lastmile.adapters.bus.outbox"):
        Relay(p.services, p.container.bus).run_once()
    failed = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER
              and s.status.status_code is StatusCode.ERROR]
    assert failed and {f"{s.context.trace_id:032x}" for s in failed} == {TRACE_ID}
    warnings = [r for r in caplog.records if "subscriber obs-fails failed" in r.getMessage()]
    assert warnings and {getattr(r, "trace_id", None) for r in warnings} == {TRACE_ID}


def test_a_request_without_traceparent_starts_its_own_trace(
        api: Any, spans: InMemorySpanExporter) -> None:
    p = api.platform
    seen = _recording(api, "obs-root")
    _place(api)
    Relay(p.services, p.container.bus).drain()
    server = next(s for s in spans.get_finished_spans() if s.name == "POST /v1/consumer/orders")
    assert server.parent is None
    trace_id = format(server.context.trace_id, "032x")
    assert seen and all(e.headers["traceparent"].split("-")[1] == trace_id for e in seen)


def test_tracing_off_still_propagates_the_clients_trace_id(api: Any) -> None:
    configure_tracing("off")
    p = api.platform
    seen = _recording(api, "obs-off")
    _place(api, traceparent=TRACEPARENT)
    Relay(p.services, p.container.bus).drain()
    assert seen and all(e.headers["traceparent"].split("-")[1] == TRACE_ID for e in seen)


# --- logs ------------------------------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    try:
        yield stream
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)


def test_one_json_access_line_per_request_with_request_and_trace_ids(
        api: Any, log_lines: io.StringIO, spans: InMemorySpanExporter) -> None:
    r = api.client.get("/v1/consumer/orders", headers=api.h(
        "consumer", **{"X-Request-ID": "req-42", "traceparent": TRACEPARENT}))
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "req-42"
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "lastmile.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "req-42" and line["trace_id"] == TRACE_ID
    assert len(line["span_id"]) == 16
    assert (line["method"], line["route"], line["status"]) == ("GET", "/v1/consumer/orders",
                                                                200)
    assert line["level"] == "INFO" and line["duration_ms"] >= 0
    assert line["timestamp"].endswith("+00:00")


def test_an_unhandled_error_is_logged_with_the_request_id_and_counted_as_5xx(
        api: Any, log_lines: io.StringIO) -> None:
    app = api.client.app

    def boom() -> None:
        raise RuntimeError("bug")

    app.add_api_route("/obs-test/boom/{n}", boom, include_in_schema=False)
    before = _samples(api)
    r = TestClient(app, raise_server_exceptions=False).get(
        "/obs-test/boom/1", headers={"X-Request-ID": "req-500"})
    assert r.status_code == 500
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    error = next(line for line in lines if line["message"] == "unhandled error")
    assert error["request_id"] == "req-500" and "RuntimeError: bug" in error["exception"]
    access = next(line for line in lines
                  if line["logger"] == "lastmile.access" and line["request_id"] == "req-500")
    assert (access["route"], access["status"]) == ("/obs-test/boom/{n}", 500)
    assert error["trace_id"] == access["trace_id"]
    key = {"method": "GET", "route": "/obs-test/boom/{n}", "status_class": "5xx",
           "tenant": "none"}
    assert (_value(_samples(api), "lastmile_http_requests_total", **key)
            - _value(before, "lastmile_http_requests_total", **key)) == 1


def test_a_request_id_that_is_not_a_plain_token_is_replaced(api: Any) -> None:
    r = api.client.get("/healthz", headers={"X-Request-ID": "bad id\" injected"})
    assert r.headers["x-request-id"] != "bad id\" injected"
    assert len(r.headers["x-request-id"]) == 32
    generated = api.client.get("/healthz").headers["x-request-id"]
    assert generated != r.headers["x-request-id"]


def test_no_key_token_or_pin_reaches_any_log_line(api: Any, log_lines: io.StringIO) -> None:
    key = api.keys["consumer"]
    token = api.client.post("/v1/stream-tokens", headers=api.h("consumer")).json()["token"]
    app_log = logging.getLogger("lastmile.test")

    r = api.client.get("/v1/consumer/orders", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    # What careless code might log: the request's headers, a URL with a token, a body.
    app_log.info("request headers %s", dict(r.request.headers))
    app_log.warning("GET /v1/orders/stream?token=%s&key=%s", token, key)
    app_log.info("proof", extra={"body": json.dumps({"pin": "4821", "photo_ref": "p"})})
    app_log.info("connecting to postgresql://lastmile:hunter2@db:5432/prod")
    try:
        raise RuntimeError(f"auth failed for X-API-Key: {key}")
    except RuntimeError:
        app_log.exception("failed")
    assert api.client.get(f"/v1/consumer/orders?key={key}").status_code in (200, 401)

    text = log_lines.getvalue()
    lines = text.splitlines()
    assert len(lines) >= 7
    for line in lines:
        json.loads(line)
        for secret in (key, key[7:], token, "4821", "hunter2"):
            assert secret not in line
    assert "token=***" in text and "'authorization': '***'" in text
