"""Trace context on events: written once at the outbox, read back by consumers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from lastmile.adapters.telemetry.tracing import (
    configure_tracing,
    consumer_span,
    current_ids,
    tracer,
    with_trace_context,
)
from lastmile.app.events import Event

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def an_event(**headers: str) -> Event:
    return Event(event_id="evt_1", type="order.placed", occurred_at=1.0, region_id="reg_a",
                 subject_id="ord_1", actor_kind="consumer", actor_id="con_1", headers=headers)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = configure_tracing("memory")
    assert exporter is not None
    yield exporter
    configure_tracing("off")


def test_outside_a_span_an_event_is_left_as_it_is() -> None:
    event = an_event()
    assert with_trace_context(event) is event
    assert current_ids() is None


def test_inside_a_span_the_event_gets_its_traceparent(spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("request") as span:
        event = with_trace_context(an_event(tenant="t1"))
    ctx = span.get_span_context()
    version, trace_id, span_id, flags = event.headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    assert int(flags, 16) & 1  # sampled
    assert event.headers["tenant"] == "t1"
    assert Event.from_dict(event.to_dict()).headers == event.headers  # survives the outbox


def test_an_event_keeps_the_trace_it_was_born_in(spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("replay"):
        event = with_trace_context(an_event(traceparent=PARENT))
    assert event.headers["traceparent"] == PARENT


def test_a_consumer_span_is_a_child_of_the_events_trace(spans: InMemorySpanExporter) -> None:
    with consumer_span("drive-webhooks", an_event(traceparent=PARENT)):
        pass
    (span,) = spans.get_finished_spans()
    assert span.kind is SpanKind.CONSUMER and span.name == "order.placed process"
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert span.attributes is not None
    assert span.attributes["messaging.consumer.group.name"] == "drive-webhooks"


def test_a_nested_consumer_span_of_the_same_trace_nests(spans: InMemorySpanExporter) -> None:
    event = an_event(traceparent=PARENT)
    with consumer_span("relay", event) as outer, consumer_span("inbox", event):
        pass
    inner = next(s for s in spans.get_finished_spans()
                 if s.attributes and s.attributes["messaging.consumer.group.name"] == "inbox")
    assert inner.parent is not None
    assert inner.parent.span_id == outer.get_span_context().span_id


def test_an_event_of_another_trace_is_not_parented_on_the_caller(
        spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("a batch"), consumer_span("c", an_event(
            traceparent=PARENT)):
        pass
    consumer = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER)
    assert f"{consumer.context.trace_id:032x}" == TRACE_ID


def test_a_failing_handler_marks_its_span_and_still_raises(spans: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), consumer_span("c", an_event(traceparent=PARENT)):
        raise RuntimeError("receiver down")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


def test_tracing_off_records_nothing_but_still_makes_ids() -> None:
    configure_tracing("off")
    with tracer().start_as_current_span("request") as span:
        assert current_ids() is not None
        event = with_trace_context(an_event())
    assert not span.is_recording()
    assert not int(event.headers["traceparent"].split("-")[3], 16) & 1  # nor downstream


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="LASTMILE_TRACING must be one of"):
        configure_tracing("zipkin")

