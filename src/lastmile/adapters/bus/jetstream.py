"""The event bus on NATS JetStream: the durable log of the scale-out profile (docs/eventlog.md).

Same port as ``InProcessBus``: ``subscribe(type, handler, durable=None)`` and ``publish``.

- **Stored events** reach the stream only through the outbox relay
  (``adapters.bus.jetstream_relay``), on ``<prefix>.ev.<region>.<type>`` with the event id
  as ``Nats-Msg-Id`` (JetStream drops a second copy inside the duplicate window).
- **Durable subscribers** are JetStream durable pull consumers filtered on their type, one
  worker thread each (``adapters.bus.jetstream_consumer``); started by ``start_consumers``.
- **Live subscribers** (no name: the WebSocket hub) hear every event of the stream's
  subjects and of ``<prefix>.live.>`` through core NATS subscriptions, in every process;
  ``publish`` (live-only events such as ``courier.moved``) goes out on ``<prefix>.live...``,
  not persisted. A process hears its own publishes through NATS, never directly as well,
  so its hub gets each event once.

nats-py is asyncio; the bus runs one private event loop on a daemon thread and offers a
synchronous API: every call waits at most ``op_timeout_s`` and raises
``EventLogUnavailable`` instead of hanging while NATS is down. nats-py reconnects by itself
(forever, every ``reconnect_wait_s``) and restores the subscriptions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from lastmile.adapters.bus.jetstream_wire import JetStreamConfig, decode, encode
from lastmile.adapters.bus.live import Handler, LiveHandlers
from lastmile.app.context import Services
from lastmile.app.events import Event, matches, type_filter
from lastmile.app.ports import DeadLetter, OutboxEntry

T = TypeVar("T")
log = logging.getLogger(__name__)

_RECENT_LIVE = 4096  # event ids a live subscription remembers to drop a republished copy


class EventLogUnavailable(RuntimeError):
    """NATS did not answer within the bus's timeout (down, or reconnecting)."""


# What NATS raises while it is away (besides timeouts): callers see EventLogUnavailable.
_UNAVAILABLE = (nats.errors.NoRespondersError, nats.errors.ConnectionClosedError,
                nats.errors.OutboundBufferLimitError, nats.errors.NoServersError,
                nats.errors.StaleConnectionError, nats.errors.ConnectionReconnectingError,
                ConnectionError)


