"""The current tenant: set once at the edge, read by the storage layer, never passed by hand.

The edge sets it (the API from the caller's key, an event consumer from the event's
``tenant`` header, the CLI from ``--tenant``); everything below reads ``current_tenant()``.
It lives in a context variable, so each request, thread and task has its own, and is
mirrored into OpenTelemetry baggage (``lastmile.tenant``) so traces and outgoing calls
carry it. The storage adapter adds it to every read and write (``adapters.db.tenant_scope``).

``platform_scope()`` is the one way out of a tenant: the platform's own machinery (the
outbox relay, key lookup by hash, listing tenants) reads across tenants inside it, and
must enter each row's tenant (``acting_as``) before acting on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from opentelemetry import baggage
from opentelemetry import context as otel_context

from lastmile.core.tenancy import DEFAULT_TENANT, PLATFORM_TENANT

BAGGAGE_KEY = "lastmile.tenant"
HEADER = "tenant"  # the event header that carries an event's tenant
PLATFORM = PLATFORM_TENANT

_scope: ContextVar[str] = ContextVar("lastmile_tenant", default=DEFAULT_TENANT)


class EdgeRecord:
    """What tenant the edge entered for one request (None: none, e.g. no valid key)."""

    __slots__ = ("tenant",)

    def __init__(self) -> None:
        self.tenant: str | None = None


_edge: ContextVar[EdgeRecord | None] = ContextVar("lastmile_edge_record", default=None)


def current_tenant() -> str:
    """The tenant this code runs for (``DEFAULT_TENANT`` when nothing set one)."""
    return _scope.get()


def in_platform_scope() -> bool:
    return _scope.get() == PLATFORM


@contextmanager
def acting_as(tenant: str) -> Iterator[str]:
    """Run the block as ``tenant`` (restored afterwards)."""
    token = _scope.set(tenant)
    otel_token = otel_context.attach(baggage.set_baggage(BAGGAGE_KEY, tenant))
    try:
        yield tenant
    finally:
        otel_context.detach(otel_token)
        _scope.reset(token)


@contextmanager
def platform_scope() -> Iterator[None]:
    """Read across tenants (the platform's machinery only); writes must name their tenant."""
    token = _scope.set(PLATFORM)
    try:
        yield
    finally:
        _scope.reset(token)


def event_headers() -> dict[str, str]:
    """The headers a new event starts with: its tenant, from the current context."""
    return {HEADER: _scope.get()}


class _HasTenant(Protocol):
    @property
    def tenant(self) -> str: ...


@contextmanager
def acting_for(event: _HasTenant) -> Iterator[str]:
    """Run an event's consumer as the event's tenant (every bus calls its handlers so)."""
    with acting_as(event.tenant) as tenant:
        yield tenant


def enter(tenant: str) -> None:
    """Set the tenant for the rest of the current task (an API request's task: the edge
    sets it once and the request ends with the task, so nothing needs resetting)."""
    _scope.set(tenant)
    otel_context.attach(baggage.set_baggage(BAGGAGE_KEY, tenant))
    record = _edge.get()
    if record is not None:
        record.tenant = tenant


@contextmanager
def edge_record() -> Iterator[EdgeRecord]:
    """Learn which tenant a request ran as, from outside it: the HTTP middleware that
    labels metrics and writes the access line wraps the app, and the request may run in
    tasks of its own (a deadline middleware's), whose context changes do not flow back
    out; the record they share does (``enter`` fills it)."""
    record = EdgeRecord()
    token = _edge.set(record)
    try:
        yield record
    finally:
        _edge.reset(token)
