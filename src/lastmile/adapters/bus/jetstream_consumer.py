"""One durable subscriber's worker on JetStream: pull a batch, handle, acknowledge.

Each durable subscriber has two JetStream durable pull consumers: ``<name>`` on the events of
its type (created "deliver new": like a relay registration, it gets events recorded from
then on) and ``<name>~replay`` on its replay subject (dead letters ops replayed; "deliver
all", so a replay published before the consumer first ran is not missed). A worker thread
per consumer:

- pulls up to ``fetch_batch`` messages and calls the handler for each, in stream order, on
  its own thread (handlers are idempotent through the inbox, ``IdempotentHandler``);
- acks a message only after its handler returned (the effect is committed), so a worker
  killed mid-batch leaves the rest unacknowledged and JetStream redelivers them, after
  ``ack_wait_s``, from the last acknowledgement on;
- on failure naks with a delay of ``backoff_s(attempts)`` (the relay's exponential, capped
  backoff); once a message's attempts reach ``max_attempts`` it is parked in
  ``dead_letters`` (the table the in-process relay uses) and acked;
- keeps a subject's order across a failure: while an event of a subject waits for its
  retry, later events of that subject the worker pulls are deferred (nak'd to come back
  after it) and not counted as attempts; deferred events come back in no fixed order, so a
  later one waits again while an earlier deferred one of its subject has not gone. The server's delivery count includes deferrals,
  so attempts = deliveries - deferrals this process made (after a restart a deferred event
  may be parked up to that many attempts early; docs/eventlog.md).

A batch taking longer than half of ``ack_wait_s`` gives the rest back (nak, no delay), so a
working consumer never sees its messages redelivered to another process meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from lastmile.adapters.bus.jetstream import EventLogUnavailable, JetStreamBus
from lastmile.adapters.bus.jetstream_wire import decode, subject_token
from lastmile.adapters.bus.outbox import RelayPolicy
from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.app.tenancy import acting_for
from lastmile.core.webhooks import backoff_s

log = logging.getLogger(__name__)
_DEFER_S = 0.05  # a deferred event comes back this long after the one it waits behind
_ERROR_CHARS = 2000
ACK_GROUP = 16
_MAX_REMEMBERED = 10_000  # deferral counts kept; forgetting one only risks an early park


def consumer_name(subscriber: str, *, replay: bool = False) -> str:
    """The subscriber's JetStream consumer names: ``drive-webhooks`` and
    ``drive-webhooks~replay`` (``subject_token`` writes ``~`` only before two hex digits,
    so no subscriber's name can collide with another's replay consumer)."""
    return subject_token(subscriber) + ("~replay" if replay else "")


@dataclass(slots=True)
class ConsumerStats:
    delivered: int = 0
    retried: int = 0
    parked: int = 0
    deferred: int = 0
    fetch_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _Block:
    """A subject waits for ``event_id``'s retry at ``retry_at`` (monotonic seconds)."""

    event_id: str
    retry_at: float
    expires_at: float  # the head may have gone to another process: stop waiting then


@dataclass(slots=True)
class _Memory:
    blocked: dict[str, _Block] = field(default_factory=dict)
    deferrals: dict[str, int] = field(default_factory=dict)
    first_failed_at: dict[str, float] = field(default_factory=dict)
    # Per subject, the events deferred and not handled yet: event id -> (stream sequence,
    # monotonic expiry). A later event of the subject waits until the earlier ones went
    # first: deferred events come back in no guaranteed order once their retry lifts.
    waiting: dict[str, dict[str, tuple[int, float]]] = field(default_factory=dict)

    def wait(self, event: Event, stream_seq: int, expires_at: float) -> None:
        self.waiting.setdefault(event.subject_id, {})[event.event_id] = (stream_seq, expires_at)

    def behind_earlier(self, event: Event, stream_seq: int, now: float) -> bool:
        """Whether an earlier event of this subject is still waiting its turn."""
        pending = self.waiting.get(event.subject_id)
        if not pending:
            return False
        for event_id, (seq, expires_at) in list(pending.items()):
            if expires_at <= now:  # gone to another process, or parked there
                del pending[event_id]
            elif seq < stream_seq and event_id != event.event_id:
                return True
        return False

    def forget(self, event: Event) -> None:
        self.deferrals.pop(event.event_id, None)
        self.first_failed_at.pop(event.event_id, None)
        block = self.blocked.get(event.subject_id)
        if block is not None and block.event_id == event.event_id:
            del self.blocked[event.subject_id]
        pending = self.waiting.get(event.subject_id)
        if pending is not None:
            pending.pop(event.event_id, None)
            if not pending:
                del self.waiting[event.subject_id]


