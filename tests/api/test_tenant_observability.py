"""Observability carries the tenant (issue 9): the access line and every log line, the
HTTP metrics' bounded ``tenant`` label, and the ``lastmile.tenant`` attribute of server and
consumer spans."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from lastmile.adapters.bus.outbox import IdempotentHandler, Relay
from lastmile.adapters.telemetry import metrics
from lastmile.adapters.telemetry.logs import configure_logging
from lastmile.adapters.telemetry.tracing import configure_tracing
from lastmile.app.auth import issue_api_key
from lastmile.app.events import Event
from lastmile.app.ports import UnitOfWork
from lastmile.app.tenancy import acting_as
from lastmile.app.tenants import create_tenant

ACME = "acme:live"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = configure_tracing("memory")
    assert exporter is not None
    yield exporter
    configure_tracing("off")


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


def _ops_key(api: Any, tenant: str, acts_for: tuple[str, ...] = ()) -> str:
    create_tenant(api.platform.services, tenant)
    with acting_as(tenant):
        return issue_api_key(api.platform.services, role="ops", subject_id="ops-1",
                             acts_for=acts_for)[1]


def _requests(api: Any, **labels: str) -> float:
    text = api.client.get("/metrics").text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "lastmile_http_requests_total"
               and all(s.labels.get(k) == v for k, v in labels.items()))


def _access(log_lines: io.StringIO, request_id: str) -> dict[str, Any]:
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    return next(line for line in lines
                if line["logger"] == "lastmile.access" and line["request_id"] == request_id)


def test_a_request_is_logged_counted_and_traced_as_its_keys_tenant(
        api: Any, log_lines: io.StringIO, spans: InMemorySpanExporter) -> None:
    key = _ops_key(api, ACME)
    route = {"route": "/v1/ops/regions", "method": "GET"}
    before = _requests(api, **route, tenant=ACME)
    r = api.client.get("/v1/ops/regions", headers={"Authorization": f"Bearer {key}",
                                                   "X-Request-ID": "req-acme"})
    assert r.status_code == 200 and r.json() == {"regions": []}  # acme has none: scoped
    assert _access(log_lines, "req-acme")["tenant"] == ACME
    assert _requests(api, **route, tenant=ACME) == before + 1
    server = [s for s in spans.get_finished_spans() if s.name == "GET /v1/ops/regions"]
    assert server[-1].kind is SpanKind.SERVER
    assert server[-1].attributes and server[-1].attributes["lastmile.tenant"] == ACME


def test_a_request_of_the_default_tenant_and_one_without_a_key(
        api: Any, log_lines: io.StringIO) -> None:
    assert api.client.get("/v1/ops/regions", headers=api.h("ops", **{
        "X-Request-ID": "req-default"})).status_code == 200
    assert api.client.get("/v1/ops/regions", headers={"X-Request-ID": "req-nokey"}
                          ).status_code == 401
    assert _access(log_lines, "req-default")["tenant"] == "lastmile:default"
    assert _access(log_lines, "req-nokey")["tenant"] is None
    assert _requests(api, route="/v1/ops/regions", status_class="4xx", tenant="none") >= 1


def test_the_tenant_label_is_bounded_to_tenants_that_exist(
        api: Any, log_lines: io.StringIO) -> None:
    """An ops key allowed to act for doortest:* can name any such tenant in a header; one
    that does not exist is labelled "other", so headers cannot mint new series."""
    key = _ops_key(api, "ops:central", acts_for=("doortest:*",))
    for i in range(3):
        r = api.client.get("/v1/ops/regions", headers={
            "Authorization": f"Bearer {key}", "X-Lastmile-Tenant": f"doortest:made-up-{i}",
            "X-Request-ID": f"req-made-up-{i}"})
        assert r.status_code == 200
    assert _access(log_lines, "req-made-up-0")["tenant"] == "doortest:made-up-0"  # the log tells
    text = api.client.get("/metrics").text
    labels = {s.labels.get("tenant") for f in text_string_to_metric_families(text)
              for s in f.samples if s.name.startswith("lastmile_http_request")}
    assert not any(label and label.startswith("doortest:made-up") for label in labels)
    assert _requests(api, route="/v1/ops/regions", tenant="other") >= 3


def test_tenant_labels_keep_their_cap_and_survive_a_failed_read() -> None:
    calls: list[int] = []

    def load() -> list[str]:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("database down")
        return [f"t{i:02d}:x" for i in range(5)]

    labels = metrics.TenantLabels(load, limit=3, ttl_s=60)
    assert labels.due(0.0) and labels.never_loaded
    labels.refresh(0.0)
    assert not labels.never_loaded and not labels.due(59.0) and labels.due(60.0)
    assert [labels.label(t) for t in ("t00:x", "t02:x", "t03:x", "nope:x")] == [
        "t00:x", "t02:x", "other", "other"]
    assert labels.label(None) == "none"
    labels.refresh_started(60.0)  # a background re-read under way: not due meanwhile
    assert not labels.due(61.0)
    labels.refresh(60.0)  # fails: the last list stays, and no retry before the TTL
    assert labels.label("t01:x") == "t01:x" and not labels.due(61.0)


def test_a_consumer_span_and_its_log_lines_carry_the_events_tenant(
        api: Any, log_lines: io.StringIO, spans: InMemorySpanExporter) -> None:
    p = api.platform
    seen: list[str] = []

    def handle(event: Event, _: UnitOfWork) -> None:
        seen.append(event.tenant)
        logging.getLogger("lastmile.test").info("handled %s", event.type)

    create_tenant(p.services, ACME)
    p.container.bus.subscribe("tenant.probe", IdempotentHandler(p.services, "obs-tenant",
                                                                 handle), durable="obs-tenant")
    Relay(p.services, p.container.bus).drain()
    with acting_as(ACME), p.services.uow() as uow:
        uow.outbox.add(Event(event_id="evt_tenant_1", type="tenant.probe", subject_id="x",
                             region_id="reg_demo", occurred_at=0.0, actor_kind="system",
                             actor_id="test"))
        uow.commit()
    spans.clear()
    Relay(p.services, p.container.bus).drain()
    assert seen == [ACME]
    consumer = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert consumer and all(s.attributes and s.attributes["lastmile.tenant"] == ACME
                            for s in consumer)
    handled = [json.loads(line) for line in log_lines.getvalue().splitlines()
               if "handled tenant.probe" in line]
    assert handled and handled[0]["tenant"] == ACME
