"""The outbox relay of the scale-out profile: outbox rows -> the JetStream stream, in order.

A tick locks the oldest unsent outbox rows (``Outbox.claim_head``: ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, plus a check that no older row is held by another transaction),
publishes them in seq order with the event id as ``Nats-Msg-Id`` and the event's headers
as message headers, waits for every PubAck, then marks them sent and commits.

Several relays (one per API process) are safe: while one holds the head of the outbox the
others find nothing to claim, so they neither publish rows twice nor out of order. What the
lock cannot cover, JetStream de-duplication does: a relay that dies (or whose commit fails)
after the PubAck leaves its rows unsent, the next relay publishes them again and the stream
drops the copies (same ``Nats-Msg-Id`` inside the duplicate window, docs/eventlog.md). A
publish that is not acknowledged (NATS down) rolls the tick back: the rows stay unsent and
the next tick retries them, so nothing acknowledged is lost and nothing is skipped.

Durable subscribers are served by JetStream consumers (``adapters.bus.jetstream_consumer``)
and live ones by the bus's core subscriptions; this relay only feeds the log.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from lastmile.adapters.bus.jetstream import JetStreamBus
from lastmile.adapters.loop import LoopWorker
from lastmile.app.context import Services
from lastmile.app.tenancy import platform_scope

log = logging.getLogger(__name__)


@dataclass(slots=True)
class JetStreamRelayStats:
    """Counts since this relay started."""

    published: int = 0
    duplicates: int = 0  # published again after a lost PubAck or commit; dropped by JetStream
    failed_ticks: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class JetStreamRelay:
    def __init__(self, services: Services, bus: JetStreamBus, *, batch: int = 200,
                 relay_id: str | None = None):
        if batch < 1:
            raise ValueError(f"batch must be >= 1 (got {batch})")
        self._services = services
        self._bus = bus
        self.batch = batch
        self.relay_id = relay_id or services.ids.new("rly")
        self.stats = JetStreamRelayStats()

    def run_once(self) -> int:
        """Publish one batch of the outbox head; returns the rows marked sent."""
        # Idle ticks only read: on SQLite every write transaction takes the one writer lock.
        with self._services.uow(read_only=True) as uow:
            if not uow.outbox.pending(1):
                return 0
        self._bus.ensure_consumers()  # this process's consumers exist before it publishes
        with self._services.uow() as uow:
            entries = uow.outbox.claim_head(self.batch)
            if not entries:
                return 0
            duplicates = self._bus.publish_stored(entries)  # raises: rolled back, retried
            uow.outbox.mark_sent([e.seq for e in entries], self._services.clock.now())
            uow.commit()
        self.stats.published += len(entries)
        self.stats.duplicates += duplicates
        return len(entries)

    def drain(self) -> None:
        try:
            # The outbox holds every tenant's events: read across them, publish each with
            # its tenant header (consumers act as it).
            with platform_scope():
                while self.run_once() > 0:
                    pass
        except Exception:
            self.stats.failed_ticks += 1
            raise

    def worker(self, interval_s: float = 0.2) -> LoopWorker:
        """A thread draining the outbox every ``interval_s``; a failed tick (NATS or the
        database down) is logged, counted and retried on the next one."""
        return LoopWorker("outbox-relay", self.drain, interval_s)