class JetStreamBus:
    """A bus on one NATS connection (one per process); see the module docstring."""

    def __init__(self, config: JetStreamConfig):
        self.config = config
        self._live = LiveHandlers()
        self._durable: dict[str, tuple[str, Handler]] = {}
        self._workers: dict[str, list[Any]] = {}  # name -> its ConsumerWorkers (main, replay)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._live_subs: list[Subscription] = []
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._consumers_started: tuple[Services, Any] | None = None
        self._closed = False
        self._closing = False
        self._connecting: asyncio.Lock | None = None
        self._errors_logged = 0
        self._unensured: list[Any] = []  # workers whose consumer NATS could not create yet

    # -- the private event loop -------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise EventLogUnavailable("the bus is closed")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever,
                                                name=f"nats-{self.config.stream}", daemon=True)
                self._thread.start()
            return self._loop

    def submit(self, coro: Awaitable[T]) -> Future[T]:
        """Run ``coro`` on the bus loop; the caller may wait on the future or not."""
        async def wrapped() -> T:
            return await coro
        return asyncio.run_coroutine_threadsafe(wrapped(), self._ensure_loop())

    def call(self, fn: Callable[[JetStreamContext], Awaitable[T]],
             timeout: float | None = None) -> T:
        """Connect if needed, then await ``fn(js)`` on the loop; at most ``timeout`` seconds
        (default ``op_timeout_s``), else ``EventLogUnavailable``."""
        async def run() -> T:
            js = await self._connect()
            return await fn(js)
        future = self.submit(run())
        limit = self.config.op_timeout_s if timeout is None else timeout
        try:
            return future.result(limit)
        except TimeoutError:
            future.cancel()
            raise EventLogUnavailable(f"NATS did not answer within {limit:g} s "
                                      f"({self.config.stream})") from None
        except _UNAVAILABLE as exc:
            raise EventLogUnavailable(f"NATS is unavailable ({self.config.stream}): "
                                      f"{exc!r}") from exc

    async def _connect(self) -> JetStreamContext:
        if self._js is not None and self._nc is not None and not self._nc.is_closed:
            return self._js
        if self._connecting is None:  # created on the loop, used only there
            self._connecting = asyncio.Lock()
        async with self._connecting:  # one connection, however many callers wait for it
            if self._js is not None and self._nc is not None and not self._nc.is_closed:
                return self._js
            return await self._open()

    async def _open(self) -> JetStreamContext:
        async def on_error(exc: Exception) -> None:
            self._errors_logged += 1  # one warning per outage, not one per attempt
            log.log(logging.WARNING if self._errors_logged == 1 else logging.DEBUG,
                    "NATS: %r", exc)

        async def on_disconnect() -> None:
            if not self._closing:
                log.warning("NATS disconnected; reconnecting")

        async def on_reconnect() -> None:
            self._errors_logged = 0
            log.warning("NATS reconnected")

        nc = await nats.connect(
            self.config.url, connect_timeout=self.config.connect_timeout_s,
            allow_reconnect=True, max_reconnect_attempts=-1,
            reconnect_time_wait=self.config.reconnect_wait_s, error_cb=on_error,
            disconnected_cb=on_disconnect, reconnected_cb=on_reconnect,
            name=f"lastmile-{self.config.stream}")
        js = nc.jetstream(timeout=self.config.op_timeout_s)
        try:
            await self._ensure_stream(js)
        except BaseException:  # also a cancelled call: no half-open connection left behind
            await nc.close()
            raise
        self._nc, self._js, self._errors_logged = nc, js, 0
        return js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        config = StreamConfig(
            name=self.config.stream, subjects=self.config.stream_subjects(),
            storage=StorageType.FILE, duplicate_window=self.config.duplicate_window_s,
            max_age=self.config.max_age_s)
        try:
            await js.stream_info(self.config.stream)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)

    # -- the port ---------------------------------------------------------------------------

    def subscribe(self, event_type: str | Iterable[str], handler: Handler, *,
                  durable: str | None = None) -> Callable[[], None]:
        spec = type_filter(event_type)
        if durable is None:
            return self._subscribe_live(spec, handler)
        if not 0 < len(durable) <= 64:
            raise ValueError(f"a durable subscriber's name needs 1-64 characters (got {durable!r})")
        with self._lock:
            if durable in self._durable:
                raise ValueError(f"durable subscriber {durable!r} is already subscribed here")
            self._durable[durable] = (spec, handler)
            started = self._consumers_started
        if started is not None:
            self._start_worker(durable, *started)

        def unsubscribe() -> None:
            with self._lock:
                if self._durable.get(durable, (None, None))[1] is not handler:
                    return
                del self._durable[durable]
                workers = self._workers.pop(durable, [])
            for worker in workers:
                worker.stop()

        return unsubscribe

    def _subscribe_live(self, spec: str, handler: Handler) -> Callable[[], None]:
        remove = self._live.add_all(spec, handler)
        with self._lock:
            first = not self._live_subs
        if first:
            try:
                self.call(self._listen_live)
            except EventLogUnavailable:  # NATS down at startup: listen once it is back
                log.warning("NATS unreachable; live subscribers will listen once it is back")
                self.submit(self._listen_live_when_back())

        return remove

    @property
    def live_failures(self) -> int:
        return self._live.failures

    async def _listen_live(self, js: JetStreamContext) -> None:
        if self._live_subs:
            return
        assert self._nc is not None
        for subject in (f"{self.config.prefix}.ev.>", f"{self.config.prefix}.live.>"):
            self._live_subs.append(await self._nc.subscribe(subject, cb=self._on_live))

    async def _listen_live_when_back(self) -> None:
        while not self._closing and not self._live_subs:
            try:
                await self._listen_live(await self._connect())
            except Exception as exc:  # still down: try again shortly
                log.debug("live subscription not ready: %r", exc)
                await asyncio.sleep(self.config.reconnect_wait_s)

    async def _on_live(self, msg: Msg) -> None:
        """On the loop thread: live handlers must not block (the hub only enqueues)."""
        try:
            event, _ = decode(msg)
        except (ValueError, KeyError, TypeError):
            log.warning("dropped an undecodable message on %s", msg.subject)
            return
        if event.event_id in self._recent:  # a relay's republish after a lost PubAck
            return
        self._recent[event.event_id] = None
        if len(self._recent) > _RECENT_LIVE:
            self._recent.popitem(last=False)
        self._live.deliver(event)

    def publish(self, event: Event) -> None:
        """A live-only event (``courier.moved``) to every process's live subscribers, this
        one's included (through NATS); not stored. Raises ``EventLogUnavailable`` on outage."""
        data, headers = encode(event, msg_id=event.event_id)

        async def send(js: JetStreamContext) -> None:
            assert self._nc is not None
            if not self._nc.is_connected:  # reconnecting: a stale move would only be
                raise EventLogUnavailable("NATS is reconnecting")  # flushed late; the next wins
            await self._nc.publish(self.config.live_subject(event), data, headers=headers)

        self.call(send)

    # -- what the relay, the consumers and ops need -----------------------------------------

    def publish_stored(self, entries: Sequence[OutboxEntry]) -> int:
        """Publish outbox rows in order, each with its event id as ``Nats-Msg-Id``, and wait
        for every PubAck; returns how many the stream had already (duplicates). Raises if
        any is not acknowledged (the caller keeps the rows unsent and tries again)."""
        messages = [(self.config.event_subject(e.event),
                     *encode(e.event, msg_id=e.event.event_id, seq=e.seq)) for e in entries]

        async def send(js: JetStreamContext) -> int:
            # Sent in order on one connection, so stored in order; awaited together.
            acks = await asyncio.gather(*(js.publish(subject, data, headers=headers,
                                                     stream=self.config.stream)
                                          for subject, data, headers in messages))
            return sum(1 for ack in acks if ack.duplicate)

        return self.call(send, timeout=self.config.op_timeout_s * 2)

    def requeue(self, letter: DeadLetter) -> None:
        """Replay a dead letter to its one subscriber: republished on the subscriber's replay
        subject (its replay consumer reads it), de-duplicated per replay of the letter."""
        data, headers = encode(letter.event, msg_id=f"replay:{letter.id}:{letter.replays}",
                               seq=letter.seq)

        async def send(js: JetStreamContext) -> None:
            await js.publish(self.config.replay_subject(letter.subscriber), data,
                             headers=headers, stream=self.config.stream)

        self.call(send)

    def durable(self) -> dict[str, str]:
        """This process's durable subscribers: name -> their ``type_filter`` (``*``, a type,
        or several)."""
        with self._lock:
            return {name: event_type for name, (event_type, _) in self._durable.items()}

    def start_consumers(self, services: Services, policy: Any) -> None:
        """Create the durable consumers and start a worker for each (and for later
        subscribers); ``policy`` is a ``RelayPolicy`` (retries, parking). Failures are parked
        in ``services``' database. Call it before the relay starts publishing."""
        with self._lock:
            if self._consumers_started is not None:
                return
            self._consumers_started = (services, policy)
            names = list(self._durable)
        reachable = True  # NATS down at startup: one timeout, not one per consumer
        for name in names:
            reachable = self._start_worker(name, services, policy, ensure=reachable)

    def _start_worker(self, name: str, services: Services, policy: Any, *,
                      ensure: bool = True) -> bool:
        """Start ``name``'s workers; returns False when NATS did not answer."""
        from lastmile.adapters.bus.jetstream_consumer import ConsumerWorker, consumer_name

        with self._lock:
            spec, named = self._durable[name]

            def handler(event: Event) -> None:  # several types: the filter subject is wider
                if matches(spec, event.type):
                    named(event)

            workers = [
                ConsumerWorker(self, subscriber=name, consumer=consumer_name(name),
                               filter_subject=self.config.filter_subject(spec),
                               handler=handler, policy=policy, services=services, new_only=True),
                ConsumerWorker(self, subscriber=name, consumer=consumer_name(name, replay=True),
                               filter_subject=self.config.replay_subject(name),
                               handler=handler, policy=policy, services=services,
                               new_only=False)]
            self._workers[name] = workers
        for worker in workers:
            if ensure:
                try:
                    worker.ensure()  # before the relay publishes: a new consumer starts here
                except EventLogUnavailable as exc:  # NATS down: before the relay's next batch
                    log.warning("consumer %s not created yet: %s", worker.consumer, exc)
                    ensure = False
            if not ensure:
                with self._lock:
                    self._unensured.append(worker)
            worker.start()
        return ensure

    def ensure_consumers(self) -> None:
        """Create the consumers NATS was too far away to create at start; the relay calls
        this before each batch, so no deliver-new consumer misses the batch. Raises
        ``EventLogUnavailable`` while NATS is down."""
        while True:
            with self._lock:
                if not self._unensured:
                    return
                worker = self._unensured[0]
            worker.ensure()
            with self._lock:
                if self._unensured and self._unensured[0] is worker:
                    self._unensured.pop(0)

    def consumer_stats(self) -> dict[str, dict[str, int]]:
        """This process's counts per durable subscriber (main and replay consumers summed)."""
        with self._lock:
            workers = {name: list(ws) for name, ws in self._workers.items()}
        out: dict[str, dict[str, int]] = {}
        for name, ws in workers.items():
            total: dict[str, int] = defaultdict(int)
            for w in ws:
                for key, n in w.stats.as_dict().items():
                    total[key] += n
            out[name] = dict(total)
        return out

    def lag(self) -> dict[str, int]:
        """Per durable subscriber: events not yet delivered plus delivered but not yet acked,
        over its main and replay consumers (those not created yet count 0)."""
        from lastmile.adapters.bus.jetstream_consumer import consumer_name

        names = list(self.durable())

        async def infos(js: JetStreamContext) -> dict[str, int]:
            out: dict[str, int] = {}
            for name in names:
                out[name] = 0
                for consumer in (consumer_name(name), consumer_name(name, replay=True)):
                    try:
                        info = await js.consumer_info(self.config.stream, consumer)
                    except NotFoundError:
                        continue
                    out[name] += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            return out

        return self.call(infos)

    def _stop_consumers(self) -> None:
        """Stop every consumer worker of this bus and forget them (close, stream deletion)."""
        with self._lock:
            workers = [w for ws in self._workers.values() for w in ws]
            self._workers.clear()
            self._unensured.clear()
            self._consumers_started = None
        for worker in workers:
            worker.stop()

    def delete_stream(self) -> None:
        """Drop the stream and its consumers (tests' teardown; never called by the platform)."""
        self._stop_consumers()

        async def drop(js: JetStreamContext) -> None:
            try:
                await js.delete_stream(self.config.stream)
            except NotFoundError:
                pass

        self.call(drop)

    def close(self) -> None:
        """Stop the consumer workers, flush and close the connection, stop the loop."""
        self._stop_consumers()
        loop, thread = self._loop, self._thread
        if loop is None:
            self._closed = True
            return
        nc, self._closing = self._nc, True

        async def shutdown() -> None:
            if nc is not None and not nc.is_closed:
                try:  # acks were awaited by the workers; what is buffered goes out now
                    await asyncio.wait_for(nc.flush(), self.config.op_timeout_s)
                except Exception as exc:  # a dead server: nothing more to send
                    log.warning("NATS flush failed: %r", exc)
                await nc.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            await asyncio.sleep(0.05)  # let the transports' close callbacks run

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(
                self.config.op_timeout_s * 2)
        except Exception as exc:  # closing must not fail the process's shutdown
            log.warning("NATS close failed: %r", exc)
        with self._lock:
            self._closed = True
            self._nc = self._js = None
            self._live_subs = []
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
        if not loop.is_running():
            loop.close()
