"""The WebSocket hub: bus events (published on worker threads) into per-connection queues.

Events reach the bus on the outbox relay's thread (``order.*``, ``offer.*``,
``courier.shift_*``) and on request threads (``courier.moved``). The hub's bus
handler only filters and appends to each matching connection's bounded queue
under a lock, then wakes the connection's asyncio loop with
``loop.call_soon_threadsafe``: it never awaits, never does I/O and never
raises, so a slow or dead WebSocket client cannot block the bus or the outbox
relay. The hub is a live (unnamed) bus subscriber: it holds no position, and an
event it fails on is counted by the bus, never retried (see ``adapters.bus.outbox``).

Each subscription belongs to one tenant (its caller's) and gets only that tenant's
events (``event.tenant``), whatever its filter says: feeds match on ids that are unique
across the deployment, and this check makes the rule hold for any filter.

A full queue drops its *oldest* message and counts it: a live feed would rather
show the latest position than every stale one. The connection reports drops to
its client in a ``stream.dropped`` message before the next event it sends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lastmile.app.events import Event
from lastmile.app.ports import EventBus

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 256
Match = Callable[[Event], bool]


class StreamClosed(Exception):
    """The hub stopped (application shutdown) while a connection was waiting."""


@dataclass(frozen=True, slots=True)
class Batch:
    events: tuple[Event, ...]
    dropped: int  # events dropped since the previous batch (oldest first)


class Subscription:
    """One connection's bounded queue; fed from any thread, drained on its own loop."""

    def __init__(self, hub: StreamHub, match: Match, loop: asyncio.AbstractEventLoop,
                 maxsize: int, tenant: str):
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1 (got {maxsize})")
        self._hub = hub
        self.match = match
        self.tenant = tenant
        self._loop = loop
        self._queue: deque[Event] = deque()
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._wake = asyncio.Event()  # only touched on self._loop
        self._dropped_unreported = 0
        self._signalled = False  # a wake-up is already scheduled on the loop
        self.dropped_total = 0
        self.delivered_total = 0
        self.closed = False

    def offer(self, event: Event) -> None:
        """Enqueue from any thread; drops the oldest event when full. Never blocks."""
        with self._lock:
            if self.closed:
                return
            if len(self._queue) >= self._maxsize:
                self._queue.popleft()
                self._dropped_unreported += 1
                self.dropped_total += 1
            self._queue.append(event)
            need_wake, self._signalled = not self._signalled, True
        if need_wake:  # one wake-up per drain, however many events a burst brings
            self._signal()

    def _signal(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop is closed: the connection is gone
            self.closed = True

    async def next_batch(self) -> Batch:
        """Wait for events; return all queued ones. Raises StreamClosed once closed."""
        while True:
            with self._lock:
                if self._queue or self._dropped_unreported:
                    events = tuple(self._queue)
                    self._queue.clear()
                    dropped, self._dropped_unreported = self._dropped_unreported, 0
                    self.delivered_total += len(events)
                    self._wake.clear()
                    self._signalled = False
                    return Batch(events=events, dropped=dropped)
                if self.closed:
                    raise StreamClosed()
                self._wake.clear()
                self._signalled = False
            await self._wake.wait()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def close(self) -> None:
        """Stop receiving; a waiting ``next_batch`` raises StreamClosed. Idempotent."""
        with self._lock:
            already = self.closed
            self.closed = True
        self._hub.discard(self)
        if not already:
            self._signal()


class StreamHub:
    """Fans bus events out to WebSocket subscriptions; start it with the app, stop it after."""

    def __init__(self, bus: EventBus, *, queue_size: int = DEFAULT_QUEUE_SIZE):
        self._bus = bus
        self.queue_size = queue_size
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self.errors = 0

    @property
    def running(self) -> bool:
        return self._unsubscribe is not None

    def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self._bus.subscribe("*", self._on_event)

    def stop(self) -> None:
        """Unsubscribe from the bus and end every open subscription."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()

    def open(self, match: Match, *, tenant: str, maxsize: int | None = None) -> Subscription:
        """A subscription to the events of ``tenant`` that ``match`` accepts, woken on the
        calling loop."""
        sub = Subscription(self, match, asyncio.get_running_loop(), maxsize or self.queue_size,
                           tenant)
        with self._lock:
            self._subs.add(sub)
        return sub

    def discard(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def connections(self) -> int:
        with self._lock:
            return len(self._subs)

    def _on_event(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                if event.tenant == sub.tenant and sub.match(event):
                    sub.offer(event)
            except Exception:  # one bad filter must not stall the relay for everyone
                self.errors += 1
                log.exception("stream filter failed for event %s", event.type)


def region_feed(region_id: str) -> Match:
    """Ops: courier moves, order changes, offers and shifts of one region."""

    def match(event: Event) -> bool:
        return event.region_id == region_id and event.type.startswith(
            ("order.", "offer.", "courier."))

    return match


def order_feed(order_id: str) -> Match:
    """Consumer: the order's own changes and moves of a courier carrying it."""

    def match(event: Event) -> bool:
        if event.type.startswith("order."):
            return event.subject_id == order_id
        if event.type == "courier.moved":
            return order_id in (event.data.get("active_order_ids") or ())
        return False

    return match


class CourierFeed:
    """Courier: offers made to, withdrawn from or expired for this courier, and every change
    of an order the courier holds (ready, cancelled, ...), so the app need not poll.

    The orders held are followed from ``order.assigned`` / ``offer.accepted`` (added) to
    delivered, cancelled or unassigned (removed); ``match`` runs on publisher threads, hence
    the lock. A move (``app.reassignment``): the courier losing orders gets their
    ``order.reassigned`` and its own ``courier.assignment_withdrawn``, then stops following
    them; the courier taking them follows them from ``order.reassigned`` on.
    """

    _DONE = ("order.delivered", "order.cancelled", "order.unassigned")

    def __init__(self, courier_id: str, held: Iterable[str]):
        self.courier_id = courier_id
        self._held = set(held)
        self._lock = threading.Lock()

    def hold(self, order_ids: Iterable[str]) -> None:
        """Follow these orders too (the ones held when the feed opened)."""
        with self._lock:
            self._held.update(order_ids)

    def __call__(self, event: Event) -> bool:
        if event.type == "courier.assignment_withdrawn":
            return event.subject_id == self.courier_id
        if event.type.startswith("offer."):
            mine = event.data.get("courier_id") == self.courier_id
            if mine and event.type == "offer.accepted":
                with self._lock:
                    self._held.update(str(o) for o in event.data.get("order_ids", ()))
            return mine
        if not event.type.startswith("order."):
            return False
        with self._lock:
            # ``order.assigned`` names the courier and is published before ``offer.accepted``.
            if event.data.get("courier_id") == self.courier_id:
                self._held.add(event.subject_id)
            held = event.subject_id in self._held
            if held and (event.type in self._DONE or (
                    event.type == "order.reassigned"
                    and event.data.get("from_courier_id") == self.courier_id)):
                self._held.discard(event.subject_id)
        return held
