"""OpenTelemetry tracing: one provider chosen by settings, W3C trace context on events.

A trace goes HTTP request (server span, ``api.observability``) -> outbox (the current
context is written into ``event.headers`` by ``with_trace_context``, called by the outbox
adapter alone) -> consumer (``consumer_span`` reads it back and runs the handler in a child
span). A durable log that carries ``event.headers`` as message headers (NATS JetStream)
passes the context through unchanged.

Modes (``LASTMILE_TRACING``): ``off`` records nothing but still makes and propagates ids
(an SDK provider whose sampler drops every span: log lines keep a trace id, a client's
``traceparent`` reaches the consumers); ``console`` prints finished spans; ``memory`` keeps
them in an in-memory exporter (tests, demos). There is no network exporter on purpose: a
collector is a deployment choice, added next to these three modes when one is needed.

The provider lives here rather than in OpenTelemetry's global, which can be set only once
per process: tests switch modes, and the API's default no-op provider would not make ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from lastmile import __version__
from lastmile.app.events import Event

TracingMode = Literal["off", "console", "memory"]
TRACING_MODES: tuple[TracingMode, ...] = ("off", "console", "memory")
INSTRUMENTATION = "lastmile"
TENANT_ATTRIBUTE = "lastmile.tenant"  # on server and consumer spans: the tenant it ran as


class _Holder:
    provider: TracerProvider | None = None
    exporter: InMemorySpanExporter | None = None
    tracer: trace.Tracer | None = None  # asked for on every request: made once per provider


def configure_tracing(mode: str) -> InMemorySpanExporter | None:
    """Install the process's tracer provider; returns the exporter in ``memory`` mode."""
    if mode not in TRACING_MODES:
        raise ValueError(f"LASTMILE_TRACING must be one of {', '.join(TRACING_MODES)} "
                         f"(got {mode!r})")
    old = _Holder.provider
    if mode == "off":
        provider = TracerProvider(sampler=ALWAYS_OFF)
        exporter = None
    else:
        # Every root is sampled; a client's sampled=0 flag is honoured (ParentBased).
        provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
        exporter = InMemorySpanExporter() if mode == "memory" else None
        provider.add_span_processor(SimpleSpanProcessor(exporter or ConsoleSpanExporter()))
    _Holder.provider, _Holder.exporter = provider, exporter
    _Holder.tracer = provider.get_tracer(INSTRUMENTATION, __version__)
    if old is not None:
        old.shutdown()
    return exporter


def tracer() -> trace.Tracer:
    """The tracer of the configured provider (``off`` until ``configure_tracing`` runs)."""
    if _Holder.tracer is None:
        configure_tracing("off")
    assert _Holder.tracer is not None
    return _Holder.tracer


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, for log lines; None outside one."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def with_trace_context(event: Event) -> Event:
    """``event`` with the current trace context in its headers (``traceparent``, and
    ``tracestate`` when set); headers it already has win (a replayed or relayed event keeps
    the trace it was born in). Unchanged outside a span."""
    carrier: dict[str, str] = {}
    inject(carrier)
    if not carrier or all(k in event.headers for k in carrier):
        return event
    return replace(event, headers={**carrier, **event.headers})


def _parent(headers: Mapping[str, str]) -> otel_context.Context | None:
    """The context to parent a consumer span on: the caller's span when it belongs to the
    event's trace already (the relay's delivery span around ``IdempotentHandler``), else
    the one in the headers; None (the current context) when the headers carry none."""
    remote = trace.get_current_span(extract(dict(headers))).get_span_context()
    if not remote.is_valid:
        return None
    here = trace.get_current_span().get_span_context()
    if here.is_valid and here.trace_id == remote.trace_id:
        return None
    return extract(dict(headers))


@contextmanager
def consumer_span(consumer: str, event: Event) -> Iterator[Span]:
    """Run a consumer's handling of ``event`` in a span, child of the trace the event was
    recorded in. An exception is recorded on the span and raised again."""
    attributes = {"messaging.consumer.group.name": consumer, "messaging.message.id":
                  event.event_id, "lastmile.event.type": event.type,
                  "lastmile.region_id": event.region_id, TENANT_ATTRIBUTE: event.tenant}
    with tracer().start_as_current_span(
            f"{event.type} process", context=_parent(event.headers), kind=SpanKind.CONSUMER,
            attributes=attributes, record_exception=True, set_status_on_exception=True) as span:
        yield span


def record_failure(span: Span, exc: BaseException) -> None:
    """Marks ``span`` failed with ``exc`` where the caller handles the exception itself
    (the relay retries it) instead of letting it leave the span."""
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def server_span_error(span: Span, status: int) -> None:
    """A 5xx is the server's error; a 4xx is the client's and leaves the span unset
    (OpenTelemetry's HTTP semantic conventions)."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
