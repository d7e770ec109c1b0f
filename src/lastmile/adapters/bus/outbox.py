"""The outbox relay: every durable subscriber gets every recorded event, on its own.

Events are written to the outbox in the same transaction as the state change. A relay tick:

1. registers this process's durable subscribers (``bus.subscribe(..., durable=name)``) in
   ``event_subscribers``;
2. fans out: takes the oldest unsent outbox rows, queues one ``event_deliveries`` row per
   registered durable subscriber whose type matches (in every process, not only this one),
   marks the rows sent and commits; then hands the events to this process's live
   subscribers (``bus.publish``);
3. delivers, for each durable subscriber of this process: leases its due queue rows
   (``claimed_by`` / ``lease_until``, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), calls the
   handler, and settles in one transaction: a delivered row is deleted; a failure counts an
   attempt and waits ``backoff_s(attempts)`` (exponential, capped); after ``max_attempts``
   the event is parked in ``dead_letters`` for that subscriber, which ops list and replay.

Order: for one subscriber, the events of one subject are delivered in outbox order and one
at a time: a later event of a subject is not attempted while an earlier one is queued
(retrying, or leased by another relay); it goes once the earlier one is delivered or parked.
Events of other subjects overtake a failing one, so one poisoned event stalls its own
subject for one subscriber, nothing else. A parked event, and its replay, are out of order.

Once: two relays never hold the same queue row (the claim skips locked and leased rows and
every settlement is fenced on ``claimed_by``). A relay gives back the rest of a batch once
half its lease has passed, so a working relay does not outlive its lease; one that hangs or
dies loses the lease and another relay takes its rows over. Only a relay that hangs inside
one handler call for longer than its lease can cause a second delivery, so handlers stay
idempotent (``IdempotentHandler``).

Live subscribers (no name: the WebSocket hub) receive each event once, from the relay that
fanned it out, best effort: they hold no position (a hub lives in one process and serves
connections that come and go), so a failure is logged and counted by the bus, never retried
or parked, and never stops the relay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

from lastmile.adapters.loop import LoopWorker
from lastmile.adapters.telemetry.metrics import count_relay
from lastmile.adapters.telemetry.tracing import consumer_span, record_failure
from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.app.ports import EventBus, QueuedEvent, UnitOfWork
from lastmile.app.tenancy import platform_scope
from lastmile.core.errors import InvalidInput
from lastmile.core.webhooks import RetryPolicy, backoff_s

log = logging.getLogger(__name__)


class DurableBus(EventBus, Protocol):
    """What the relay needs of a bus besides publish/subscribe (``InProcessBus`` has it)."""

    def durable(self) -> dict[str, str]: ...
    def deliver(self, name: str, event: Event) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayPolicy:
    """Waits 1 s, 2 s, 4 s ... capped at 2 min between attempts; parked after 10 failed
    attempts (about 6 min after the first failure: a database blip or a deploy is ridden
    out, a real fault is parked and shown); leases of 30 s; up to 200 rows a claim."""

    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(base_s=1.0, cap_s=120.0, max_attempts=10))
    lease_s: float = 30.0
    batch: int = 200

    def __post_init__(self) -> None:
        if self.lease_s <= 0 or self.batch < 1:
            raise InvalidInput("invalid_relay_policy", "a relay policy needs lease_s > 0 and "
                               f"batch >= 1 (got lease_s={self.lease_s}, batch={self.batch})")


@dataclass(slots=True)
class RelayStats:
    """Counts since this relay started (events, per subscriber delivery)."""

    fanned_out: int = 0
    delivered: int = 0
    retried: int = 0
    parked: int = 0
    lease_lost: int = 0  # settlements refused because another relay had taken the row over

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _Outcome:
    delivered: list[int] = field(default_factory=list)
    failed: list[tuple[QueuedEvent, str]] = field(default_factory=list)
    untried: list[int] = field(default_factory=list)


class Relay:
    """One relay (one per process is enough; several over one database are safe)."""

    def __init__(self, services: Services, bus: DurableBus, *,
                 policy: RelayPolicy | None = None, relay_id: str | None = None):
        self._services = services
        self._bus = bus
        self.policy = policy or RelayPolicy()
        self.relay_id = relay_id or services.ids.new("rly")
        self.stats = RelayStats()
        self._registered: dict[str, str] = {}

    def run_once(self) -> int:
        """One tick: register, fan out, deliver. Returns the events fanned out plus the
        deliveries attempted (0: nothing is due now)."""
        # The queues hold every tenant's events: the relay reads across tenants, and each
        # subscriber is called as its event's tenant (``InProcessBus.deliver``).
        with platform_scope():
            return self._run_once()

    def _run_once(self) -> int:
        subscribers = self._bus.durable()
        self._register(subscribers)
        work = self.fan_out()
        for name in subscribers:
            work += self.deliver(name)
        return work

    def drain(self) -> None:
        while self.run_once() > 0:
            pass

    def _register(self, subscribers: dict[str, str]) -> None:
        if subscribers == self._registered:
            return
        with self._services.uow() as uow:
            for name, event_type in subscribers.items():
                uow.event_deliveries.register(name, event_type, self._services.clock.now())
            uow.commit()
        self._registered = dict(subscribers)

    def fan_out(self) -> int:
        # Idle ticks only read: on SQLite every write transaction takes the one writer lock.
        with self._services.uow(read_only=True) as uow:
            if not uow.outbox.pending(1):
                return 0
        with self._services.uow() as uow:
            entries = uow.event_deliveries.fan_out(self.policy.batch, self._services.clock.now())
            uow.commit()
        for entry in entries:
            self._bus.publish(entry.event)  # live subscribers; the bus never raises here
        self.stats.fanned_out += len(entries)
        count_relay({"fanned_out": len(entries)})
        return len(entries)

    def deliver(self, name: str) -> int:
        """Claim, deliver and settle one batch of ``name``'s due events; returns attempts."""
        now = self._services.clock.now()
        with self._services.uow(read_only=True) as uow:
            if not uow.event_deliveries.has_due(name, now):
                return 0
        with self._services.uow() as uow:
            batch = uow.event_deliveries.claim(name, relay_id=self.relay_id, now=now,
                                               lease_s=self.policy.lease_s,
                                               limit=self.policy.batch)
            uow.commit()
        if not batch:
            return 0
        outcome = self._attempt(name, batch, give_back_at=now + self.policy.lease_s / 2)
        self._settle(name, outcome)
        return len(outcome.delivered) + len(outcome.failed)

    def _attempt(self, name: str, batch: list[QueuedEvent], *, give_back_at: float) -> _Outcome:
        outcome, failing_subjects = _Outcome(), set[str]()
        for q in batch:
            subject = q.event.subject_id
            if subject in failing_subjects or self._services.clock.now() > give_back_at:
                outcome.untried.append(q.seq)  # behind a failure of its subject, or out of time
                continue
            with consumer_span(name, q.event) as span:  # the warning carries the trace id
                try:
                    self._bus.deliver(name, q.event)
                except Exception as exc:  # a failing subscriber is retried, then parked
                    record_failure(span, exc)
                    log.warning("subscriber %s failed on %s %s (attempt %d): %r", name,
                                q.event.type, q.event.event_id, q.attempts + 1, exc)
                    outcome.failed.append((q, f"{type(exc).__name__}: {exc}"))
                    failing_subjects.add(subject)
                else:
                    outcome.delivered.append(q.seq)
        return outcome

    def _settle(self, name: str, outcome: _Outcome) -> None:
        now, retry = self._services.clock.now(), self.policy.retry
        counts = RelayStats()
        with self._services.uow() as uow:
            queue = uow.event_deliveries
            counts.delivered = queue.delivered(name, outcome.delivered, relay_id=self.relay_id)
            counts.lease_lost = len(outcome.delivered) - counts.delivered
            for q, error in outcome.failed:
                attempts = q.attempts + 1
                if attempts >= retry.max_attempts:
                    ok = queue.park(q, relay_id=self.relay_id, error=error, at=now,
                                    dead_letter_id=self._services.ids.new("dlt"))
                    counts.parked += ok
                    if ok:
                        log.error("parked %s %s for subscriber %s after %d attempts: %s",
                                  q.event.type, q.event.event_id, name, attempts, error)
                else:
                    ok = queue.retry(q, relay_id=self.relay_id, error=error, at=now,
                                     next_attempt_at=now + backoff_s(attempts, retry))
                    counts.retried += ok
                counts.lease_lost += not ok
            queue.release(name, outcome.untried, relay_id=self.relay_id)
            uow.commit()
        for key, n in counts.as_dict().items():  # counted once committed
            setattr(self.stats, key, getattr(self.stats, key) + n)
        count_relay(counts.as_dict())

    def worker(self, interval_s: float = 0.2) -> LoopWorker:
        """A thread draining the outbox every ``interval_s``; a failed tick (the database
        was down) is logged, counted and retried: claimed rows come back after the lease."""
        return LoopWorker("outbox-relay", self.drain, interval_s)


def relay_once(services: Services, bus: DurableBus, *, batch: int = 200) -> int:
    """One tick of a fresh relay (tests and scripts); see ``Relay.run_once``."""
    return Relay(services, bus, policy=RelayPolicy(batch=batch)).run_once()


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
        with consumer_span(self._name, event) as span, self._services.uow() as uow:
            if uow.inbox.seen(self._name, event.event_id):
                span.set_attribute("lastmile.duplicate", True)
                return
            self._handler(event, uow)
            uow.commit()
