"""An in-process event bus: typed subscriptions by event type (or ``*``)."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from lastmile.app.events import Event

Handler = Callable[[Event], None]
log = logging.getLogger(__name__)


class InProcessBus:
    """Delivers each published event to every subscriber of its type and of ``*``.

    Handlers are isolated: every one gets the event even when an earlier one
    fails. Failures are logged and then raised together as ``DeliveryFailed``,
    so the outbox relay leaves the event unsent and retries it: delivery is at
    least once, and handlers must be idempotent (see ``IdempotentHandler``).
    """

    def __init__(self) -> None:
        self._subs: dict[str, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, event_type: str, handler: Handler) -> Callable[[], None]:
        with self._lock:
            self._subs[event_type].append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._subs[event_type]:
                    self._subs[event_type].remove(handler)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            handlers = list(self._subs.get(event.type, ())) + list(self._subs.get("*", ()))
        failures: list[Exception] = []
        for handler in handlers:
            try:
                handler(event)
            except Exception as exc:  # isolate subscribers; reported below, never swallowed
                log.exception("subscriber %r failed on %s %s", handler, event.type,
                              event.event_id)
                failures.append(exc)
        if failures:
            raise DeliveryFailed(event.event_id, failures)


class DeliveryFailed(RuntimeError):
    """One or more subscribers failed on an event; the others received it."""

    def __init__(self, event_id: str, failures: list[Exception]):
        super().__init__(f"{len(failures)} subscriber(s) failed on event {event_id}: "
                         + "; ".join(repr(f) for f in failures))
        self.failures = failures
