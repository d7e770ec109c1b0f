"""The outbox relay and idempotent consumers.

Events are written to the outbox in the same transaction as the state change.
The relay publishes pending rows in order and marks them sent only after the
publisher returned, so a crash between the two re-publishes (at least once);
``IdempotentHandler`` records each event id in the inbox table so a consumer
acts on an event once.
"""

from __future__ import annotations

from collections.abc import Callable

from lastmile.adapters.loop import LoopWorker
from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.app.ports import Publisher, UnitOfWork


def relay_once(services: Services, publisher: Publisher, *, batch: int = 200) -> int:
    """Publish up to ``batch`` pending events in outbox order; returns how many were sent.

    Stops at the first event the publisher refuses: it stays pending, and so
    does every later one, which keeps per-subject order.
    """
    with services.uow() as uow:
        pending = uow.outbox.pending(batch)
    sent: list[int] = []
    error: Exception | None = None
    for entry in pending:
        try:
            publisher.publish(entry.event)
        except Exception as exc:  # the relay must survive a bad subscriber; it retries later
            error = exc
            break
        sent.append(entry.seq)
    if sent:
        with services.uow() as uow:
            uow.outbox.mark_sent(sent, services.clock.now())
            uow.commit()
    if error is not None:
        raise RelayError(f"publishing stopped after {len(sent)} events") from error
    return len(sent)


class RelayError(RuntimeError):
    """A subscriber failed; the unsent events stay in the outbox."""


class IdempotentHandler:
    """Wraps a handler so it acts once per (consumer name, event id), even on redelivery.

    The handler receives the unit of work that records the event id: what it writes
    there commits together with the mark, so its effect happens exactly once. It must
    not open a second unit of work (on SQLite that would wait on this one's lock).
    """

    def __init__(self, services: Services, name: str,
                 handler: Callable[[Event, UnitOfWork], None]):
        self._services = services
        self._name = name
        self._handler = handler

    def __call__(self, event: Event) -> None:
        with self._services.uow() as uow:
            if uow.inbox.seen(self._name, event.event_id):
                return
            self._handler(event, uow)
            uow.commit()


def relay_worker(services: Services, publisher: Publisher, interval_s: float = 0.2) -> LoopWorker:
    """A worker that drains the outbox every ``interval_s``; a failed publish is logged,
    counted and retried on the next tick (the events stay pending)."""

    def drain() -> None:
        while relay_once(services, publisher) > 0:
            pass

    return LoopWorker("outbox-relay", drain, interval_s)