async def _fetch(psub: JetStreamContext.PullSubscription, batch: int, wait_s: float,
                 js: JetStreamContext) -> list[Msg]:
    try:
        return await psub.fetch(batch, timeout=wait_s)
    except TimeoutError:  # nothing arrived in time, not an outage (nats-py raises its own
        return []         # TimeoutError or asyncio's, both builtin TimeoutError subclasses)


async def _settle(acks: list[Coroutine[Any, Any, None]]) -> list[BaseException | None]:
    return list(await asyncio.gather(*acks, return_exceptions=True))


class ConsumerWorker:
    """Pulls one durable consumer on a daemon thread until ``stop()``."""

    def __init__(self, bus: JetStreamBus, *, subscriber: str, consumer: str,
                 filter_subject: str, handler: Callable[[Event], None], policy: RelayPolicy,
                 services: Services, new_only: bool):
        self._bus = bus
        self.subscriber = subscriber
        self.consumer = consumer
        self._filter = filter_subject
        self._handler = handler
        self._policy = policy
        self._services = services
        self._new_only = new_only
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._memory = _Memory()
        self.stats = ConsumerStats()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"consumer-{self.consumer}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._bus.config.fetch_wait_s
                              + self._bus.config.op_timeout_s + 5)

    def _config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.consumer, filter_subject=self._filter,
            ack_policy=AckPolicy.EXPLICIT, ack_wait=self._bus.config.ack_wait_s,
            max_deliver=-1,  # parking is ours (into dead_letters), never a silent server stop
            deliver_policy=DeliverPolicy.NEW if self._new_only else DeliverPolicy.ALL,
            max_ack_pending=max(1000, self._bus.config.fetch_batch * 4))

    def ensure(self) -> None:
        """Create the durable consumer now if it does not exist (the worker would on its
        first pull): a deliver-new consumer must exist before the relay publishes, or it
        misses what is published in between. Raises ``EventLogUnavailable`` if NATS is down."""
        stream, config = self._bus.config.stream, self._config()

        async def create(js: JetStreamContext) -> None:
            try:
                await js.consumer_info(stream, self.consumer)
            except NotFoundError:
                await js.add_consumer(stream, config)

        self._bus.call(create)

    def _run(self) -> None:
        cfg = self._bus.config
        psub: JetStreamContext.PullSubscription | None = None
        while not self._stop.is_set():
            try:
                if psub is None:
                    psub = self._bus.call(lambda js: js.pull_subscribe(
                        self._filter, durable=self.consumer, stream=cfg.stream,
                        config=self._config()))
                msgs = self._bus.call(partial(_fetch, psub, cfg.fetch_batch, cfg.fetch_wait_s),
                                      timeout=cfg.fetch_wait_s + cfg.op_timeout_s)
            except Exception as exc:  # NATS down or the consumer gone: retried, counted
                self.stats.fetch_errors += 1
                log.warning("consumer %s: fetch failed: %r", self.consumer, exc)
                if psub is not None and not isinstance(exc, EventLogUnavailable):
                    self._bus.submit(psub.unsubscribe())  # the consumer is gone: bind anew
                    psub = None
                self._stop.wait(min(cfg.op_timeout_s, 1.0))
                continue
            self.handle_batch(msgs)

    def handle_batch(self, msgs: list[Msg]) -> None:
        """Handle, then ack or nak each message in order (see the module docstring). Acks go
        out in groups of ``ACK_GROUP`` (one hand-over to the I/O thread each, not one per
        message); a kill loses at most a group's acks, which come back as redeliveries the
        inbox skips."""
        give_back_at = time.monotonic() + self._bus.config.ack_wait_s / 2
        group: list[Coroutine[Any, Any, None]] = []
        sent: list[Future[list[BaseException | None]]] = []
        for msg in msgs:
            try:
                event, seq = decode(msg)
            except (ValueError, KeyError, TypeError) as exc:  # not ours: never deliverable
                log.error("consumer %s: terminating undecodable message %s: %r",
                          self.consumer, msg.subject, exc)
                group.append(msg.term())
                continue
            try:
                group.append(self._one(msg, event, seq, give_back_at))
            except Exception as exc:  # parking failed (database down): try again later
                log.warning("consumer %s: could not park %s: %r", self.consumer,
                            event.event_id, exc)
                group.append(msg.nak(delay=1.0))
            if len(group) >= ACK_GROUP:
                sent.append(self._bus.submit(_settle(group)))
                group = []
        if group:
            sent.append(self._bus.submit(_settle(group)))
        for future in sent:
            try:
                errors = future.result(self._bus.config.op_timeout_s)
            except Exception as exc:  # unsent acks: the messages come back, the inbox skips them
                errors = [exc]
            for error in filter(None, errors):
                log.warning("consumer %s: ack failed: %r", self.consumer, error)

    def _one(self, msg: Msg, event: Event, seq: int | None,
             give_back_at: float) -> Coroutine[Any, Any, None]:
        """Decide on this thread (the handler runs here); returns the ack/nak to send."""
        mem, now = self._memory, time.monotonic()
        if self._stop.is_set() or now > give_back_at:
            return self._defer(msg, event, 0.0)
        stream_seq = msg.metadata.sequence.stream
        expires_at = now + self._bus.config.ack_wait_s
        block = mem.blocked.get(event.subject_id)
        if block is not None and block.event_id != event.event_id:
            if now < block.expires_at:
                mem.wait(event, stream_seq, block.expires_at)
                return self._defer(msg, event, max(block.retry_at - now, 0.0) + _DEFER_S)
            del mem.blocked[event.subject_id]
        if mem.behind_earlier(event, stream_seq, now):
            mem.wait(event, stream_seq, expires_at)
            return self._defer(msg, event, _DEFER_S)
        attempts = (msg.metadata.num_delivered or 1) - mem.deferrals.get(event.event_id, 0)
        try:
            with acting_for(event):
                self._handler(event)
        except Exception as exc:  # retried with backoff, then parked for this subscriber
            return self._failed(msg, event, seq, attempts, f"{type(exc).__name__}: {exc}")
        mem.forget(event)
        self.stats.delivered += 1
        return msg.ack()

    def _defer(self, msg: Msg, event: Event, delay_s: float) -> Coroutine[Any, Any, None]:
        mem = self._memory
        if len(mem.deferrals) >= _MAX_REMEMBERED:  # events another process handled in the end
            mem.deferrals.clear()
        mem.deferrals[event.event_id] = mem.deferrals.get(event.event_id, 0) + 1
        self.stats.deferred += 1
        return msg.nak(delay=delay_s or None)

    def _failed(self, msg: Msg, event: Event, seq: int | None, attempts: int,
                error: str) -> Coroutine[Any, Any, None]:
        mem, retry = self._memory, self._policy.retry
        now_wall = self._services.clock.now()
        if len(mem.first_failed_at) >= _MAX_REMEMBERED:
            mem.first_failed_at.clear()
        first_failed = mem.first_failed_at.setdefault(event.event_id, now_wall)
        if attempts >= retry.max_attempts:
            self._park(event, seq if seq is not None else msg.metadata.sequence.stream,
                       attempts, error, first_failed)  # raises if the database is down:
            mem.forget(event)                            # then the nak below never happens
            self.stats.parked += 1
            log.error("parked %s %s for subscriber %s after %d attempts: %s", event.type,
                      event.event_id, self.subscriber, attempts, error)
            return msg.ack()
        delay = backoff_s(attempts, retry)
        log.warning("subscriber %s failed on %s %s (attempt %d): %s", self.subscriber,
                    event.type, event.event_id, attempts, error)
        now = time.monotonic()
        mem.blocked[event.subject_id] = _Block(
            event_id=event.event_id, retry_at=now + delay,
            expires_at=now + delay + self._bus.config.ack_wait_s)
        self.stats.retried += 1
        return msg.nak(delay=delay)

    def _park(self, event: Event, seq: int, attempts: int, error: str,
              first_failed_at: float) -> None:
        services = self._services
        with acting_for(event), services.uow() as uow:
            uow.event_deliveries.park_event(
                subscriber=self.subscriber, seq=seq, event=event, attempts=attempts,
                error=error[:_ERROR_CHARS], at=services.clock.now(),
                first_failed_at=first_failed_at, dead_letter_id=services.ids.new("dlt"))
            uow.commit()
